"""Claim, send and record deliveries: the one code path of the workers and the embedded loop.

The database decides what is still to be sent. A delivery is claimed with a
conditional UPDATE that sets a lease; the claim is committed before the network
call, so a second worker sees it taken; the result is recorded only if this claim
still holds (status `sending` and the same attempt number). A worker that dies
mid-send leaves a lease that runs out, and the sweeper hands the delivery out
again: delivery is at-least-once, and the deterministic Message-ID makes a resend
recognisable.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import session_scope
from app.delivery import compose
from app.delivery.messages import Outgoing, message_id
from app.delivery.transports import SendError, Transport
from app.models import (
    Appeal,
    Channel,
    Delivery,
    DeliveryStatus,
    Letter,
    LetterStatus,
    transition,
    utcnow,
)

log = logging.getLogger(__name__)

# Channels whose outcome decides the letter's status; the supporter's own mails don't.
TARGET_CHANNELS = (Channel.email, Channel.fax)
UNFINISHED = (DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.retrying)


def enqueue_after_commit(session: Session, ids: Sequence[int]) -> None:
    """Ask for `ids` to be enqueued once the caller's transaction has committed."""
    session.info.setdefault("enqueue", []).extend(ids)


def take_enqueued(session: Session) -> list[int]:
    """The ids queued with enqueue_after_commit(), cleared."""
    ids: list[int] = session.info.pop("enqueue", [])
    return ids


def _new(letter: Letter, channel: Channel, to: list[str], cc: list[str], now: datetime) -> Delivery:
    return Delivery(
        letter_id=letter.id,
        appeal_id=letter.appeal_id,
        organisation_id=letter.organisation_id,
        channel=channel,
        recipients=to,
        cc=cc,
        status=DeliveryStatus.queued,
        attempts=0,
        max_attempts=letter.appeal.max_attempts,
        next_attempt_at=now,
        message_id="",
        created_at=now,
    )


def _add(session: Session, deliveries: list[Delivery], *, kind: str, mail_from: str) -> None:
    session.add_all(deliveries)
    session.flush()  # ids, for the deterministic Message-IDs
    for delivery in deliveries:
        delivery.message_id = message_id(kind, delivery.letter.public_id, delivery.id, mail_from)
    session.flush()
    enqueue_after_commit(session, [d.id for d in deliveries])


def plan_letter(
    session: Session, *, letter: Letter, mail_from: str, now: datetime
) -> list[Delivery]:
    """Write a confirmed letter's deliveries (the outbox) and enqueue them after commit."""
    appeal = letter.appeal
    emails = [t.email for t in appeal.targets if t.email]
    deliveries: list[Delivery] = []
    if emails:
        deliveries.append(_new(letter, Channel.email, emails, list(appeal.copies), now))
    if letter.copy_to_me:
        deliveries.append(_new(letter, Channel.copy, [letter.signer_email], [], now))
    # One fax per target: each is its own call to its own number, retried on its own.
    faxes: list[Delivery] = []
    for target in appeal.targets:
        if target.fax:
            fax = _new(letter, Channel.fax, [target.fax], [], now)
            fax.target_id = target.id
            faxes.append(fax)
    for delivery in deliveries:
        delivery.letter = letter
    _add(session, deliveries, kind="letter", mail_from=mail_from)
    if faxes:
        for fax in faxes:
            fax.letter = letter
        _add(session, faxes, kind="fax", mail_from=mail_from)
    return deliveries + faxes


def plan_confirmation(
    session: Session, *, letter: Letter, mail_from: str, now: datetime
) -> Delivery:
    """Write the confirmation e-mail to the supporter and enqueue it after commit."""
    delivery = _new(letter, Channel.confirmation, [letter.signer_email], [], now)
    delivery.letter = letter
    _add(session, [delivery], kind="confirm", mail_from=mail_from)
    return delivery


def plan_message(
    session: Session,
    *,
    letter: Letter,
    channel: Channel,
    to: list[str],
    kind: str,
    mail_from: str,
    now: datetime,
) -> Delivery:
    """Write one message about a letter that is not the letter going to its targets (a
    moderator's notice to the supporter, an organiser's test send to their own address),
    and enqueue it after commit."""
    delivery = _new(letter, channel, to, [], now)
    delivery.letter = letter
    _add(session, [delivery], kind=kind, mail_from=mail_from)
    return delivery


