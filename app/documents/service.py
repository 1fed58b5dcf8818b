"""PDFs from the database: a supporter's letter, the union's blank letter, signature sheet,
and the bundle of signed letters (PDF or ZIP), streamed in bounded memory.

The renderers (pdf.py) are pure; this module loads rows, decides who may see which
letters, and hands the renderers plain data built by build.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.appeals import letter as appeal_letter
from app.appeals import service as appeals
from app.core import auth, params
from app.core.auth import Principal
from app.core.db import session_scope
from app.core.errors import InvalidInput, LetterErased
from app.core.files import safe_filename
from app.core.text import country_name, localised_date
from app.documents import archive, build
from app.documents.pdf import (
    Handover,
    LetterDoc,
    SignatureSheet,
    Signer,
    iter_bundle,
    render_blank_letter,
    render_letter,
    render_signature_sheet,
)
from app.models import Appeal, Letter

PDF = "application/pdf"
ZIP = "application/zip"
SHEET_PAGES_MAX = 50
# Rows fetched per round trip while a bundle streams: enough to keep the database
# busy, few enough that memory stays flat however many letters an appeal has.
BATCH = 200


@dataclass(frozen=True, slots=True)
class Document:
    """A file for the response: a name to save it as, and its bytes."""

    filename: str
    content: bytes
    media_type: str = PDF


@dataclass(frozen=True, slots=True)
class Download:
    """A file produced while it is sent: chunks that read the database as they go."""

    filename: str
    chunks: Iterator[bytes]
    media_type: str


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of an appeal's signed letters a bundle holds."""

    appeal_id: int
    organisation_id: int | None = None  # None: every organisation (admin only)
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    organisation_slug: str | None = None  # for the file name


def letter_pdf(letter: Letter) -> Document:
    """The supporter's signed letter as a PDF; LetterErased once its details are gone."""
    if letter.erased_at is not None:
        raise LetterErased()
    doc = build.letter_doc(letter, letter.appeal)
    return Document(f"letter-{letter.public_id}.pdf", render_letter(doc))


def blank_letter_pdf(appeal: Appeal, *, language: str | None, today: date) -> Document:
    """The appeal's letter to print and sign by hand; InvalidInput naming `language`."""
    language = appeals.offered_language(appeal, language)
    # Empty signer fields, not "[your name]": the page has labelled lines for them,
    # and a template's closing "{{ signer.name }}" should leave nothing to cross out.
    rendered = appeal_letter.preview(
        appeal, language, today=today, placeholders={"name": "", "organisation": "", "city": ""}
    )
    doc = LetterDoc(
        sender_name=appeals.in_language(appeal, language).sender_name,
        date="",
        recipient=build.addressee(appeal.targets[0], language),
        subject=rendered.subject,
        body=rendered.body,
        signer=Signer(name=""),
        language=language,
        page_size=appeal.page_size,
    )
    return Document(safe_filename(f"{appeal.slug}-letter-{language}.pdf"), render_blank_letter(doc))


def _target_lines(shown: appeals.AppealText) -> tuple[str, ...]:
    return tuple(
        ", ".join(part for part in (t.name, t.title, t.organisation) if part) for t in shown.targets
    )


def signature_sheet_pdf(appeal: Appeal, *, language: str | None, pages: int) -> Document:
    """Numbered rows to sign at a meeting, `pages` pages of them (1 to SHEET_PAGES_MAX)."""
    if not 1 <= pages <= SHEET_PAGES_MAX:
        raise InvalidInput({"pages": f"must be between 1 and {SHEET_PAGES_MAX}"})
    language = appeals.offered_language(appeal, language)
    shown = appeals.in_language(appeal, language)
    sheet = SignatureSheet(
        title=shown.title,
        summary=shown.summary,
        recipient_lines=_target_lines(shown),
        language=language,
        page_size=appeal.page_size,
    )
    content = render_signature_sheet(sheet, pages=pages)
    return Document(safe_filename(f"{appeal.slug}-signature-sheet.pdf"), content)


def select_letters(
    session: Session,
    *,
    appeal: Appeal,
    who: Principal,
    organisation: str | None,
    since: date | datetime | None,
    until: date | datetime | None,
) -> Selection:
    """Which letters `who` may have: a union only its own organisation's (Forbidden if
    `organisation` names another), an admin all or one organisation's (InvalidInput if
    none has that slug); signed since `since` and before `until` (an `until` date takes
    in that whole day)."""
    chosen = auth.named_organisation(session, who, organisation)
    return Selection(
        appeal_id=appeal.id,
        organisation_id=chosen.id if chosen else None,
        since=params.time_bound(since, end=False),
        until=params.time_bound(until, end=True),
        organisation_slug=chosen.slug if chosen else None,
    )


