"""The organisers' pages: log in and out, the dashboard, an appeal's figures, moderation.

Server-rendered, no JavaScript needed: every action is a POST form carrying the
session's CSRF token, answered with a redirect back to the page (post/redirect/get).
"""

from __future__ import annotations

import math
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.appeals import service as appeals
from app.appeals.deps import OrganiserAppeal
from app.core import auth, params
from app.core.auth import Principal, letters_filter
from app.core.db import SessionDep
from app.core.deps import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    Admin,
    Organiser,
    PostedForm,
    SettingsDep,
    clear_session_cookie,
    login_csrf,
    session_token,
    set_login_cookie,
    set_session_cookie,
)
from app.core.errors import (
    CsrfRejected,
    InvalidInput,
    InvalidLogin,
    OutcryError,
    RateLimited,
    Unauthorized,
)
from app.core.params import RowId
from app.core.text import countries
from app.delivery import faxes, ratelimit
from app.delivery import service as deliveries
from app.delivery.deps import OrganiserDelivery
from app.letters import moderation, privacy, samples
from app.models import Appeal, utcnow
from app.organisers import exports, inbox, stats
from app.organisers import service as organisers
from app.organisers.deps import OrganiserLetter, RejectReason
from app.web import pages as web

router = APIRouter(include_in_schema=False)

# The dashboard shows supporters' names: no caching, no framing (clickjacking the retry
# and moderation buttons), nothing loaded from elsewhere.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _private(response: Response) -> Response:
    response.headers.update(PRIVATE_HEADERS)
    return response


def private_page(
    request: Request, template: str, who: Principal | None, **context: Any
) -> Response:
    lang = web.ui_language(request)
    status = context.pop("http_status", 200)
    return _private(
        web.render(
            request,
            template,
            lang,
            http_status=status,
            who=who,
            csrf_field=CSRF_FIELD,
            csrf=(who.csrf_token or "") if who else "",
            notice=request.query_params.get("done") if who else None,
            **context,
        )
    )


def redirect_back(request: Request, path: str, done: str | None = None) -> RedirectResponse:
    """303 to one of our pages, keeping the page language and naming what was done."""
    query = {k: v for k, v in (("lang", request.query_params.get("lang")), ("done", done)) if v}
    url = path + ("?" + urlencode(query) if query else "")
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """Where to go after logging in: only one of the dashboard's own pages."""
    if value and value.startswith("/dashboard") and "//" not in value and "\\" not in value:
        return value
    return "/dashboard"


def login_page(
    request: Request, *, next_url: str, error: str | None = None, status: int = 200
) -> Response:
    """The login form, with its CSRF token in a hidden field and a signed cookie (the same
    token while the cookie lasts, so two open login tabs both work)."""
    token = login_csrf(request) or secrets.token_urlsafe(24)
    response = private_page(
        request,
        "login.html",
        None,
        http_status=status,
        login_token=token,
        next_url=safe_next(next_url),
        error=error,
        email=request.query_params.get("email", ""),
    )
    set_login_cookie(response, request.app.state.settings, token)
    return response


def error_page(request: Request, exc: OutcryError) -> Response:
    """Errors as pages; on an organiser page without a login, the login form (still 401)."""
    if isinstance(exc, Unauthorized) and not isinstance(exc, InvalidLogin):
        next_url = request.url.path if request.method == "GET" else "/dashboard"
        if request.url.query and request.method == "GET":
            next_url += "?" + request.url.query
        response = login_page(request, next_url=next_url, status=401)
        response.headers.update(exc.headers())
        return response
    return _private(web.error_page(request, exc))


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/dashboard") -> Response:
    return login_page(request, next_url=next)


# Guessing passwords: each try costs an argon2 check, and a client address gets this many.
LOGIN_ATTEMPTS = 20
LOGIN_PERIOD = 15 * 60


