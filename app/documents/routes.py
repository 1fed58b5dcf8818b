"""PDF downloads: the union's blank letter and signature sheet (public), and the bundle of
signed letters as one PDF or a ZIP (organiser and union tokens). A supporter's own letter
as a PDF is served by app/letters/routes.py, which checks its key first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from app.appeals.deps import CurrentAppeal, OrganiserAppeal
from app.core.db import SessionDep, SessionsDep
from app.core.deps import Organiser
from app.core.errors import error_responses
from app.core.files import download_headers
from app.core.params import TimeFilter
from app.documents import service
from app.documents.service import Document, Download
from app.models import utcnow

# Every route here waits its turn for the database (admission.py): 503 when it cannot.
router = APIRouter(prefix="/api/v1", tags=["documents"], responses=error_responses(503))

_PDF: dict[int | str, dict[str, Any]] = {200: {"content": {service.PDF: {}}}}
_ZIP: dict[int | str, dict[str, Any]] = {200: {"content": {service.ZIP: {}}}}
_PUBLIC = error_responses(404, 422)
_ORGANISERS = error_responses(401, 403, 404, 422)


def _file(document: Document) -> Response:
    return Response(
        document.content,
        media_type=document.media_type,
        headers=download_headers(document.filename),
    )


def _stream(download: Download) -> StreamingResponse:
    return StreamingResponse(
        download.chunks, media_type=download.media_type, headers=download_headers(download.filename)
    )


@router.get("/appeals/{slug}/letter.pdf", response_class=Response, responses=_PDF | _PUBLIC)
def blank_letter_pdf(appeal: CurrentAppeal, language: str | None = None) -> Response:
    """The appeal's letter to print and sign by hand, in `language` (default: the appeal's)."""
    today = utcnow().date()
    return _file(service.blank_letter_pdf(appeal, language=language, today=today))


@router.get(
    "/appeals/{slug}/signature-sheet.pdf", response_class=Response, responses=_PDF | _PUBLIC
)
def signature_sheet_pdf(
    appeal: CurrentAppeal,
    language: str | None = None,
    pages: Annotated[int, Query(ge=1, le=service.SHEET_PAGES_MAX)] = 1,
) -> Response:
    """A sheet for a meeting: the appeal, then numbered rows to sign on `pages` pages."""
    return _file(service.signature_sheet_pdf(appeal, language=language, pages=pages))


OrganisationFilter = Annotated[
    str | None,
    Query(description="An organisation's slug; a union token may only name its own."),
]
# Parsed as the CSV's filters are (app.core.params.TimeFilter): 422 naming the field.
Since = Annotated[
    TimeFilter,
    Query(description="Letters signed on or after: 2026-05-01 or 2026-05-01T12:00Z."),
]
Until = Annotated[
    TimeFilter,
    Query(description="Letters signed up to: a date (that whole day) or a time (before it)."),
]


@router.get(
    "/appeals/{slug}/letters.pdf", response_class=StreamingResponse, responses=_PDF | _ORGANISERS
)
def bundle_pdf(
    session: SessionDep,
    sessions: SessionsDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    organisation: OrganisationFilter = None,
    since: Since = None,
    until: Until = None,
    language: str | None = None,
) -> StreamingResponse:
    """Every signed letter in one PDF after a hand-over page, streamed as it is rendered."""
    selection = service.select_letters(
        session, appeal=appeal, who=who, organisation=organisation, since=since, until=until
    )
    download = service.bundle_pdf(
        session,
        sessions,
        appeal=appeal,
        selection=selection,
        language=language,
        today=utcnow().date(),
    )
    return _stream(download)


@router.get(
    "/appeals/{slug}/letters.zip", response_class=StreamingResponse, responses=_ZIP | _ORGANISERS
)
def letters_zip(
    session: SessionDep,
    sessions: SessionsDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    organisation: OrganisationFilter = None,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    """One PDF per signed letter in a ZIP, streamed as the letters are rendered."""
    selection = service.select_letters(
        session, appeal=appeal, who=who, organisation=organisation, since=since, until=until
    )
    return _stream(service.letters_zip(sessions, appeal=appeal, selection=selection))
