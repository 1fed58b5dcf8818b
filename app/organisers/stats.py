"""Counts for organisers: one appeal's stats (DESIGN.md §4), the dashboard's overview,
the latest failures. Every query takes the asker's scope, so a union counts only its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.appeals import service as appeals
from app.delivery import service as delivery
from app.models import (
    Appeal,
    Channel,
    Delivery,
    DeliveryStatus,
    Letter,
    LetterStatus,
    Organisation,
)
from app.organisers.schemas import DayCount, Stats
from app.organisers.scope import Principal, letters_filter

# Letter statuses organisers see; a test send (sample) is not a letter anyone signed.
LETTER_STATUSES = tuple(s for s in LetterStatus if s is not LetterStatus.sample)


def _day(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as 'YYYY-MM-DD', on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)  # SQLite keeps UTC without a zone


def _counted(rows: Any) -> dict[Any, int]:
    return {key: int(n) for key, n in rows}


def appeal_stats(session: Session, *, appeal: Appeal, who: Principal) -> Stats:
    """Letters by status, target deliveries by status, signed letters by country, by
    organisation and by day (signed by confirmation day, sent by sending day, UTC)."""
    scope = (Letter.appeal_id == appeal.id, letters_filter(who))
    signed = (*scope, Letter.status.in_(appeals.SIGNED))

    by_status = _counted(
        session.execute(select(Letter.status, func.count()).where(*scope).group_by(Letter.status))
    )
    by_delivery = _counted(
        session.execute(
            select(Delivery.status, func.count())
            .join(Letter, Letter.id == Delivery.letter_id)
            .where(*scope, Delivery.channel.in_(delivery.TARGET_CHANNELS))
            .group_by(Delivery.status)
        )
    )
    by_country = session.execute(
        select(Letter.signer_country, func.count())
        .where(*signed)
        .group_by(Letter.signer_country)
        .order_by(func.count().desc(), Letter.signer_country)
    ).all()
    by_organisation = session.execute(
        select(Organisation.name, func.count())
        .select_from(Letter)
        .join(Organisation, Organisation.id == Letter.organisation_id)
        .where(*signed)
        .group_by(Organisation.name)
        .order_by(func.count().desc(), Organisation.name)
    ).all()
    signed_day = _day(session, Letter.confirmed_at)
    sent_day = _day(session, Letter.sent_at)
    signed_by_day = _counted(
        session.execute(select(signed_day, func.count()).where(*signed).group_by(signed_day))
    )
    sent_by_day = _counted(
        session.execute(
            select(sent_day, func.count())
            .where(*scope, Letter.status == LetterStatus.sent)
            .group_by(sent_day)
        )
    )
    return Stats(
        letters={s.value: by_status.get(s, 0) for s in LETTER_STATUSES},
        deliveries={s.value: by_delivery.get(s, 0) for s in DeliveryStatus},
        by_country={country: int(n) for country, n in by_country},
        by_organisation={name: int(n) for name, n in by_organisation},
        by_day=_days(signed_by_day, sent_by_day),
    )


def _days(signed: dict[str, int], sent: dict[str, int]) -> list[DayCount]:
    """Every day from the first to the last with letters, gaps filled with zeros."""
    days = sorted(date.fromisoformat(d) for d in {*signed, *sent} if d)
    if not days:
        return []
    result = []
    day = days[0]
    while day <= days[-1]:
        key = day.isoformat()
        result.append(DayCount(date=day, signed=signed.get(key, 0), sent=sent.get(key, 0)))
        day += timedelta(days=1)
    return result


@dataclass(frozen=True, slots=True)
class Overview:
    """One appeal on the dashboard: the whole appeal's public counts toward its goal, and
    the letters the asker may see by status."""

    appeal: Appeal
    total: appeals.Counts
    letters: dict[str, int]


def overview(session: Session, *, who: Principal) -> list[Overview]:
    """Every appeal `who` may see (all, for admins; those its organisation takes part in,
    for a union), newest first, with its counts."""
    visible = appeals.list_appeals(session, include_drafts=True)
    if not who.is_admin:
        visible = [a for a in visible if any(o.id == who.organisation_id for o in a.organisations)]
    ids = [a.id for a in visible]
    totals = appeals.counts(session, ids)
    by_status: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        rows = session.execute(
            select(Letter.appeal_id, Letter.status, func.count())
            .where(Letter.appeal_id.in_(ids), letters_filter(who))
            .group_by(Letter.appeal_id, Letter.status)
        )
        for appeal_id, status, n in rows:
            by_status[appeal_id][status.value] = int(n)
    return [
        Overview(
            appeal=a,
            total=totals[a.id],
            letters={s.value: by_status[a.id].get(s.value, 0) for s in LETTER_STATUSES},
        )
        for a in visible
    ]


@dataclass(frozen=True, slots=True)
class Failure:
    delivery_id: int
    channel: Channel
    status: DeliveryStatus
    recipients: list[str]
    attempts: int
    last_error: str
    at: datetime
    letter_id: str
    signer_name: str


def latest_failures(
    session: Session, *, appeal: Appeal, who: Principal, limit: int = 20
) -> list[Failure]:
    """Deliveries that failed for good or are waiting to retry, latest first, with the
    server's last reply. Test sends are left out."""
    rows = session.execute(
        select(Delivery, Letter.public_id, Letter.signer_name)
        .join(Letter, Letter.id == Delivery.letter_id)
        .where(
            Letter.appeal_id == appeal.id,
            letters_filter(who),
            Delivery.status.in_((DeliveryStatus.failed, DeliveryStatus.retrying)),
            Delivery.channel != Channel.sample,
        )
        .order_by(Delivery.next_attempt_at.desc(), Delivery.id.desc())
        .limit(limit)
    )
    return [
        Failure(
            delivery_id=d.id,
            channel=d.channel,
            status=d.status,
            # Only targets' addresses are shown: a supporter's is nobody else's business.
            recipients=list(d.recipients) if d.channel in delivery.TARGET_CHANNELS else [],
            attempts=d.attempts,
            last_error=d.last_error or "",
            at=d.next_attempt_at,
            letter_id=public_id,
            signer_name=signer_name,
        )
        for d, public_id, signer_name in rows
    ]


def recent_samples(session: Session, *, appeal: Appeal, limit: int = 6) -> list[Delivery]:
    """The appeal's latest test sends, to show whether they went out."""
    return list(
        session.scalars(
            select(Delivery)
            .join(Letter, Letter.id == Delivery.letter_id)
            .where(Letter.appeal_id == appeal.id, Delivery.channel == Channel.sample)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
    )


def held_count(session: Session, *, appeal: Appeal, where: ColumnElement[bool]) -> int:
    """How many of the appeal's letters wait for a moderator."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Letter)
            .where(Letter.appeal_id == appeal.id, Letter.status == LetterStatus.held, where)
        )
        or 0
    )