def login_limit(request: Request, settings: SettingsDep) -> None:
    """429 once a client address has tried LOGIN_ATTEMPTS logins in LOGIN_PERIOD."""
    host = request.client.host if request.client else "unknown"
    wait = ratelimit.client_wait(
        settings.broker_url, f"login:{host}", limit=LOGIN_ATTEMPTS, period=LOGIN_PERIOD
    )
    if wait > 0:
        raise RateLimited(math.ceil(wait))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _limit: Annotated[None, Depends(login_limit)],
    form: PostedForm,
) -> Response:
    """Check the password and set the session cookie; the form's CSRF token must match
    its cookie (so nobody can log a browser into their own account from elsewhere)."""
    field = {name: str(form.get(name, "")) for name in ("email", "password", "next", CSRF_FIELD)}
    expected = login_csrf(request)
    if not expected or not secrets.compare_digest(expected, field[CSRF_FIELD]):
        raise CsrfRejected()
    try:
        raw = organisers.log_in(
            session, email=field["email"], password=field["password"], now=utcnow()
        )
    except InvalidLogin as exc:
        return login_page(request, next_url=field["next"], error=exc.detail, status=401)
    old = session_token(request)
    if old:  # a new login replaces the browser's old session, never adds to it
        organisers.log_out(session, old)
    response = RedirectResponse(safe_next(field["next"]), status_code=303)
    set_session_cookie(response, settings, raw)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, settings: SettingsDep, who: Organiser
) -> Response:
    """End the session (CSRF-checked, so no other site can log an organiser out)."""
    raw = session_token(request)
    if who.via == "session" and raw:
        organisers.log_out(session, raw)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, who: Organiser) -> Response:
    """Every appeal the organiser may see, with progress toward its goal; for an admin,
    faxes left waiting in the fax folder."""
    rows = stats.overview(session, who=who)
    now = utcnow()
    fax_folder = faxes.folder(request.app.state.settings)
    return private_page(
        request,
        "dashboard/index.html",
        who,
        rows=[{"row": r, "phase": appeals.phase(r.appeal, now)} for r in rows],
        fax_backlog=faxes.backlog(fax_folder, now=now) if who.is_admin else None,
        as_of=now,
    )


def _share_links(request: Request, appeal: Appeal, who: Principal) -> list[tuple[str, str]]:
    base = request.app.state.settings.base_url
    return [
        (org.name, f"{base}/a/{appeal.slug}?{urlencode({'org': org.slug})}")
        for org in appeal.organisations
        if who.is_admin or org.id == who.organisation_id
    ]


@router.get("/dashboard/{slug}", response_class=HTMLResponse)
def dashboard_appeal(
    request: Request, session: SessionDep, who: Organiser, appeal: OrganiserAppeal
) -> Response:
    """One appeal: counts by status, the chart, countries, organisations, failures."""
    figures = stats.appeal_stats(session, appeal=appeal, who=who)
    total = appeals.counts(session, [appeal.id])[appeal.id]
    lang = web.ui_language(request)
    signed = sum(figures.letters[s.value] for s in appeals.SIGNED)
    now = utcnow()
    phase = appeals.phase(appeal, now)
    return private_page(
        request,
        "dashboard/appeal.html",
        who,
        appeal=appeal,
        phase=phase,
        can_purge=who.is_admin and phase == "closed",
        total=total,
        stats=figures,
        signed=signed,
        unattributed=signed - sum(figures.by_organisation.values()),
        country_names=dict(countries(lang)),
        failures=stats.latest_failures(session, appeal=appeal, who=who),
        replies=inbox.replies(session, appeal=appeal, who=who, limit=10),
        bounces=inbox.bounces(session, appeal=appeal, who=who, limit=10),
        share_links=_share_links(request, appeal, who),
        samples=stats.recent_samples(session, appeal=appeal) if who.is_admin else [],
        language_names={code: web.native_name(code) for code in appeal.languages},
        can_test_send=auth.may_test_send(who) and phase in ("draft", "scheduled"),
        as_of=now,
    )


@router.get("/dashboard/{slug}/moderation", response_class=HTMLResponse)
def moderation_page(
    request: Request, session: SessionDep, who: Organiser, appeal: OrganiserAppeal
) -> Response:
    """The letters waiting for a moderator, oldest first, with approve and reject buttons."""
    held, total = moderation.held_letters(
        session, appeal=appeal, where=letters_filter(who), limit=100
    )
    summaries = [exports.summary_of(x, who=who) for x in held]
    return private_page(
        request,
        "dashboard/moderation.html",
        who,
        appeal=appeal,
        letters=summaries,
        total=total,
        organisations={o.slug: o.name for o in appeal.organisations},
        country_names=dict(countries(web.ui_language(request))),
        language_names={x.language: web.native_name(x.language) for x in summaries},
        groups=moderation.hold_groups(session, appeal=appeal, where=letters_filter(who)),
    )


