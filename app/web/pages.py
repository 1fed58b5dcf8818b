"""Server-rendered pages for supporters: the appeals, the signing form, a letter's status."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel import Locale
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from app.appeals import letter as appeal_letter
from app.appeals import service as appeals
from app.core import i18n, security
from app.core.db import SessionDep, commit_now
from app.core.deps import PostedForm, SettingsDep, client_host
from app.core.errors import InvalidInput, OutcryError
from app.core.text import countries
from app.delivery import compose
from app.letters import guard, privacy
from app.letters import service as letters
from app.letters.schemas import LetterRead, SignatureIn
from app.models import Appeal, Letter, LetterStatus, utcnow
from app.web import environment, explain, formtrap
from app.web.explain import N_

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
# A form shown again because it was open too long (app/web/formtrap.py).
STALE_FORM = N_(
    "This form was open for a long time. Please check what you typed and send it again."
)

STATIC_DIR = Path(__file__).parent / "static"
FORM_FIELDS = ("name", "email", "country", "organisation", "city", "message", "language", "org")
CHECKBOXES = ("share_email", "copy_to_me", "notify_replies")


def native_name(code: str) -> str:
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def untranslated_note(texts: appeals.AppealText, lang: str) -> str:
    """What a reader of `lang` is told when the appeal is not (all) in their language:
    empty when it is. Each catalog names its own language in these sentences."""
    _ = i18n.translations(lang).gettext
    original = i18n.language_name(texts.default_language, lang)
    if texts.language != lang:
        return _(
            "This appeal has not been translated into English yet, so it is shown in its "
            "original language (%(language)s)."
        ) % {"language": original}
    # The parts this page shows (the campaign's name is in e-mails and PDFs only).
    names = {
        "title": _("the title"),
        "summary": _("the summary"),
        "targets": _("who receives the letter"),
    }
    heads = (field.split(".")[0] for field in texts.untranslated)
    parts = dict.fromkeys(names[head] for head in heads if head in names)
    if not parts:
        return ""
    return _(
        "Parts of this appeal have not been translated into English yet and are shown in "
        "its original language (%(language)s): %(parts)s."
    ) % {"language": original, "parts": ", ".join(parts)}


def ui_language(request: Request, available: list[str] | tuple[str, ...] = i18n.SUPPORTED) -> str:
    """?lang= first, then Accept-Language, among the languages the UI has."""
    choices = [lang for lang in available if lang in i18n.SUPPORTED] or list(i18n.SUPPORTED)
    return i18n.negotiate(
        request.headers.get("accept-language"), request.query_params.get("lang"), choices
    )


def letter_language(request: Request, letter: Letter) -> str:
    """A supporter's own pages (confirm, their letter): the language chosen with ?lang=,
    else the language they signed in, so the language links on those pages work."""
    if request.query_params.get("lang"):
        return ui_language(request)
    return ui_language(request, [letter.language])


def render(
    request: Request, template: str, lang: str, http_status: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page template with the context every page gets."""
    env = environment.make_environment(lang)
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
    form_token: str | None = None,
) -> HTMLResponse:
    lang = ui_language(request)
    settings = request.app.state.settings
    _ = i18n.translations(lang).gettext
    letter_lang = form.get("language") or (lang if lang in appeal.languages else None)
    letter_lang = letter_lang if letter_lang in appeal.languages else appeal.default_language
    preview = appeal_letter.preview(
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
        appeal, counted, base_url=request.app.state.settings.base_url, now=utcnow(), language=lang
    )
    return render(
        request,
        "appeal.html",
        lang,
        http_status=status_code,
        appeal=view,
        form={**form, "language": letter_lang},
        errors=errors,
        countries=countries(lang),
        letter_languages=[(code, native_name(code)) for code in appeal.languages],
        org=org,
        org_name=next((o.name for o in appeal.organisations if o.slug == org), None),
        closed=not view.accepting,
        preview_subject=preview.subject,
        preview_body=preview.body,
        untranslated_note=untranslated_note(appeals.in_language(appeal, lang), lang),
        # A form shown again after a mistake keeps its first token: the time it took to
        # fill in counts from when it was first shown.
        form_token=form_token or formtrap.issue(settings, slug=appeal.slug, now=utcnow()),
        honeypot=formtrap.HONEYPOT,
        forget_days=settings.forget_after_days,
    )


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    all_appeals = appeals.list_appeals(session)
    counted = appeals.counts(session, [a.id for a in all_appeals])
    now = utcnow()
    lang = ui_language(request)
    views = [
        appeals.to_read(a, counted[a.id], base_url=settings.base_url, now=now, language=lang)
        for a in all_appeals
    ]
    return render(request, "index.html", lang, appeals=views)


