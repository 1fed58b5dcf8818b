"""Server-rendered pages for supporters: the appeals, the signing form, a letter's status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel import Locale
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.appeals import service as appeals
from app.appeals.routes import SettingsDep
from app.core.db import SessionDep
from app.core.errors import InvalidInput, OutcryError
from app.core.text import countries
from app.letters import service as letters
from app.letters.routes import SigningLimit
from app.letters.schemas import SignatureIn
from app.models import Appeal, Letter, LetterStatus, utcnow
from app.web import explain, i18n

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).parent / "static"
FORM_FIELDS = ("name", "email", "country", "organisation", "city", "message", "language", "org")
CHECKBOXES = ("share_email", "copy_to_me", "notify_replies")


def native_name(code: str) -> str:
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def ui_language(request: Request, available: list[str] | tuple[str, ...] = i18n.SUPPORTED) -> str:
    """?lang= first, then Accept-Language, among the languages the UI has."""
    choices = [lang for lang in available if lang in i18n.SUPPORTED] or list(i18n.SUPPORTED)
    return i18n.negotiate(
        request.headers.get("accept-language"), request.query_params.get("lang"), choices
    )


def render(
    request: Request, template: str, lang: str, http_status: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page template with the context every page gets."""
    env = i18n.make_environment(lang)
    settings = request.app.state.settings
    html = env.get_template(template).render(
        lang=lang,
        base_url=settings.base_url,
        request_path=request.url.path,
        languages_nav=[(code, native_name(code)) for code in i18n.SUPPORTED],
        request_query=request.query_params,
        **context,
    )
    return HTMLResponse(html, status_code=http_status)


def error_page(request: Request, exc: OutcryError) -> HTMLResponse:
    """An OutcryError as a page, for browsers."""
    lang = ui_language(request)
    _ = i18n.translations(lang).gettext
    response = render(
        request,
        "error.html",
        lang,
        http_status=exc.status_code,
        status_code=exc.status_code,
        title=_("Something went wrong") if exc.status_code >= 500 else _("Sorry"),
        message=explain.error_message(exc, lang),
    )
    for name, value in exc.headers().items():
        response.headers[name] = value
    return response


