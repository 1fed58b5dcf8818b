"""JSON API for supporters: sign, confirm, follow a letter, and fetch it as a PDF."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.core.db import SessionDep, commit_now, in_session
from app.core.deps import SettingsDep, app_settings, client_host
from app.core.errors import error_responses
from app.core.files import download_headers
from app.core.responses import model_response
from app.documents import service as documents
from app.letters import privacy, service
from app.letters.schemas import ConfirmIn, LetterCreated, LetterRead, SignatureIn
from app.models import utcnow

# Every route here waits its turn for the database (admission.py): 503 when it cannot.
router = APIRouter(prefix="/api/v1", tags=["letters"], responses=error_responses(503))


@router.post(
    "/appeals/{slug}/letters",
    status_code=202,
    response_model=LetterCreated,
    responses=error_responses(404, 409, 413, 422, 429),
)
# The body is validated (422) first, in the event loop. Then the appeal's lookup (404),
# the signing limit (429), the signature, its commit and the answer's JSON all run on one
# worker thread (core/db.py, in_session): as dependencies of their own, the lookup and
# the limit each took a thread call, the answer took one (core/responses.py), and the
# session as a dependency cost FastAPI's machinery for one (issue 10).
async def sign(request: Request, slug: str, form: SignatureIn) -> Response:
    """Sign the appeal's letter; 202 with the letter's status URL."""
    settings, client = app_settings(request), client_host(request)

    def work(session: Session) -> Response:
        signed = service.sign(
            session, slug=slug, form=form, settings=settings, now=utcnow(), client=client
        )
        # Committed before the answer is built: SQLite's one write lock is held from
        # the first INSERT to the commit, and every other writer waits for it.
        commit_now(session)
        return model_response(service.created(settings, signed), status_code=202)

    return await in_session(request, work)


@router.post("/letters/confirm", responses=error_responses(404, 409, 413, 422))
def confirm(session: SessionDep, settings: SettingsDep, body: ConfirmIn) -> LetterCreated:
    """Confirm a letter with the token from the confirmation e-mail."""
    letter, _already = service.confirm_letter(
        session, token=body.token, settings=settings, now=utcnow()
    )
    commit_now(session)
    return service.created(settings, letter)


# Before `/letters/{public_id}`, which would otherwise take "abc.pdf" for a public id.
@router.get(
    "/letters/{public_id}.pdf",
    response_class=Response,
    responses=error_responses(404, 410, 422) | {200: {"content": {documents.PDF: {}}}},
)
def letter_pdf(session: SessionDep, public_id: str, key: str = "") -> Response:
    """The supporter's signed letter as a PDF; 404 for a wrong key, as for the JSON."""
    letter = service.get_letter(session, public_id=public_id, key=key)
    pdf = documents.letter_pdf(letter)
    return Response(pdf.content, media_type=pdf.media_type, headers=download_headers(pdf.filename))


@router.get("/letters/{public_id}", responses=error_responses(404, 422))
def get_letter(
    session: SessionDep, settings: SettingsDep, public_id: str, key: str = ""
) -> LetterRead:
    """The letter and each delivery's status and attempts; 404 for a wrong key."""
    letter = service.get_letter(session, public_id=public_id, key=key)
    return service.to_read(session, letter, settings=settings)


@router.post("/letters/{public_id}/withdraw", responses=error_responses(404, 409, 422))
def withdraw(
    session: SessionDep, settings: SettingsDep, public_id: str, key: str = ""
) -> LetterRead:
    """Take back a letter no target has received yet: it becomes `withdrawn` and nothing
    more of it is sent. 409 once a target has it (erase your details instead)."""
    letter = service.get_letter(session, public_id=public_id, key=key)
    privacy.withdraw(session, letter=letter, now=utcnow())
    return service.to_read(session, letter, settings=settings)


@router.delete("/letters/{public_id}", responses=error_responses(404, 409, 422))
def erase(session: SessionDep, settings: SettingsDep, public_id: str, key: str = "") -> LetterRead:
    """Erase the supporter's details: name, e-mail address, city, union, message and the
    letter's text. A letter not yet sent is withdrawn too; a copy a target received
    cannot be recalled. The address's keyed hash stays, so the appeal cannot be signed
    twice."""
    letter = service.get_letter(session, public_id=public_id, key=key)
    privacy.erase(session, letter=letter, now=utcnow())
    return service.to_read(session, letter, settings=settings)
