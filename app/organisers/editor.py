"""The appeal editor (admins): create and edit an appeal, preview its letter, open and
close it, download and upload its appeal file.

The page posts the whole form back for every button (save, preview, add a target,
add a union, change the languages): without JavaScript that is how a row is added
and nothing typed is lost. Saving goes through the same schema (AppealIn) and service
(appeals.save_appeal) as `outcry appeal import` and the API, and each error is shown
next to its field in the page's language.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from app.appeals import files, form, templating, texts
from app.appeals import service as appeals
from app.appeals.deps import OrganiserAppeal
from app.appeals.schemas import AppealIn
from app.core import paths
from app.core.auth import Principal
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.deps import Admin, PostedForm, SettingsDep
from app.core.errors import InvalidInput, error_text, field_name
from app.core.files import download_headers
from app.letters import samples
from app.models import Appeal, AppealStatus, utcnow
from app.organisers.pages import private_page, redirect_back
from app.web import explain
from app.web import pages as web

router = APIRouter(include_in_schema=False)

# What a status change is called on its button and confirmation page.
STATUS_ACTIONS = {"open": AppealStatus.open, "close": AppealStatus.closed}
# An appeal file is small; a larger upload is refused before it is read.
UPLOAD_MAX = 256 * 1024


def _editor(
    request: Request,
    who: Principal,
    *,
    appeal: Appeal | None,
    parsed: form.Parsed,
    errors: dict[str, str] | None = None,
    preview: list[samples.Preview] | None = None,
    status: int = 200,
) -> Response:
    """The editor showing `parsed` (what the fields say), with errors beside their fields."""
    languages = parsed.languages
    errors = form.place_errors(errors or {}, languages)
    return private_page(
        request,
        "dashboard/editor.html",
        who,
        http_status=status,
        appeal=appeal,
        v=parsed.form,
        languages=languages,
        language_names={code: web.native_name(code) for code in languages},
        target_rows=range(parsed.targets),
        organisation_rows=range(parsed.organisations),
        errors=errors,
        preview=preview or [],
        action=f"/dashboard/{appeal.slug}/edit" if appeal else "/dashboard/appeals/new",
        has_letters=bool(appeal and appeal.status is not AppealStatus.draft),
    )


def _schema_errors(exc: ValidationError, lang: str) -> dict[str, str]:
    """AppealIn's errors as {field: sentence in `lang`}; an error about the appeal as a
    whole sits by the field it is about."""
    said: dict[str, str] = {}
    for error in exc.errors():
        english = error_text(error)
        field = field_name(tuple(error.get("loc", ())))
        if field == "body":
            field = form.whole_error_field(english)
        context = error.get("ctx") or {}
        message = explain.reason(str(error.get("type", "")), context, lang, english)
        # A text given per language names the language at fault ("ru: …").
        where = str(context.get("where", ""))
        said.setdefault(
            field, where + message if where and not message.startswith(where) else message
        )
    return said


def _letter_errors(errors: dict[str, templating.LetterTemplateError], lang: str) -> dict[str, str]:
    return {field: explain.template_error(exc, lang) for field, exc in errors.items()}


def _check(data: AppealIn, lang: str) -> dict[str, str]:
    """What the service would refuse in an appeal the schema took: texts no reader could
    be shown, letters that do not render."""
    problems = texts.check(data)
    errors = explain.input_errors(InvalidInput(problems, codes=texts.codes(problems)), lang)
    errors.update(
        _letter_errors(appeals.letter_errors(data, directory=paths.letter_templates_dir()), lang)
    )
    return errors


def _languages_offered(request: Request) -> list[str]:
    """A new appeal starts in the page's language, and English if that is another."""
    lang = web.ui_language(request)
    return list(dict.fromkeys([lang, "en"]))


def _blank_editor(request: Request, who: Principal) -> Response:
    values = form.blank(_languages_offered(request))
    return _editor(request, who, appeal=None, parsed=form.parse(values))


@router.get("/dashboard/appeals/new", response_class=HTMLResponse)
def new_appeal(request: Request, who: Admin) -> Response:
    """An empty editor for a new appeal (saved as a draft)."""
    return _blank_editor(request, who)


@router.get("/dashboard/{slug}/edit", response_class=HTMLResponse)
def edit_appeal(request: Request, who: Admin, appeal: OrganiserAppeal) -> Response:
    """The editor with the appeal as it is."""
    values = form.from_file(files.as_file(appeal))
    return _editor(request, who, appeal=appeal, parsed=form.parse(values))


def _submitted(sent: FormData) -> dict[str, str]:
    return {name: value for name, value in sent.multi_items() if isinstance(value, str)}


