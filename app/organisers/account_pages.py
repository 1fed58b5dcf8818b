"""An organiser's own account page: change the password; for an admin, the API tokens.

Only for organisers who log in (an API token has no account of its own). Every form
carries the session's CSRF token, checked by the `Organiser` dependency.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.auth import Principal
from app.core.db import SessionDep
from app.core.deps import LoggedIn, LoggedInAdmin, PostedForm, session_token
from app.core.errors import InvalidInput
from app.core.params import RowId
from app.core.security import PASSWORD_MIN
from app.organisers import accounts
from app.organisers import service as organisers
from app.organisers.pages import private_page, redirect_back
from app.web import explain
from app.web import pages as web

router = APIRouter(include_in_schema=False)

TOKEN_NAME_MAX = 200


def _account_page(
    request: Request,
    session: SessionDep,
    who: Principal,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    tokens = accounts.list_tokens(session) if who.is_admin else []
    organisations = accounts.list_organisations(session) if who.is_admin else []
    return private_page(
        request,
        "dashboard/account.html",
        who,
        http_status=status,
        errors=errors or {},
        tokens=tokens,
        organisations=organisations,
        password_min=PASSWORD_MIN,
        **context,
    )


@router.get("/dashboard/account", response_class=HTMLResponse)
def account(request: Request, session: SessionDep, who: LoggedIn) -> Response:
    return _account_page(request, session, who)


@router.post("/dashboard/account/password", response_class=HTMLResponse)
def change_password(
    request: Request, session: SessionDep, who: LoggedIn, form: PostedForm
) -> Response:
    """Change one's own password; every other login session of the account ends."""
    field = {
        name: str(form.get(name, ""))
        for name in ("current_password", "new_password", "repeat_password")
    }
    try:
        accounts.change_password(
            session,
            accounts.get_organiser(session, who.organiser_id),
            current=field["current_password"],
            new=field["new_password"],
            repeat=field["repeat_password"],
            keep=session_token(request),
        )
    except InvalidInput as exc:
        errors = explain.input_errors(exc, web.ui_language(request))
        return _account_page(request, session, who, errors=errors, status=422)
    return redirect_back(request, "/dashboard/account", "password-changed")


@router.post("/dashboard/tokens", response_class=HTMLResponse)
def create_token(
    request: Request, session: SessionDep, who: LoggedInAdmin, form: PostedForm
) -> Response:
    """A new API token, shown on the page this once (only its hash is kept)."""
    name = " ".join(str(form.get("name", "")).split())[:TOKEN_NAME_MAX]
    slug = str(form.get("organisation", ""))
    organisation = organisers.get_organisation(session, slug) if slug else None
    _token, raw = organisers.create_token(
        session, organisation=organisation, name=name, by=who.label
    )
    return _account_page(request, session, who, status=201, new_token=raw)


@router.get("/dashboard/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token_page(
    request: Request, session: SessionDep, who: LoggedInAdmin, token_id: RowId
) -> Response:
    """Asks before revoking (the account page's Revoke is a link here): a revoked token
    cannot be brought back, and a program using it stops working at once."""
    token = accounts.get_token(session, token_id)
    return private_page(request, "dashboard/revoke.html", who, token=token)


@router.post("/dashboard/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, session: SessionDep, who: LoggedInAdmin, token_id: RowId
) -> Response:
    accounts.revoke_token(session, token_id, by=who.label)
    return redirect_back(request, "/dashboard/account", "token-revoked")
