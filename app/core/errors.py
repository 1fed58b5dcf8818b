"""Domain errors carry their HTTP status; one handler renders them all as the same JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
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


def field_name(loc: tuple[int | str, ...]) -> str:
    """`("body", "targets", 0, "email")` -> `"targets.0.email"`."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def error_text(error: Any) -> str:
    """A pydantic error's message, as the API says it."""
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

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        err = InvalidInput(validation_fields(list(exc.errors())))
        return JSONResponse(err.body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await _outcry(request, NotFound())
        body = {"error": "http_error", "detail": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