def _submit(
    request: Request,
    session: SessionDep,
    settings: Settings,
    who: Principal,
    sent: dict[str, str],
    appeal: Appeal | None,
) -> Response:
    """One press of one of the editor's buttons."""
    lang = web.ui_language(request)
    button = sent.get("action", "save")
    if appeal is not None:  # the slug and status are not the editor's to change
        sent["slug"], sent["status"] = appeal.slug, appeal.status.value
    else:
        sent["status"] = AppealStatus.draft.value
    parsed = form.parse(
        sent,
        add_target=button == "add-target",
        add_organisation=button == "add-organisation",
    )

    def again(
        errors: dict[str, str] | None = None,
        preview: list[samples.Preview] | None = None,
        status: int = 200,
    ) -> Response:
        return _editor(
            request,
            who,
            appeal=appeal,
            parsed=parsed,
            errors=errors,
            preview=preview,
            status=status,
        )

    if button not in ("save", "preview"):
        return again()  # a row added, or the languages changed: nothing checked yet
    try:
        data = AppealIn.model_validate(parsed.data)
    except ValidationError as exc:
        return again(_schema_errors(exc, lang), status=422)
    if appeal is None and appeals.find_appeal(session, data.slug) is not None:
        return again({"slug": explain.reason("slug_taken", {}, lang, "is taken")}, status=422)
    errors = _check(data, lang)
    if errors:
        return again(errors, status=422)
    if button == "preview":
        unsaved = appeals.unsaved_appeal(data)
        return again(preview=samples.preview(unsaved, settings=settings, now=utcnow()))
    saved, created = appeals.save_appeal(
        session, data=data, directory=paths.letter_templates_dir(), by=who.label
    )
    return redirect_back(
        request, f"/dashboard/{saved.slug}/edit", "created" if created else "saved"
    )


@router.post("/dashboard/appeals/new", response_class=HTMLResponse)
def create_appeal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Admin,
    posted: PostedForm,
) -> Response:
    """The new appeal's form sent: saved as a draft, or sent back (a row added, a
    preview, errors by their fields)."""
    return _submit(request, session, settings, who, _submitted(posted), None)


@router.post("/dashboard/{slug}/edit", response_class=HTMLResponse)
def update_appeal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Admin,
    appeal: OrganiserAppeal,
    posted: PostedForm,
) -> Response:
    """The appeal's form sent: saved, or sent back. Letters already signed keep the text
    they were signed with: only new signatures get the new letter."""
    return _submit(request, session, settings, who, _submitted(posted), appeal)


@router.get("/dashboard/{slug}/appeal.yaml")
def download(who: Admin, appeal: OrganiserAppeal) -> Response:
    """The appeal file: `outcry appeal import` (or the upload form) makes the same appeal
    of it."""
    return Response(
        files.to_yaml(appeal),
        media_type="application/yaml; charset=utf-8",
        headers={
            **download_headers(f"{appeal.slug}.yaml"),
            "Cache-Control": "no-store",
        },
    )


@router.post("/dashboard/appeals/upload", response_class=HTMLResponse)
def upload(request: Request, session: SessionDep, who: Admin, posted: PostedForm) -> Response:
    """An appeal file uploaded: creates the appeal or updates the one with its slug, as
    `outcry appeal import` does. Errors come back on the page, by field."""
    lang = web.ui_language(request)
    content = b""
    # PostedForm closes the upload's spooled file once the page is done.
    file = posted.get("file")
    if isinstance(file, UploadFile):
        content = file.file.read(UPLOAD_MAX + 1)
    errors: dict[str, str] = {}
    if not content or len(content) > UPLOAD_MAX:
        errors = {"file": explain.reason("yaml", {}, lang, "choose an appeal file")}
    else:
        try:
            data = AppealIn.model_validate(files.read(content))
            saved, created = appeals.save_appeal(
                session, data=data, directory=paths.letter_templates_dir(), by=who.label
            )
        except ValidationError as exc:
            errors = _schema_errors(exc, lang)
        except InvalidInput as exc:
            errors = explain.input_errors(exc, lang)
        except templating.LetterTemplateError as exc:
            errors = {"file": explain.template_error(exc, lang)}
    if errors:
        return private_page(request, "dashboard/upload.html", who, http_status=422, errors=errors)
    return redirect_back(
        request, f"/dashboard/{saved.slug}/edit", "created" if created else "saved"
    )


def _status_target(to: str) -> AppealStatus:
    if to not in STATUS_ACTIONS:
        raise InvalidInput({"to": "must be open or close"})
    return STATUS_ACTIONS[to]


@router.get("/dashboard/{slug}/status", response_class=HTMLResponse)
def status_page(request: Request, who: Admin, appeal: OrganiserAppeal, to: str = "") -> Response:
    """Asks before opening, closing or reopening, saying what follows."""
    target = _status_target(to)
    now = utcnow()
    return private_page(
        request,
        "dashboard/status.html",
        who,
        appeal=appeal,
        to=to,
        target=target.value,
        allowed=target in appeals.STATUS_CHANGES[appeal.status],
        phase=appeals.phase(appeal, now),
        past_closing=appeal.closes_at is not None and appeal.closes_at <= now,
        before_opening=appeal.opens_at is not None and appeal.opens_at > now,
    )


@router.post("/dashboard/{slug}/status")
def change_status(
    request: Request,
    session: SessionDep,
    who: Admin,
    appeal: OrganiserAppeal,
    posted: PostedForm,
) -> Response:
    """The button on the status page: open, close or reopen the appeal."""
    to = str(posted.get("to", ""))
    appeals.set_status(session, appeal=appeal, status=_status_target(to), by=who.label)
    return redirect_back(request, f"/dashboard/{appeal.slug}", f"status-{to}")
