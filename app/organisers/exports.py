"""Letters for organisers: a filtered, paginated list and a streamed CSV export.

The CSV is UTF-8 with a byte-order mark, so spreadsheets open Cyrillic names right, and
any cell a spreadsheet would read as a formula gets a leading apostrophe: a supporter
who signs as `=HYPERLINK(…)` must not run anything on an organiser's machine.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core import auth, params
from app.core.auth import Principal, letters_filter
from app.core.db import session_scope
from app.models import Appeal, Delivery, DeliveryStatus, Letter, LetterStatus, Organisation
from app.organisers.schemas import LetterFilters, LetterPage, LetterQuery, LetterSummary

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Every column of the list and the CSV, once: its name (the CSV's header, the row's key)
# and where it is read from.
COLUMNS: dict[str, Any] = {
    "id": Letter.public_id,
    "status": Letter.status,
    "signed_at": params.SIGNED_AT,
    "confirmed_at": Letter.confirmed_at,
    "sent_at": Letter.sent_at,
    "name": Letter.signer_name,
    "email": Letter.signer_email,
    "country": Letter.signer_country,
    "city": Letter.signer_city,
    "union": Letter.signer_organisation,  # what the supporter typed
    "organisation": Organisation.slug,  # the organisation it is attributed to
    "language": Letter.language,
    "message": Letter.message,
    "hold_reason": Letter.hold_reason,  # why the flood guard held it, if it did
    # A target's server returned the letter (see the dashboard's bounces).
    "bounced": exists().where(
        Delivery.letter_id == Letter.id, Delivery.status == DeliveryStatus.bounced
    ),
}
CSV_COLUMNS = tuple(COLUMNS)
CSV_CHUNK_ROWS = 500


def _query(session: Session, appeal_id: int, who: Principal, filters: LetterFilters) -> Select[Any]:
    """The letters `who` may see of an appeal, filtered; Forbidden if a union names
    another organisation, InvalidInput if an admin names none that exists
    (auth.named_organisation, as for the PDF bundles)."""
    auth.named_organisation(session, who, filters.organisation)
    query = (
        select(*(column.label(name) for name, column in COLUMNS.items()))
        .outerjoin(Organisation, Organisation.id == Letter.organisation_id)
        .where(
            Letter.appeal_id == appeal_id,
            Letter.status != LetterStatus.sample,
            letters_filter(who),
            *params.signed_between(filters.since_at, filters.until_at),
        )
    )
    if filters.status is not None:
        query = query.where(Letter.status == filters.status)
    if filters.organisation:
        query = query.where(Organisation.slug == filters.organisation)
    if filters.country:
        query = query.where(Letter.signer_country == filters.country)
    return query


def _summary(row: Mapping[Any, Any], *, with_email: bool) -> LetterSummary:
    # The list calls "signed_at" by its older name, created_at.
    values = {**row, "created_at": row["signed_at"], "bounced": bool(row["bounced"])}
    if not with_email:
        values["email"] = None
    return LetterSummary.model_validate(values)


def summary_of(letter: Letter, *, who: Principal) -> LetterSummary:
    """One loaded letter as `who` may see it."""
    row = {
        name: getattr(letter, column.key)
        for name, column in COLUMNS.items()
        if getattr(column, "class_", None) is Letter
    }
    row["organisation"] = letter.organisation.slug if letter.organisation else None
    row["bounced"] = False  # (the moderation queue's letters have not been sent)
    return _summary(row, with_email=who.is_admin)


def list_letters(
    session: Session, *, appeal: Appeal, who: Principal, query: LetterQuery
) -> LetterPage:
    """One page of the appeal's letters that `who` may see, newest first."""
    base = _query(session, appeal.id, who, query)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(params.SIGNED_AT.desc(), Letter.id.desc())
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    ).mappings()
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
    session: Session,
    sessions: sessionmaker[Session],
    *,
    appeal_id: int,
    who: Principal,
    filters: LetterFilters,
) -> Iterator[bytes]:
    """The CSV export, oldest letter first, in chunks. Checks scope at once, in the
    request's `session` (Forbidden before the response starts); reads the rows in a
    session of its own, because a streamed response outlives the request's. A union's
    export has no e-mail column."""
    query = _query(session, appeal_id, who, filters)
    names = [name for name in CSV_COLUMNS if who.is_admin or name != "email"]
    return _chunks(sessions, query.order_by(params.SIGNED_AT, Letter.id), names)


def _chunks(
    sessions: sessionmaker[Session], query: Select[Any], names: list[str]
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow(names)
    with session_scope(sessions) as session:
        rows = session.execute(query.execution_options(yield_per=1000)).mappings()
        for n, row in enumerate(rows, start=1):
            writer.writerow([safe_cell(row[name]) for name in names])
            if n % CSV_CHUNK_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()