def due(session: Session, *, now: datetime, limit: int = 500, grace: float = 0) -> list[int]:
    """Deliveries that should be sent now: due ones, and claims whose lease ran out.

    `grace` leaves alone queued deliveries that became due only moments ago: their
    ids are still on their way through the broker, and the sweeper should not
    enqueue them a second time.
    """
    query = (
        select(Delivery.id)
        .where(
            or_(
                and_(
                    Delivery.status.in_((DeliveryStatus.queued, DeliveryStatus.retrying)),
                    Delivery.next_attempt_at <= now - timedelta(seconds=grace),
                ),
                and_(Delivery.status == DeliveryStatus.sending, Delivery.lease_until < now),
            )
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim(
    session: Session, delivery_id: int, *, now: datetime, lease: timedelta
) -> Delivery | None:
    """Take the delivery for one attempt (status `sending`, a lease); None if not ours to send."""
    delivery = session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None:
        return None
    values = {"attempts": Delivery.attempts + 1, "lease_until": now + lease}
    if delivery.status in (DeliveryStatus.queued, DeliveryStatus.retrying):
        condition: tuple[object, ...] = (Delivery.next_attempt_at <= now,)
    elif delivery.status is DeliveryStatus.sending:
        condition = (Delivery.lease_until < now,)
    else:
        return None
    won = transition(
        session,
        delivery,
        DeliveryStatus.sending,
        where=condition,
        values=values,
        detail=f"attempt {delivery.attempts + 1}",
    )
    if not won:
        return None
    session.refresh(delivery)
    return delivery


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the next try: exponential in the attempt, with ±50% jitter."""
    delay: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    jitter: float = (rng or random).uniform(0.5, 1.5)
    return delay * jitter


def record_sent(
    session: Session, delivery: Delivery, *, attempt: int, reply: str, now: datetime
) -> bool:
    """Mark this attempt sent (if the claim still holds) and settle the letter."""
    done = transition(
        session,
        delivery,
        DeliveryStatus.sent,
        expect=DeliveryStatus.sending,
        where=(Delivery.attempts == attempt,),
        values={"sent_at": now, "lease_until": None, "last_error": None},
        detail=reply[:2000],
    )
    if done:
        settle_letter(session, delivery.letter_id, now=now)
    return done


def record_failure(
    session: Session,
    delivery: Delivery,
    *,
    attempt: int,
    error: SendError,
    now: datetime,
    retry_base: float,
    retry_cap: float,
) -> bool:
    """Schedule a retry with backoff, or fail for good on a permanent error or the last attempt."""
    final = error.permanent or attempt >= delivery.max_attempts
    to = DeliveryStatus.failed if final else DeliveryStatus.retrying
    delay = 0.0 if final else backoff(attempt, base=retry_base, cap=retry_cap)
    done = transition(
        session,
        delivery,
        to,
        expect=DeliveryStatus.sending,
        where=(Delivery.attempts == attempt,),
        values={
            "lease_until": None,
            "last_error": error.reply[:2000],
            "next_attempt_at": now + timedelta(seconds=delay),
        },
        detail=error.reply[:2000],
    )
    if done and final:
        settle_letter(session, delivery.letter_id, now=now)
    return done


def settle_letter(session: Session, letter_id: int, *, now: datetime) -> None:
    """Set the letter sent (every target delivery sent) or failed (one failed, none pending)."""
    # The row lock serialises two deliveries of one letter finishing at once, so the
    # second sees the first's result and the letter cannot be left `queued`. FOR NO KEY
    # UPDATE, not FOR UPDATE: each transaction already holds KEY SHARE on the letter
    # (its status_event row's foreign key), and FOR UPDATE waits on the other's KEY
    # SHARE while the other waits on ours: a deadlock, the crashed record, and the
    # delivery sent again once its lease runs out.
    letter = session.scalar(
        select(Letter)
        .where(Letter.id == letter_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if letter is None or letter.status is not LetterStatus.queued:
        return
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.letter_id == letter_id, Delivery.channel.in_(TARGET_CHANNELS))
        .group_by(Delivery.status)
    ).all()
    by_status = dict(rows)
    if not by_status or any(by_status.get(s) for s in UNFINISHED):
        return
    if by_status.get(DeliveryStatus.failed):
        transition(session, letter, LetterStatus.failed, detail="a delivery failed")
    else:
        transition(session, letter, LetterStatus.sent, values={"sent_at": now})


def retry(session: Session, delivery: Delivery, *, now: datetime) -> None:
    """Re-queue a failed delivery (an organiser's retry) with a fresh set of attempts."""
    transition(
        session,
        delivery,
        DeliveryStatus.queued,
        values={
            "next_attempt_at": now,
            "max_attempts": delivery.attempts + delivery.letter.appeal.max_attempts,
            "last_error": None,
        },
        detail="retry requested",
    )
    letter = delivery.letter
    if letter.status is LetterStatus.failed:
        transition(session, letter, LetterStatus.queued, detail="retry requested")
    enqueue_after_commit(session, [delivery.id])


def expire_unconfirmed(session: Session, *, now: datetime, days: int) -> int:
    """Letters never confirmed within `days` become `expired`; returns how many."""
    cutoff = now - timedelta(days=days)
    stale = session.scalars(
        select(Letter)
        .where(Letter.status == LetterStatus.pending_confirmation, Letter.created_at < cutoff)
        .limit(1000)
    ).all()
    return sum(
        transition(session, letter, LetterStatus.expired, detail=f"not confirmed in {days} days")
        for letter in stale
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    result: str  # sent | retrying | failed | skipped | lost (claim taken over)
    detail: str = ""


class Deliverer:
    """Sends deliveries through one transport; shared by Celery tasks and the embedded loop."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        transport: Transport,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.sessions = sessions
        self.transport = transport
        self.settings = settings
        self.clock = clock

    def _claim(self, delivery_id: int) -> tuple[Delivery, Outgoing] | None:
        with session_scope(self.sessions) as session:
            lease = timedelta(seconds=self.settings.lease_seconds)
            delivery = claim(session, delivery_id, now=self.clock(), lease=lease)
            if delivery is None:
                return None
            letter = session.get(Letter, delivery.letter_id)
            assert letter is not None
            appeal = session.get(Appeal, letter.appeal_id)
            assert appeal is not None
            outgoing = compose.outgoing(delivery, letter, appeal, settings=self.settings)
            return delivery, outgoing

    def _record(self, delivery: Delivery, *, reply: str | None, error: SendError | None) -> str:
        with session_scope(self.sessions) as session:
            row = session.get(Delivery, delivery.id)
            if row is None:
                return "lost"
            now = self.clock()
            attempt = delivery.attempts
            if error is None:
                ok = record_sent(session, row, attempt=attempt, reply=reply or "", now=now)
                return "sent" if ok else "lost"
            ok = record_failure(
                session,
                row,
                attempt=attempt,
                error=error,
                now=now,
                retry_base=self.settings.retry_base_seconds,
                retry_cap=self.settings.retry_cap_seconds,
            )
            if not ok:
                return "lost"
            return str(row.status)

    async def deliver(self, delivery_id: int) -> Outcome:
        """Claim, send and record one delivery; safe to call twice (the second is skipped)."""
        claimed = await asyncio.to_thread(self._claim, delivery_id)
        if claimed is None:
            return Outcome(delivery_id, "skipped")
        delivery, outgoing = claimed
        try:
            reply = await self.transport.send(
                outgoing.message, sender=outgoing.sender, recipients=outgoing.recipients
            )
        except SendError as exc:
            log.warning("delivery %s attempt %s: %s", delivery_id, delivery.attempts, exc.reply)
            result = await asyncio.to_thread(self._record, delivery, reply=None, error=exc)
            return Outcome(delivery_id, result, exc.reply)
        result = await asyncio.to_thread(self._record, delivery, reply=reply, error=None)
        if result == "lost":
            log.warning("delivery %s was sent but its claim had been taken over", delivery_id)
        return Outcome(delivery_id, result, reply)

    async def deliver_many(self, ids: Sequence[int]) -> list[Outcome]:
        """Deliver `ids` concurrently, at most settings.send_concurrency at a time."""
        gate = asyncio.Semaphore(self.settings.send_concurrency)

        async def one(delivery_id: int) -> Outcome:
            async with gate:
                try:
                    return await self.deliver(delivery_id)
                except Exception:
                    # A bug or a database outage must not stop the other sends; the
                    # lease runs out and the sweeper hands this delivery out again.
                    log.exception("delivery %s crashed", delivery_id)
                    return Outcome(delivery_id, "error")

        return list(await asyncio.gather(*(one(i) for i in ids)))

    def sweep(self, *, grace: float = 0) -> list[int]:
        """Expire stale unconfirmed letters and return every delivery id that is due."""
        with session_scope(self.sessions) as session:
            now = self.clock()
            expire_unconfirmed(session, now=now, days=self.settings.confirmation_days)
            return due(session, now=now, grace=grace)
