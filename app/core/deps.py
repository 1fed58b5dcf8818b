"""Request dependencies every domain may use: the settings, the client's address, and who
is asking (bearer tokens for the API, the login cookie for the dashboard, CSRF).

Every organiser route takes `Organiser` (a token or a logged-in organiser) or `Admin`.
A request with an Authorization header is judged by its token alone; otherwise the
login cookie counts, and then every unsafe request must carry the session's CSRF token
(a hidden `csrf_token` field, or an X-CSRF-Token header), since browsers send cookies
on their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import FormData

from app.core import auth, security
from app.core.auth import Principal
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import CsrfRejected, Forbidden, Unauthorized
from app.models import utcnow

_bearer = HTTPBearer(auto_error=False, description="An Outcry API token")

SESSION_COOKIE = "outcry_session"
LOGIN_COOKIE = "outcry_login"  # the CSRF token of the login form, before any session
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def app_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def settings_dep(request: Request) -> Settings:
    # async, though it never waits: FastAPI runs a plain `def` dependency on a worker
    # thread, and a thread hop (two context switches, a queue) to read one attribute
    # was a noticeable share of a signature's CPU (issue 10).
    return app_settings(request)


SettingsDep = Annotated[Settings, Depends(settings_dep)]


async def posted_form(request: Request) -> AsyncIterator[FormData]:
    """The posted form, read in the event loop, where reading a body belongs, so that a
    page taking it can be a plain `def` and use the database on a worker thread. In the
    event loop, a write waiting for SQLite's one writer (or an organiser's password being
    checked) would hold up every request of the process. Its uploads are closed after."""
    async with request.form() as form:
        yield form


PostedForm = Annotated[FormData, Depends(posted_form)]


def client_host(request: Request) -> str | None:
    """The client's address (behind a trusted proxy, the one it reports)."""
    return request.client.host if request.client else None


def session_token(request: Request) -> str | None:
    """The raw login token from the signed cookie, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return security.unsign(app_settings(request).resolved_secret_key(), "session", cookie)


def _cookie_options(settings: Settings) -> dict[str, object]:
    # Lax keeps the cookie off cross-site POSTs; Secure whenever the site is https.
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": settings.base_url.startswith("https://"),
        "path": "/",
    }


def set_session_cookie(response: Response, settings: Settings, raw: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        security.sign(settings.resolved_secret_key(), "session", raw),
        max_age=int(auth.SESSION_LIFETIME.total_seconds()),
        **_cookie_options(settings),  # type: ignore[arg-type]
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, **_cookie_options(settings))  # type: ignore[arg-type]


def login_csrf(request: Request) -> str | None:
    """The login form's CSRF token from its signed cookie, or None."""
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie:
        return None
    return security.unsign(app_settings(request).resolved_secret_key(), "login", cookie)


def set_login_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        security.sign(settings.resolved_secret_key(), "login", token),
        max_age=3600,
        **_cookie_options(settings),  # type: ignore[arg-type]
    )


def principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The token's or the logged-in organiser's identity; Unauthorized without either."""
    now = utcnow()
    if "authorization" in request.headers:
        raw = credentials.credentials if credentials else None
        return auth.token_principal(auth.authenticate(session, raw, now=now))
    raw_session = session_token(request)
    if raw_session:
        who = auth.session_principal(
            session, raw_session, secret=app_settings(request).resolved_secret_key(), now=now
        )
        if who is not None:
            return who
    raise Unauthorized("Log in, or send a valid token.")


async def checked_principal(
    request: Request, who: Annotated[Principal, Depends(principal)]
) -> Principal:
    """`principal`, refusing an unsafe request on the login cookie without its CSRF token."""
    if who.via == "session" and request.method not in SAFE_METHODS:
        supplied = request.headers.get(CSRF_HEADER)
        if supplied is None:
            content_type = request.headers.get("content-type", "")
            if content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
                value = (await request.form()).get(CSRF_FIELD)
                supplied = value if isinstance(value, str) else None
        if not supplied or not who.csrf_token or not security.same(supplied, who.csrf_token):
            await request.close()  # an uploaded file's spool goes now, not at collection
            raise CsrfRejected()
    return who


def admin(who: Annotated[Principal, Depends(checked_principal)]) -> Principal:
    auth.check_admin(who)
    return who


Organiser = Annotated[Principal, Depends(checked_principal)]
Admin = Annotated[Principal, Depends(admin)]


def logged_in(who: Organiser) -> Principal:
    """The organiser behind a login cookie; a token has no account (403)."""
    if who.via != "session" or who.organiser_id is None:
        raise Forbidden("This page is for organisers who log in; a token has no account.")
    return who


def logged_in_admin(who: Annotated[Principal, Depends(logged_in)]) -> Principal:
    auth.check_admin(who)
    return who


# An account's own pages: for someone who logged in; the second, an admin who did.
LoggedIn = Annotated[Principal, Depends(logged_in)]
LoggedInAdmin = Annotated[Principal, Depends(logged_in_admin)]
