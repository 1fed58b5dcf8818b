"""Domain errors carry their HTTP status; one handler renders them all as the same JSON."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException


class OutcryError(Exception):
    """Base of every error a client may see: `{"error": code, "detail": …, "fields": {…}}`."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_detail: ClassVar[str] = "Bad request."

    def __init__(self, detail: str | None = None, *, fields: dict[str, str] | None = None):
        self.detail = detail or self.default_detail
        self.fields = fields or {}
        super().__init__(self.detail)

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return body


class NotFound(OutcryError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class AppealNotFound(NotFound):
    default_detail = "No such appeal."


class LetterNotFound(NotFound):
    # The same answer for an unknown id and a wrong key, so keys cannot be probed.
    default_detail = "No such letter, or the key is wrong."


class DeliveryNotFound(NotFound):
    default_detail = "No such delivery."


class InvalidConfirmation(NotFound):
    code = "invalid_token"
    default_detail = "This confirmation link is not valid. It may have expired."


class Conflict(OutcryError):
    status_code = 409
    code = "conflict"


class AppealClosed(Conflict):
    code = "appeal_closed"
    default_detail = "This appeal is not taking signatures."


class DuplicateSignature(Conflict):
    code = "duplicate_signature"
    default_detail = "This e-mail address has already signed this appeal."


class LetterUnavailable(Conflict):
    # The appeal's letter template fails on these details (it passed with sample data when
    # it was saved): the organisers must correct it; the supporter can only tell them.
    code = "letter_unavailable"
    default_detail = "This appeal's letter cannot be written just now. Please tell its organisers."


class DeliveryNotFailed(Conflict):
    code = "not_failed"
    default_detail = "Only a failed or bounced delivery can be retried."


class InvalidInput(OutcryError):
    status_code = 422
    code = "invalid"
    default_detail = "Some fields are not valid."

    def __init__(
        self,
        fields: dict[str, str],
        detail: str | None = None,
        *,
        codes: dict[str, str] | None = None,
    ):
        summary = "; ".join(f"{name}: {why}" for name, why in fields.items())
        super().__init__(detail or summary or self.default_detail, fields=fields)
        # {field: what kind of problem}, for a page to say it in the supporter's language
        # (the kinds are pydantic's error types and our own, as in app/web/explain.py).
        self.codes = codes or {}


class Unauthorized(OutcryError):
    status_code = 401
    code = "unauthorized"
    default_detail = "A valid token is required."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class InvalidLogin(Unauthorized):
    code = "invalid_login"
    # One answer for an unknown address and a wrong password, so logins cannot probe
    # which organisers exist.
    default_detail = "The e-mail address or the password is wrong."


class Forbidden(OutcryError):
    status_code = 403
    code = "forbidden"
    default_detail = "This token may not do that."


class CsrfRejected(Forbidden):
    code = "csrf"
    default_detail = "The form has expired or did not come from this site. Please try again."


class PayloadTooLarge(OutcryError):
    status_code = 413
    code = "too_large"
    default_detail = "The request body is too large."


class TryLater(OutcryError):
    """Not now, but the same request will do later (a relay's report about a letter
    whose sending is still being recorded): relays retry on 503."""

    status_code = 503
    code = "try_later"
    default_detail = "Not ready for this yet; please try again later."

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "60"}


class RateLimited(OutcryError):
    status_code = 429
    code = "rate_limited"
    default_detail = "Too many requests; try again later."

    def __init__(self, retry_after: int, detail: str | None = None):
        self.retry_after = max(1, retry_after)
        super().__init__(detail)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(OutcryError):
    """503 with Retry-After: nothing was done, and the same request may simply be sent again."""

    status_code = 503
    code = "unavailable"
    default_detail = "Outcry cannot take this request right now; nothing was stored. Try again."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5):
        self.retry_after = max(1, retry_after)
        super().__init__(detail)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceBusy(Unavailable):
    code = "busy"
    default_detail = (
        "Too many people are using Outcry at this moment; nothing was stored. "
        "Please send it again in a few seconds."
    )


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    default_detail = (
        "Outcry's database is not answering; nothing was stored. Please try again in a minute."
    )


def database_unavailable(exc: SQLAlchemyError) -> bool:
    """True for a database that is away or busy (worth trying again), False for a bug.

    PostgreSQL: psycopg's OperationalError covers a server that is down, restarting, out
    of connections or cancelling statements; the pool's timeout, when every connection is
    taken. SQLite: a writer that waited its whole busy timeout.
    """
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    original = exc.orig
    if isinstance(original, sqlite3.OperationalError):
        return "locked" in str(original) or "busy" in str(original)
    return True