@router.get("/a/{slug}", response_class=HTMLResponse)
def appeal_page(request: Request, session: SessionDep, slug: str) -> HTMLResponse:
    appeal = appeals.published_appeal(session, slug)
    return _appeal_page(request, session, appeal, form={}, errors={})


@router.post("/a/{slug}", response_class=HTMLResponse)
def sign_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    slug: str,
    posted: PostedForm,
) -> HTMLResponse:
    """The signing form without JavaScript: errors re-render the form with what was typed;
    a bot (honeypot, or too fast) gets the page a person would, and nothing happens.

    A plain `def`, so the database and Redis are used on a worker thread, never in the
    event loop: on SQLite a write waits there for the one writer, and in the event loop
    it would hold up every request of the process, the writer's own commit included."""
    appeal = appeals.published_appeal(session, slug)
    guard.check_signing_limit(settings, client_host(request))
    form = {name: str(posted.get(name, "")) for name in FORM_FIELDS}
    data: dict[str, Any] = {k: v for k, v in form.items() if v != ""}
    for box in CHECKBOXES:
        data[box] = posted.get(box) in ("on", "1", "true", "yes")
        form[box] = "on" if data[box] else ""
    token = str(posted.get(formtrap.TOKEN_FIELD, ""))
    verdict, why = formtrap.judge(
        settings,
        slug=appeal.slug,
        token=token,
        honeypot=str(posted.get(formtrap.HONEYPOT, "")),
        now=utcnow(),
    )
    lang = ui_language(request)
    if verdict is formtrap.Verdict.bot:
        log.info("signing form of %s taken for a bot's: %s", appeal.slug, why)
        return _signed_page(request, appeal, lang, letter=None, email=form["email"])
    if verdict is formtrap.Verdict.stale:
        stale = {"form": i18n.translations(lang).gettext(STALE_FORM)}
        return _appeal_page(request, session, appeal, form=form, errors=stale, status_code=422)
    try:
        signature = SignatureIn.model_validate(data)
        letter = letters.sign_letter(
            session,
            appeal=appeal,
            form=signature,
            settings=settings,
            now=utcnow(),
            client=client_host(request),
        )
    except ValidationError as exc:
        fields = explain.field_errors(exc.errors(), lang)
        return _appeal_page(
            request, session, appeal, form=form, errors=fields, status_code=422, form_token=token
        )
    except InvalidInput as exc:
        fields = explain.input_errors(exc, lang)
        return _appeal_page(
            request, session, appeal, form=form, errors=fields, status_code=422, form_token=token
        )
    # The page first, then the commit: a page that failed would otherwise answer an error
    # for a letter that was stored and is being sent.
    page = _signed_page(request, appeal, lang, letter=letter, email=form["email"])
    commit_now(session)
    return page


