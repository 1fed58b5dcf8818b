"""Letters for organisers: a filtered, paginated list and a streamed CSV export.

The CSV is UTF-8 with a byte-order mark, so spreadsheets open Cyrillic names right, and
any cell a spreadsheet would read as a formula gets a leading apostrophe: a supporter
who signs as `=HYPERLINK(…)` must not run anything on an organiser's machine.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.auth import Principal, letters_filter
from app.core.db import session_scope
from app.core.errors import Forbidden
from app.models import Appeal, Delivery, DeliveryStatus, Letter, LetterStatus, Organisation
from app.organisers.schemas import LetterFilters, LetterPage, LetterQuery, LetterSummary

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "id",
    "status",
    "signed_at",
    "confirmed_at",
    "sent_at",
    "name",
    "email",
    "country",
    "city",
    "union",
    "organisation",
    "language",
    "message",
    "hold_reason",  # why the flood guard held it, if it did
    "bounced",  # a target's server returned the letter (see the dashboard's bounces)
)
CSV_CHUNK_ROWS = 500


def _columns() -> tuple[Any, ...]:
    return (
        Letter.public_id,
        Letter.status,
        Letter.created_at,
        Letter.confirmed_at,
        Letter.sent_at,
        Letter.signer_name,
        Letter.signer_email,
        Letter.signer_country,
        Letter.signer_city,
        Letter.signer_organisation,
        Organisation.slug,
        Letter.language,
        Letter.message,
        Letter.hold_reason,
        exists().where(Delivery.letter_id == Letter.id, Delivery.status == DeliveryStatus.bounced),
    )


def _query(appeal_id: int, who: Principal, filters: LetterFilters) -> Select[Any]:
    """The letters `who` may see of an appeal, filtered; Forbidden if a union asks for
    another organisation's letters."""
    if filters.organisation and not who.is_admin:
        # A union's letters are all its own: naming another organisation is out of scope.
        raise Forbidden("A union token sees only its own organisation's letters.")
    query = (
        select(*_columns())
        .outerjoin(Organisation, Organisation.id == Letter.organisation_id)
        .where(
            Letter.appeal_id == appeal_id,
            Letter.status != LetterStatus.sample,
            letters_filter(who),
        )
    )
    if filters.status is not None:
        query = query.where(Letter.status == filters.status)
    if filters.organisation:
        query = query.where(Organisation.slug == filters.organisation)
    if filters.country:
        query = query.where(Letter.signer_country == filters.country)
    if filters.since_at is not None:
        query = query.where(Letter.created_at >= filters.since_at)
    if filters.until_at is not None:
        query = query.where(Letter.created_at < filters.until_at)
    return query


def _summary(row: Any, *, with_email: bool) -> LetterSummary:
    return LetterSummary(
        id=row[0],
        status=row[1],
        created_at=row[2],
        confirmed_at=row[3],
        sent_at=row[4],
        name=row[5],
        email=row[6] if with_email else None,
        country=row[7],
        city=row[8],
        union=row[9],
        organisation=row[10],
        language=row[11],
        message=row[12],
        hold_reason=row[13],
        bounced=bool(row[14]) if len(row) > 14 else False,
    )


def summary_of(letter: Letter, *, who: Principal) -> LetterSummary:
    """One loaded letter as `who` may see it."""
    row = (
        letter.public_id,
        letter.status,
        letter.created_at,
        letter.confirmed_at,
        letter.sent_at,
        letter.signer_name,
        letter.signer_email,
        letter.signer_country,
        letter.signer_city,
        letter.signer_organisation,
        letter.organisation.slug if letter.organisation else None,
        letter.language,
        letter.message,
        letter.hold_reason,
        False,  # (the moderation queue's letters have not been sent)
    )
    return _summary(row, with_email=who.is_admin)


def list_letters(
    session: Session, *, appeal: Appeal, who: Principal, query: LetterQuery
) -> LetterPage:
    """One page of the appeal's letters that `who` may see, newest first."""
    base = _query(appeal.id, who, query)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(Letter.created_at.desc(), Letter.id.desc())
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    return LetterPage(
        items=[_summary(row, with_email=who.is_admin) for row in rows],
        total=total,
        page=query.page,
        per_page=query.per_page,
    )


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: formulas get a leading apostrophe."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_export(
    sessions: sessionmaker[Session], *, appeal_id: int, who: Principal, filters: LetterFilters
) -> Iterator[bytes]:
    """The CSV export, oldest letter first, in chunks. Checks scope at once (Forbidden
    before the response starts); reads in its own session, because a streamed response
    outlives the request's. A union's export has no e-mail column."""
    query = _query(appeal_id, who, filters)
    columns = [i for i, name in enumerate(CSV_COLUMNS) if who.is_admin or name != "email"]
    return _chunks(sessions, query.order_by(Letter.created_at, Letter.id), columns)


def _chunks(
    sessions: sessionmaker[Session], query: Select[Any], columns: list[int]
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([CSV_COLUMNS[i] for i in columns])
    with session_scope(sessions) as session:
        rows = session.execute(query.execution_options(yield_per=1000))
        for n, row in enumerate(rows, start=1):
            writer.writerow([safe_cell(row[i]) for i in columns])
            if n % CSV_CHUNK_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()