def _where(selection: Selection) -> list[Any]:
    conditions: list[Any] = [
        Letter.appeal_id == selection.appeal_id,
        Letter.status.in_(appeals.RELEASED),
        Letter.erased_at.is_(None),  # nothing left to print of an erased letter
    ]
    if selection.organisation_id is not None:
        conditions.append(Letter.organisation_id == selection.organisation_id)
    return conditions + params.signed_between(selection.since, selection.until)


def _by_count(rows: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(rows, key=lambda row: (-row[1], row[0].casefold())))


def handover(
    session: Session, *, appeal: Appeal, selection: Selection, language: str, today: date
) -> Handover:
    """The bundle's first page: the appeal, its targets, and counts of the selected letters."""
    where = _where(selection)
    count, first, last = session.execute(
        select(func.count(), func.min(params.SIGNED_AT), func.max(params.SIGNED_AT)).where(*where)
    ).one()
    countries = session.execute(
        select(Letter.signer_country, func.count()).where(*where).group_by(Letter.signer_country)
    ).all()
    unions = session.execute(
        select(Letter.signer_organisation, func.count())
        .where(*where)
        .group_by(Letter.signer_organisation)
    ).all()
    shown = appeals.in_language(appeal, language)
    return Handover(
        appeal_title=shown.title,
        summary=shown.summary,
        targets=tuple(build.addressee(t, language) for t in appeal.targets),
        letter_count=count,
        by_country=_by_count([(country_name(code, language), n) for code, n in countries]),
        by_organisation=_by_count([(name or "—", n) for name, n in unions]),
        first_date=localised_date(first, language) if first else "",
        last_date=localised_date(last, language) if last else "",
        date=localised_date(today, language),
        language=language,
        page_size=appeal.page_size,
    )


def iter_letters(
    sessions: sessionmaker[Session], selection: Selection
) -> Iterator[tuple[Letter, Appeal]]:
    """The selected letters in the order they were signed, read BATCH rows at a time in a
    session of its own (the request's has ended by the time a stream is read)."""
    with session_scope(sessions) as session:
        appeal = session.get(Appeal, selection.appeal_id)
        if appeal is None:
            return
        query = (
            select(Letter)
            .where(*_where(selection))
            .order_by(params.SIGNED_AT, Letter.id)
            .execution_options(yield_per=BATCH)
        )
        for letter in session.scalars(query):
            yield letter, appeal
            # Forget each row once its page is written, so the session holds one batch.
            session.expunge(letter)


def iter_letter_docs(sessions: sessionmaker[Session], selection: Selection) -> Iterator[LetterDoc]:
    """The selected letters as the renderer's LetterDocs, read lazily."""
    for letter, appeal in iter_letters(sessions, selection):
        yield build.letter_doc(letter, appeal)


def _name(appeal: Appeal, selection: Selection, extension: str) -> str:
    scope = f"-{selection.organisation_slug}" if selection.organisation_slug else ""
    return safe_filename(f"{appeal.slug}-letters{scope}.{extension}")


def bundle_pdf(
    session: Session,
    sessions: sessionmaker[Session],
    *,
    appeal: Appeal,
    selection: Selection,
    language: str | None,
    today: date,
) -> Download:
    """One PDF: the hand-over page, then every selected letter from a new page. The
    letters are read and rendered while the chunks are consumed."""
    language = appeals.offered_language(appeal, language)
    cover = handover(session, appeal=appeal, selection=selection, language=language, today=today)
    chunks = iter_bundle(cover, iter_letter_docs(sessions, selection))
    return Download(_name(appeal, selection, "pdf"), chunks, PDF)


def _zip_entries(
    sessions: sessionmaker[Session], selection: Selection
) -> Iterator[tuple[str, datetime, bytes]]:
    for n, (letter, appeal) in enumerate(iter_letters(sessions, selection), start=1):
        content = render_letter(build.letter_doc(letter, appeal))
        yield f"{n:05d}-letter-{letter.public_id}.pdf", build.signed_on(letter), content


def letters_zip(
    sessions: sessionmaker[Session], *, appeal: Appeal, selection: Selection
) -> Download:
    """A ZIP of one PDF per selected letter, numbered in the order they were signed."""
    return Download(
        _name(appeal, selection, "zip"), archive.iter_zip(_zip_entries(sessions, selection)), ZIP
    )
