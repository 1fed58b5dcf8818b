"""Invitations, from both ends: an admin invites, re-scopes and removes organisers in the
dashboard; the invitee opens the link and chooses a password.

Opening the link changes nothing (mail scanners open links); only its form uses it. That
form carries a CSRF token of its own (in a signed cookie, as the login form does), so no
other site can make a browser accept an invitation and log it into an account someone
else chose the password of.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.core.auth import Principal
from app.core.db import SessionDep
from app.core.deps import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LoggedInAdmin,
    PostedForm,
    SettingsDep,
    login_csrf,
    session_token,
    set_login_cookie,
    set_session_cookie,
)
from app.core.errors import CsrfRejected, InvalidInput
from app.core.params import RowId
from app.core.security import PASSWORD_MIN
from app.models import utcnow
from app.organisers import accounts, invitations
from app.organisers import service as organisers
from app.organisers.pages import private_page, redirect_back
from app.web import explain
from app.web import pages as web

router = APIRouter(include_in_schema=False)


def _organisers_page(
    request: Request,
    session: SessionDep,
    who: Principal,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    return private_page(
        request,
        "dashboard/organisers.html",
        who,
        http_status=status,
        errors=errors or {},
        organisers=accounts.list_organisers(session),
        invitations=invitations.pending(session, now=utcnow()),
        invitation_days=request.app.state.settings.invitation_days,
        organisations=accounts.list_organisations(session),
        **context,
    )


@router.get("/dashboard/account/organisers", response_class=HTMLResponse)
def organisers_page(request: Request, session: SessionDep, who: LoggedInAdmin) -> Response:
    """Every account and open invitation, the invitation form, scope and remove."""
    return _organisers_page(request, session, who)


def _organisation(session: SessionDep, slug: str) -> Any:
    return organisers.get_organisation(session, slug) if slug else None


@router.post("/dashboard/account/organisers/invite", response_class=HTMLResponse)
def invite(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: LoggedInAdmin,
    sent: PostedForm,
) -> Response:
    """Invite someone by e-mail (the e-mail goes through the outbox)."""
    email = str(sent.get("email", "")).strip()
    slug = str(sent.get("organisation", ""))
    lang = web.ui_language(request)
    try:
        invitations.invite(
            session,
            email=email,
            organisation=_organisation(session, slug),
            language=lang,
            settings=settings,
            now=utcnow(),
            by=who.label,
        )
    except InvalidInput as exc:
        errors = explain.input_errors(exc, lang)
        return _organisers_page(request, session, who, errors=errors, status=422, email=email)
    except invitations.AlreadyOrganiser as exc:
        message = explain.error_message(exc, lang)
        return _organisers_page(
            request, session, who, errors={"email": message}, status=409, email=email
        )
    return redirect_back(request, "/dashboard/account/organisers", "invited")


@router.post("/dashboard/account/organisers/{organiser_id}/scope")
def rescope(
    request: Request,
    session: SessionDep,
    who: LoggedInAdmin,
    organiser_id: RowId,
    posted: PostedForm,
) -> Response:
    """Make an account an admin's or a union's (its sessions end, so it holds at once)."""
    slug = str(posted.get("organisation", ""))
    accounts.rescope_organiser(
        session,
        accounts.get_organiser(session, organiser_id),
        organisation=_organisation(session, slug),
        by=who.label,
    )
    return redirect_back(request, "/dashboard/account/organisers", "rescoped")


@router.get("/dashboard/account/organisers/{organiser_id}/remove", response_class=HTMLResponse)
def remove_page(
    request: Request, session: SessionDep, who: LoggedInAdmin, organiser_id: RowId
) -> Response:
    """Asks before removing an account."""
    organiser = accounts.get_organiser(session, organiser_id)
    return private_page(
        request,
        "dashboard/remove.html",
        who,
        organiser=organiser,
        yourself=organiser.id == who.organiser_id,
    )


@router.post("/dashboard/account/organisers/{organiser_id}/remove")
def remove(
    request: Request, session: SessionDep, who: LoggedInAdmin, organiser_id: RowId
) -> Response:
    """Remove the account; LastAdmin (409) if it is the last admin's."""
    organiser = accounts.get_organiser(session, organiser_id)
    accounts.remove_organiser(session, organiser, by=who.label)
    if organiser_id == who.organiser_id:
        return RedirectResponse("/login", status_code=303)
    return redirect_back(request, "/dashboard/account/organisers", "removed")


def _invitation_page(
    request: Request,
    invitation: Any,
    token: str,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    csrf = login_csrf(request) or secrets.token_urlsafe(24)
    response = private_page(
        request,
        "invitation.html",
        None,
        http_status=status,
        invitation=invitation,
        token=token,
        invitation_csrf=csrf,
        errors=errors or {},
        password_min=PASSWORD_MIN,
    )
    set_login_cookie(response, request.app.state.settings, csrf)
    return response


@router.get("/invitations/{token}", response_class=HTMLResponse)
def invitation_page(request: Request, session: SessionDep, token: str) -> Response:
    """The link in the invitation: the form to choose a password. Opening it changes
    nothing, because mail scanners open every link in an e-mail; 404 if it was used
    or has expired."""
    invitation = invitations.find(session, token=token, now=utcnow())
    return _invitation_page(request, invitation, token)


@router.post("/invitations/{token}", response_class=HTMLResponse)
def accept_invitation(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: str,
    sent: PostedForm,
) -> Response:
    """The password chosen: the account is made, the link is spent, and the invitee is
    logged in."""
    field = {n: str(sent.get(n, "")) for n in ("new_password", "repeat_password", CSRF_FIELD)}
    expected = login_csrf(request)
    if not expected or not secrets.compare_digest(expected, field[CSRF_FIELD]):
        raise CsrfRejected()
    now = utcnow()
    try:
        organiser = invitations.accept(
            session,
            token=token,
            password=field["new_password"],
            repeat=field["repeat_password"],
            now=now,
        )
    except InvalidInput as exc:
        invitation = invitations.find(session, token=token, now=now)
        errors = explain.input_errors(exc, web.ui_language(request))
        return _invitation_page(request, invitation, token, errors=errors, status=422)
    old = session_token(request)
    if old:  # a browser logged in as someone else is now the invitee's
        organisers.log_out(session, old)
    raw = organisers.start_session(session, organiser, now=now)
    response = RedirectResponse("/dashboard?done=welcome", status_code=303)
    set_session_cookie(response, settings, raw)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response