class TooManyConfirmations(RateLimited):
    code = "too_many_confirmations"
    default_detail = (
        "Several confirmation e-mails have gone to this address today already. Please look "
        "for them, in your spam folder too, or try again tomorrow."
    )


class NotWithdrawable(Conflict):
    code = "not_withdrawable"
    default_detail = (
        "This letter has already gone to its targets and cannot be withdrawn. You can "
        "still erase your details."
    )


class LetterBusy(Conflict):
    code = "letter_busy"
    default_detail = "This letter is being sent at this moment. Please try again in a few minutes."


class LetterErased(OutcryError):
    status_code = 410
    code = "letter_erased"
    default_detail = "The details of this letter have been erased."


class AppealNotClosed(Conflict):
    code = "appeal_not_closed"
    default_detail = "Only a closed appeal's letters can be purged."


class ErrorBody(BaseModel):
    """The JSON of every error response."""

    error: str = Field(description="The kind of error: not_found, invalid, rate_limited, …")
    detail: str = Field(description="What went wrong, in a sentence.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="For invalid input: each field at fault (a dotted path) and why.",
    )


_STATUS_MEANINGS = {
    401: "No token (or login), or one that is not valid.",
    403: "This token may not do that: an admin's task, or another organisation's letters.",
    404: "No such appeal, letter or delivery (or a wrong key).",
    409: "Conflicts with the current state: a closed appeal, a signature already confirmed, "
    "a slug taken, a letter not waiting, a delivery not failed.",
    413: "The request body is larger than OUTCRY_MAX_REQUEST_BYTES.",
    422: "Some input is not valid: `fields` names each field and says why.",
    410: "The supporter erased this letter's details.",
    429: "Too many requests from this address: try again after Retry-After seconds.",
    503: "Busy, or the database is away: nothing was done; send the same request again "
    "after Retry-After seconds.",
}
_STATUS_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer"},
        }
    },
}
_STATUS_HEADERS[503] = _STATUS_HEADERS[429]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route gives: all the same JSON shape."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        responses[status] = {"model": ErrorBody, "description": _STATUS_MEANINGS[status]}
        if status in _STATUS_HEADERS:
            responses[status]["headers"] = _STATUS_HEADERS[status]
    return responses


def field_name(loc: tuple[int | str, ...]) -> str:
    """`("body", "targets", 0, "email")` -> `"targets.0.email"`."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


# A text field with a validator of its own is measured after it, where pydantic no longer
# knows it holds a string: "at most 100 items" of a city means characters.
_TEXT_LENGTHS = {
    "too_long": ("String should have at most {} character", "max_length"),
    "too_short": ("String should have at least {} character", "min_length"),
}


def error_text(error: Any) -> str:
    """A pydantic error's message, as the API says it."""
    kind, context = error.get("type"), error.get("ctx") or {}
    if kind in _TEXT_LENGTHS and isinstance(error.get("input"), str):
        text, bound = _TEXT_LENGTHS[kind]
        if bound in context:
            return text.format(context[bound]) + ("" if context[bound] == 1 else "s")
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def validation_fields(errors: list[Any]) -> dict[str, str]:
    """Pydantic errors as {field: why}, the first reason per field."""
    fields: dict[str, str] = {}
    for error in errors:
        fields.setdefault(field_name(tuple(error.get("loc", ()))), error_text(error))
    return fields


def wants_html(request: Request) -> bool:
    """A browser asking for a page, not an API client."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def install_handlers(app: FastAPI, *, html: Callable[[Request, OutcryError], Response]) -> None:
    """Render OutcryError, validation errors and HTTP errors as one JSON shape (or, for a
    browser on a page, as the error page `html` renders)."""

    @app.exception_handler(OutcryError)
    async def _outcry(request: Request, exc: OutcryError) -> Response:
        if wants_html(request):
            return html(request, exc)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> Response:
        if not database_unavailable(exc):
            raise exc  # a bug: Starlette's 500, with the traceback in the log
        return await _outcry(request, DatabaseUnavailable())

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        err = InvalidInput(validation_fields(list(exc.errors())))
        return JSONResponse(err.body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await _outcry(request, NotFound())
        if exc.status_code == 413:
            return await _outcry(request, PayloadTooLarge(str(exc.detail)))
        if exc.status_code == 400 and request.method in ("POST", "PUT", "PATCH"):
            # FastAPI could not read the body at all (not UTF-8, a broken form).
            return await _outcry(request, InvalidInput({"body": "could not be read"}))
        body = {"error": "http_error", "detail": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