def _signed_page(
    request: Request, appeal: Appeal, lang: str, *, letter: Letter | None, email: str
) -> HTMLResponse:
    """ "Check your e-mail" (or "thank you"), for a letter signed, or for a bot: then with
    an id and key that lead nowhere, made the same way, so the page looks no different."""
    public_id = letter.public_id if letter else security.new_token(12)
    key = letter.key if letter else security.new_token(24)
    status = letter.status if letter else LetterStatus.pending_confirmation
    if letter is None and not appeal.require_confirmation:
        status = LetterStatus.queued
    return render(
        request,
        "signed.html",
        lang,
        http_status=201,
        appeal=appeals.in_language(appeal, lang),
        letter={"id": public_id, "status": status.value},
        status_url=f"/letters/{public_id}?key={key}",
        needs_confirmation=appeal.require_confirmation,
        email=email,
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
    lang = letter_language(request, letter)
    return render(
        request,
        "confirm.html",
        lang,
        appeal=appeals.in_language(letter.appeal, lang),
        letter=letter,
        action=f"/confirm/{token}",
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm_submit(
    request: Request, session: SessionDep, settings: SettingsDep, token: str
) -> HTMLResponse:
    """The button on the confirmation page: the letter is queued for delivery."""
    letter, already = letters.confirm_letter(session, token=token, settings=settings, now=utcnow())
    page = _confirmed(request, letter, already=already)  # before the commit, as sign_page's
    commit_now(session)
    return page


def _confirmed(request: Request, letter: Letter, *, already: bool) -> HTMLResponse:
    lang = letter_language(request, letter)
    return render(
        request,
        "confirmed.html",
        lang,
        appeal=appeals.in_language(letter.appeal, lang),
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
    lang = letter_language(request, letter)
    return render(
        request,
        "letter.html",
        lang,
        appeal=appeals.in_language(letter.appeal, lang),
        letter={
            **view.model_dump(),
            "signer_name": view.signer.name,
            "status": view.status.value,
        },
        deliveries=[d.model_dump() for d in view.deliveries],
        pdf_url=view.pdf_url,
        sign_again_url=compose.sign_again_url(settings, letter),
        reached=_reached(view),
        actions=_letter_actions(letter),
        done=request.query_params.get("done"),
    )


def _reached(view: LetterRead) -> bool:
    """Whether a target has the letter: then a copy exists that cannot be recalled."""
    return any(d.status == "sent" and d.channel in ("email", "fax") for d in view.deliveries)


def _letter_actions(letter: Letter) -> dict[str, str]:
    """Where the letter page's withdraw and erase forms go (the key is the credential)."""
    query = urlencode({"key": letter.key})
    return {
        "withdraw": f"/letters/{letter.public_id}/withdraw?{query}",
        "erase": f"/letters/{letter.public_id}/erase?{query}",
    }


def _back_to_letter(request: Request, letter: Letter, done: str) -> RedirectResponse:
    query = {"key": letter.key, "done": done}
    if request.query_params.get("lang"):
        query["lang"] = request.query_params["lang"]
    return RedirectResponse(f"/letters/{letter.public_id}?{urlencode(query)}", status_code=303)


@router.post("/letters/{public_id}/withdraw")
def withdraw_letter(
    request: Request, session: SessionDep, public_id: str, key: str = ""
) -> RedirectResponse:
    """The letter page's "withdraw" button: the letter will not be sent."""
    letter = letters.get_letter(session, public_id=public_id, key=key)
    privacy.withdraw(session, letter=letter, now=utcnow())
    return _back_to_letter(request, letter, "withdrawn")


@router.get("/letters/{public_id}/erase", response_class=HTMLResponse)
def erase_confirm(
    request: Request, session: SessionDep, settings: SettingsDep, public_id: str, key: str = ""
) -> HTMLResponse:
    """Asks before erasing: what goes, what stays, and that a sent copy cannot be recalled.
    Changes nothing."""
    letter = letters.get_letter(session, public_id=public_id, key=key)
    view = letters.to_read(session, letter, settings=settings)
    lang = letter_language(request, letter)
    return render(
        request,
        "letter_erase.html",
        lang,
        appeal=appeals.in_language(letter.appeal, lang),
        letter={**view.model_dump(), "status": view.status.value},
        reached=_reached(view),
        actions=_letter_actions(letter),
        letter_url=f"/letters/{letter.public_id}?{urlencode({'key': letter.key})}",
    )


@router.post("/letters/{public_id}/erase")
def erase_letter(
    request: Request, session: SessionDep, public_id: str, key: str = ""
) -> RedirectResponse:
    """The erase page's button: the supporter's details are deleted."""
    letter = letters.get_letter(session, public_id=public_id, key=key)
    privacy.erase(session, letter=letter, now=utcnow())
    return _back_to_letter(request, letter, "erased")