def _appeal_page(
    request: Request,
    session: SessionDep,
    appeal: Appeal,
    *,
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    lang = ui_language(request)
    _ = i18n.translations(lang).gettext
    letter_lang = form.get("language") or (lang if lang in appeal.languages else None)
    letter_lang = letter_lang if letter_lang in appeal.languages else appeal.default_language
    preview = letters.preview(
        appeal,
        letter_lang,
        today=utcnow().date(),
        placeholders={
            "name": _("[your name]"),
            "organisation": _("[your union]"),
            "city": _("[your city]"),
        },
    )
    org = form.get("org") or request.query_params.get("org", "")
    counted = appeals.counts(session, [appeal.id])[appeal.id]
    view = appeals.to_read(
        appeal, counted, base_url=request.app.state.settings.base_url, now=utcnow()
    )
    return render(
        request,
        "appeal.html",
        lang,
        http_status=status_code,
        appeal=view,
        form={"language": letter_lang, **form},
        errors=errors,
        countries=countries(lang),
        letter_languages=[(code, native_name(code)) for code in appeal.languages],
        org=org,
        org_name=next((o.name for o in appeal.organisations if o.slug == org), None),
        closed=not view.accepting,
        preview_subject=preview.subject,
        preview_body=preview.body,
    )


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    all_appeals = appeals.list_appeals(session)
    counted = appeals.counts(session, [a.id for a in all_appeals])
    now = utcnow()
    views = [
        appeals.to_read(a, counted[a.id], base_url=settings.base_url, now=now) for a in all_appeals
    ]
    return render(request, "index.html", ui_language(request), appeals=views)


@router.get("/a/{slug}", response_class=HTMLResponse)
def appeal_page(request: Request, session: SessionDep, slug: str) -> HTMLResponse:
    appeal = appeals.get_appeal(session, slug, include_drafts=False)
    return _appeal_page(request, session, appeal, form={}, errors={})


@router.post("/a/{slug}", response_class=HTMLResponse)
async def sign_page(
    request: Request, session: SessionDep, settings: SettingsDep, slug: str, _limit: SigningLimit
) -> HTMLResponse:
    """The signing form without JavaScript: errors re-render the form with what was typed."""
    appeal = appeals.get_appeal(session, slug, include_drafts=False)
    posted = await request.form()
    form = {name: str(posted.get(name, "")) for name in FORM_FIELDS}
    data: dict[str, Any] = {k: v for k, v in form.items() if v != ""}
    for box in CHECKBOXES:
        data[box] = posted.get(box) in ("on", "1", "true", "yes")
        form[box] = "on" if data[box] else ""
    try:
        signature = SignatureIn.model_validate(data)
        letter = letters.sign_letter(
            session, appeal=appeal, form=signature, settings=settings, now=utcnow()
        )
    except ValidationError as exc:
        fields = explain.field_errors(exc.errors(), ui_language(request))
        return _appeal_page(request, session, appeal, form=form, errors=fields, status_code=422)
    except InvalidInput as exc:
        fields = explain.input_errors(exc, ui_language(request))
        return _appeal_page(request, session, appeal, form=form, errors=fields, status_code=422)
    lang = ui_language(request)
    return render(
        request,
        "signed.html",
        lang,
        http_status=201,
        appeal=appeal,
        letter={"id": letter.public_id, "status": letter.status.value},
        status_url=f"/letters/{letter.public_id}?key={letter.key}",
        needs_confirmation=appeal.require_confirmation,
        email=letter.signer_email,
    )


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(
    request: Request, session: SessionDep, settings: SettingsDep, token: str
) -> HTMLResponse:
    """The link in the confirmation e-mail: shows the letter and a button to send it.

    Opening the link changes nothing, because mail scanners open every link in an
    e-mail: a letter signed with someone else's address would otherwise be sent in
    their name without them. Only the button (a POST) confirms.
    """
    letter = letters.letter_for_token(session, token=token, settings=settings, now=utcnow())
    if letter.status is not LetterStatus.pending_confirmation:
        return _confirmed(request, letter, already=True)
    return render(
        request,
        "confirm.html",
        ui_language(request, [letter.language]),
        appeal=letter.appeal,
        letter=letter,
        action=f"/confirm/{token}",
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm_submit(
    request: Request, session: SessionDep, settings: SettingsDep, token: str
) -> HTMLResponse:
    """The button on the confirmation page: the letter is queued for delivery."""
    letter, already = letters.confirm_letter(session, token=token, settings=settings, now=utcnow())
    return _confirmed(request, letter, already=already)


def _confirmed(request: Request, letter: Letter, *, already: bool) -> HTMLResponse:
    return render(
        request,
        "confirmed.html",
        ui_language(request, [letter.language]),
        appeal=letter.appeal,
        letter=letter,
        letter_url=f"/letters/{letter.public_id}?key={letter.key}",
        already=already,
    )


@router.get("/letters/{public_id}", response_class=HTMLResponse)
def letter_page(
    request: Request, session: SessionDep, settings: SettingsDep, public_id: str, key: str = ""
) -> HTMLResponse:
    """The supporter's letter and where each copy of it has got to."""
    letter = letters.get_letter(session, public_id=public_id, key=key)
    view = letters.to_read(session, letter, settings=settings)
    deliveries = [
        {**d.model_dump(), "recipients": ", ".join(d.recipients)} for d in view.deliveries
    ]
    return render(
        request,
        "letter.html",
        ui_language(request, [letter.language]),
        appeal=letter.appeal,
        letter={
            **view.model_dump(),
            "signer_name": view.signer.name,
            "status": view.status.value,
        },
        deliveries=deliveries,
        pdf_url=view.pdf_url,
    )
