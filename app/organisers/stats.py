"""Counts for organisers: one appeal's stats (DESIGN.md §4), the dashboard's overview,
the latest failures. Every query takes the asker's scope, so a union counts only its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.orm import Session, contains_eager

from app.appeals import service as appeals
from app.core.auth import Principal, deliveries_filter, letters_filter
from app.delivery import service as delivery
from app.models import (
    PROBLEMS,
    Appeal,
    Channel,
    Delivery,
    DeliveryStatus,
    Letter,
    LetterStatus,
    LetterTally,
    Organisation,
)
from app.organisers.schemas import DayCount, Stats

# Letter statuses organisers see; a test send (sample) is not a letter anyone signed.
LETTER_STATUSES = tuple(s for s in LetterStatus if s is not LetterStatus.sample)


def _day(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, on either database."""
    if session.get_bind().dialect.name == "postgresql":
        # Literal, not a bound parameter: the same expression must match in GROUP BY.
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    return func.strftime("%Y-%m-%d", column)  # SQLite keeps UTC without a zone


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def tally(
    session: Session, appeal_ids: list[int], *, who: Principal | None = None
) -> dict[int, dict[str, int]]:
    """Letters per appeal and status from the trigger-kept tally (a union's own, given
    `who`): a few rows however many letters there are."""
    by_status: dict[int, dict[str, int]] = {i: {} for i in appeal_ids}
    if not appeal_ids:
        return by_status
    query = (
        select(LetterTally.appeal_id, LetterTally.status, func.sum(LetterTally.n))
        .where(LetterTally.appeal_id.in_(appeal_ids))
        .group_by(LetterTally.appeal_id, LetterTally.status)
    )
    if who is not None and not who.is_admin:
        query = query.where(LetterTally.organisation_key == who.organisation_id)
    for appeal_id, status, n in session.execute(query):
        by_status[appeal_id][status.value] = int(n)
    return by_status


def appeal_stats(session: Session, *, appeal: Appeal, who: Principal) -> Stats:
    """Letters by status, target deliveries by status, signed letters by country, by
    organisation and by day (signed by confirmation day, sent by sending day, UTC)."""
    by_status = tally(session, [appeal.id], who=who)[appeal.id]
    by_delivery = {
        status: int(n)
        for status, n in session.execute(
            select(Delivery.status, func.count())
            .where(
                Delivery.appeal_id == appeal.id,
                deliveries_filter(who),
                Delivery.channel.in_(delivery.TARGET_CHANNELS),
            )
            .group_by(Delivery.status)
        )
    }
    organisations = select(Organisation.name, func.sum(LetterTally.n)).join(
        Organisation, Organisation.id == LetterTally.organisation_key
    )
    if not who.is_admin:
        organisations = organisations.where(LetterTally.organisation_key == who.organisation_id)
    by_organisation = session.execute(
        organisations.where(
            LetterTally.appeal_id == appeal.id, LetterTally.status.in_(appeals.SIGNED)
        )
        .group_by(Organisation.name)
        .having(func.sum(LetterTally.n) > 0)
        .order_by(func.sum(LetterTally.n).desc(), Organisation.name)
    ).all()
    by_country, signed_by_day, sent_by_day = _letter_groups(session, appeal=appeal, who=who)
    return Stats(
        letters={s.value: by_status.get(s.value, 0) for s in LETTER_STATUSES},
        deliveries={s.value: by_delivery.get(s, 0) for s in DeliveryStatus},
        by_country=by_country,
        by_organisation={name: int(n) for name, n in by_organisation},
        by_day=_days(signed_by_day, sent_by_day),
    )


def _letter_groups(
    session: Session, *, appeal: Appeal, who: Principal
) -> tuple[dict[str, int], dict[date, int], dict[date, int]]:
    """Signed letters by country and by day signed, sent letters by day sent: three
    index-only passes on PostgreSQL (measured quicker than one GROUPING SETS query,
    which sorts)."""
    signed = (Letter.appeal_id == appeal.id, letters_filter(who), Letter.status.in_(appeals.SIGNED))
    signed_day = _day(session, Letter.confirmed_at)
    sent_day = _day(session, Letter.sent_at)
    by_country = {
        code: int(n)
        for code, n in session.execute(
            select(Letter.signer_country, func.count())
            .where(*signed)
            .group_by(Letter.signer_country)
            .order_by(func.count().desc(), Letter.signer_country)
        )
    }
    signed_by_day = {
        _as_date(day): int(n)
        for day, n in session.execute(
            select(signed_day, func.count()).where(*signed).group_by(signed_day)
        )
    }
    sent_by_day = {
        _as_date(day): int(n)
        for day, n in session.execute(
            select(sent_day, func.count())
            .where(*signed, Letter.status == LetterStatus.sent)
            .group_by(sent_day)
        )
    }
    return by_country, signed_by_day, sent_by_day


def _days(signed: dict[date, int], sent: dict[date, int]) -> list[DayCount]:
    """Every day from the first to the last with letters, gaps filled with zeros."""
    days = sorted({*signed, *sent})
    if not days:
        return []
    result = []
    day = days[0]
    while day <= days[-1]:
        result.append(DayCount(date=day, signed=signed.get(day, 0), sent=sent.get(day, 0)))
        day += timedelta(days=1)
    return result


@dataclass(frozen=True, slots=True)
class Overview:
    """One appeal on the dashboard: the whole appeal's public counts toward its goal, and
    the letters the asker may see by status."""

    appeal: Appeal
    total: appeals.Counts
    letters: dict[str, int]

    @property
    def own_signed(self) -> int:
        """Confirmed letters among those the asker may see (held ones included)."""
        return sum(self.letters[s.value] for s in appeals.SIGNED)


def overview(session: Session, *, who: Principal) -> list[Overview]:
    """Every appeal `who` may see (all, for admins; those its organisation takes part in,
    for a union), newest first, with its counts (from the tally)."""
    visible = appeals.list_appeals(session, include_drafts=True)
    if not who.is_admin:
        visible = [a for a in visible if any(o.id == who.organisation_id for o in a.organisations)]
    ids = [a.id for a in visible]
    everyone = tally(session, ids)
    own = everyone if who.is_admin else tally(session, ids, who=who)
    return [
        Overview(
            appeal=a,
            total=appeals.Counts(
                signed=sum(everyone[a.id].get(s.value, 0) for s in appeals.SIGNED),
                sent=everyone[a.id].get(LetterStatus.sent.value, 0),
            ),
            letters={s.value: own[a.id].get(s.value, 0) for s in LETTER_STATUSES},
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
            Delivery.appeal_id == appeal.id,
            deliveries_filter(who),
            # Literal values, so PostgreSQL can use the partial index on them.
            Delivery.status.in_([literal_column(f"'{s.value}'") for s in PROBLEMS]),
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
    """The appeal's latest test sends (their letters loaded, one per language), to show
    whether they went out."""
    return list(
        session.scalars(
            select(Delivery)
            .join(Letter, Letter.id == Delivery.letter_id)
            .options(contains_eager(Delivery.letter))  # the template shows its language
            .where(Letter.appeal_id == appeal.id, Delivery.channel == Channel.sample)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
    )