@router.post("/dashboard/{slug}/moderation/release")
def release_group(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    posted: PostedForm,
) -> Response:
    """Approve every letter the flood guard held for one reason (the form's `reason`)."""
    reason = str(posted.get("reason", ""))
    if not reason:
        raise InvalidInput({"reason": "must name a group of held letters"})
    n = moderation.approve_group(
        session,
        appeal=appeal,
        reason=reason,
        where=letters_filter(who),
        settings=settings,
        now=utcnow(),
        by=who.label,
    )
    return redirect_back(request, f"/dashboard/{appeal.slug}/moderation", f"released-{n}")


@router.get("/dashboard/{slug}/purge", response_class=HTMLResponse)
def purge_page(
    request: Request, session: SessionDep, who: Admin, appeal: OrganiserAppeal, before: str = ""
) -> Response:
    """Asks before anonymising a closed appeal's letters: how many, and what stays."""
    cutoff = params.parse_bound(before, field="before")
    return private_page(
        request,
        "dashboard/purge.html",
        who,
        appeal=appeal,
        phase=appeals.phase(appeal, utcnow()),
        before=before,
        preview=privacy.purge_preview(session, appeal=appeal, before=cutoff),
    )


@router.post("/dashboard/{slug}/purge")
def purge(
    request: Request,
    session: SessionDep,
    who: Admin,
    appeal: OrganiserAppeal,
    posted: PostedForm,
) -> Response:
    """Anonymise a closed appeal's finished letters (before the form's `before` day, if
    given); every count stays."""
    before = str(posted.get("before", ""))
    cutoff = params.parse_bound(before, field="before")
    done = privacy.purge_appeal(session, appeal=appeal, now=utcnow(), before=cutoff, by=who.label)
    return redirect_back(request, f"/dashboard/{appeal.slug}", f"purged-{done.erased}")


@router.post("/dashboard/letters/{letter_id}/approve")
def approve(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Organiser,
    letter: OrganiserLetter,
) -> Response:
    moderation.approve(session, letter=letter, settings=settings, now=utcnow(), by=who.label)
    return redirect_back(request, f"/dashboard/{letter.appeal.slug}/moderation", "approved")


@router.post("/dashboard/letters/{letter_id}/reject")
def reject(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Organiser,
    letter: OrganiserLetter,
    reason: RejectReason,
) -> Response:
    moderation.reject(
        session, letter=letter, settings=settings, now=utcnow(), by=who.label, reason=reason
    )
    return redirect_back(request, f"/dashboard/{letter.appeal.slug}/moderation", "rejected")


@router.post("/dashboard/deliveries/{delivery_id}/retry")
def retry(
    request: Request, session: SessionDep, who: Organiser, delivery: OrganiserDelivery
) -> Response:
    """The retry button under a failure: the delivery goes back in the queue; 409
    `not_failed` if it neither failed nor bounced (the same service as the API's retry)."""
    deliveries.retry(session, delivery, now=utcnow(), by=who.label)
    if delivery.letter is None:
        raise AssertionError("OrganiserDelivery is a letter's delivery")
    return redirect_back(request, f"/dashboard/{delivery.letter.appeal.slug}", "retried")


@router.post("/dashboard/{slug}/test-send")
def test_send(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Organiser,
    appeal: OrganiserAppeal,
) -> Response:
    """A sample of the appeal's letter in each language, to the organiser's own address."""
    to = auth.own_address(who)
    samples.send_samples(session, appeal=appeal, to=to, settings=settings, now=utcnow())
    return redirect_back(request, f"/dashboard/{appeal.slug}", "test-sent")


@router.get("/dashboard/bounces/{bounce_id}", response_class=HTMLResponse)
def bounce_page(
    request: Request, session: SessionDep, who: Organiser, bounce_id: RowId
) -> Response:
    """One bounce and the report that came back, as plain text."""
    bounce = inbox.bounce_detail(session, bounce_id=bounce_id, who=who)
    return private_page(request, "dashboard/bounce.html", who, bounce=bounce)


@router.post("/dashboard/{slug}/bounces/retry")
def retry_bounces(
    request: Request,
    session: SessionDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    form: PostedForm,
) -> Response:
    """The retry button beside an address that bounced: its letters go out again, to the
    targets' addresses as they are now."""
    recipient = form.get("recipient", "")
    inbox.retry_bounced(
        session,
        appeal=appeal,
        who=who,
        now=utcnow(),
        recipient=recipient[:254] if isinstance(recipient, str) else "",
    )
    return redirect_back(request, f"/dashboard/{appeal.slug}", "retried")
