"""The outbox in the database: plan, hand out, claim, record, settle and retry deliveries.

The database decides what is still to be sent. A delivery is claimed with a
conditional UPDATE that sets a lease; the claim is committed before the network
call, so a second worker sees it taken; the result is recorded only if this claim
still holds (status `sending` and the same attempt number). A worker that dies
mid-send leaves a lease that runs out, and the sweeper hands the delivery out
again: delivery is at-least-once, and the deterministic Message-ID makes a resend
recognisable.

Every function here flushes and never commits: the caller owns the transaction
(a request, or the Deliverer in app/delivery/deliverer.py around each network call).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, joinedload

from app.audit import service as audit
from app.core import security
from app.core.db import ENQUEUE
from app.core.errors import DeliveryNotFailed, NotFound
from app.delivery.messages import message_id
from app.models import (
    Bounce,
    Channel,
    Delivery,
    DeliveryStatus,
    Invitation,
    Letter,
    LetterStatus,
    table_of,
    transition,
    transition_many,
)

# Channels whose outcome decides the letter's status; the supporter's own mails don't.
TARGET_CHANNELS = (Channel.email, Channel.fax)
UNFINISHED = (DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.retrying)
WAITING = (DeliveryStatus.queued, DeliveryStatus.retrying)


def enqueue_after_commit(session: Session, ids: Sequence[int]) -> None:
    """Ask for `ids` to be enqueued once the caller's transaction has committed."""
    session.info.setdefault(ENQUEUE, []).extend(ids)


def take_enqueued(session: Session) -> list[int]:
    """The ids queued with enqueue_after_commit(), cleared."""
    ids: list[int] = session.info.pop(ENQUEUE, [])
    return ids


# --- planning: the outbox rows, written with the letter ----------------------------------


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
        accepted=[],
        message_id="",
        created_at=now,
    )


def _add(session: Session, deliveries: list[Delivery], *, kind: str, mail_from: str) -> None:
    for delivery in deliveries:
        # Random, not the row's id, so the row is written in one INSERT (signing is the
        # busiest path); kept in the row, it is the same for every resend.
        unique = security.new_token(9)
        about = delivery.letter.public_id if delivery.letter else f"i{delivery.invitation_id}"
        delivery.message_id = message_id(kind, about, unique, mail_from)
    session.add_all(deliveries)
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
    if letter.copy_to_me and letter.signer_email:
        # Its own message, so the target's never names the supporter (unless share_email).
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


_DELIVERY = table_of(Delivery)
_INSERT_DELIVERY = insert(_DELIVERY).returning(_DELIVERY.c.id)


def insert_confirmation(
    db: Session | Connection, letter_id: int, confirmation: Mapping[str, Any]
) -> int:
    """INSERT the confirmation e-mail (confirmation_row()'s `confirmation`) of the letter
    with this id; its id. One Core INSERT, as for the letter: every signature asking for
    confirmation writes this row, and the unit of work cost more than the INSERT. On
    PostgreSQL a signature writes it in the letter's own INSERT instead
    (insert_with_confirmation())."""
    delivery_id: int = db.execute(
        _INSERT_DELIVERY, {"letter_id": letter_id, **confirmation}
    ).scalar_one()
    return delivery_id


def confirmation_row(
    *,
    public_id: str,
    appeal_id: int,
    organisation_id: int | None,
    signer_email: str,
    max_attempts: int,
    mail_from: str,
    now: datetime,
) -> dict[str, Any]:
    """The row of a letter's confirmation e-mail, all but its letter_id."""
    return {
        "invitation_id": None,
        "appeal_id": appeal_id,
        "organisation_id": organisation_id,
        "target_id": None,
        "channel": Channel.confirmation,
        "recipients": [signer_email],
        "cc": [],
        "status": DeliveryStatus.queued,
        "attempts": 0,
        "max_attempts": max_attempts,
        "next_attempt_at": now,
        "lease_until": None,
        "last_error": None,
        "accepted": [],
        # Random, as in _add(): the row is written in one INSERT, and kept in it.
        "message_id": message_id("confirm", public_id, security.new_token(9), mail_from),
        "sent_at": None,
        "created_at": now,
    }


# Built on first use for the columns written: a letter's (as letters.service writes them)
# and its confirmation e-mail's (confirmation_row()'s).
_WITH_CONFIRMATION: dict[tuple[tuple[str, ...], tuple[str, ...]], Insert] = {}


def insert_with_confirmation(
    db: Session | Connection,
    letter: Table,
    row: Mapping[str, Any],
    confirmation: Mapping[str, Any],
) -> tuple[int, int]:
    """INSERT a letter (`row`, all its columns but the id) and its confirmation e-mail
    (confirmation_row()'s `confirmation`) in one PostgreSQL statement; (letter id,
    delivery id). A round trip and a statement's work fewer than two INSERTs, on every
    signature (issue 10). SQLite cannot INSERT in a WITH clause."""
    columns = (tuple(row), tuple(confirmation))
    statement = _WITH_CONFIRMATION.get(columns)
    if statement is None:
        statement = _WITH_CONFIRMATION.setdefault(
            columns, _letter_and_confirmation(letter, *columns)
        )
    params = {f"letter_{k}": v for k, v in row.items()}
    params.update((f"delivery_{k}", v) for k, v in confirmation.items())
    letter_id, delivery_id = db.execute(statement, params).one()
    return letter_id, delivery_id


def _letter_and_confirmation(
    letter: Table, letter_columns: Sequence[str], delivery_columns: Sequence[str]
) -> Insert:
    # The letter's columns as bind parameters named letter_<column>, the e-mail's as
    # delivery_<column>; its letter_id is the new letter's, from the CTE's RETURNING.
    new_letter = (
        insert(letter)
        .values({c: bindparam(f"letter_{c}", type_=letter.c[c].type) for c in letter_columns})
        .returning(letter.c.id)
        .cte("new_letter")
    )
    values = [bindparam(f"delivery_{c}", type_=_DELIVERY.c[c].type) for c in delivery_columns]
    return (
        insert(_DELIVERY)
        .from_select(["letter_id", *delivery_columns], select(new_letter.c.id, *values))
        .returning(_DELIVERY.c.letter_id, _DELIVERY.c.id)
    )


# An invitation is tried as often as a letter by default: the invitee may be waiting.
INVITATION_ATTEMPTS = 8


def plan_invitation(
    session: Session, *, invitation: Invitation, mail_from: str, now: datetime
) -> Delivery:
    """Write the e-mail inviting an organiser (a delivery with no letter) and enqueue it
    after commit."""
    delivery = Delivery(
        invitation=invitation,
        channel=Channel.invitation,
        recipients=[invitation.email],
        cc=[],
        status=DeliveryStatus.queued,
        attempts=0,
        max_attempts=INVITATION_ATTEMPTS,
        next_attempt_at=now,
        accepted=[],
        message_id="",
        created_at=now,
    )
    session.flush()  # the invitation's id, for the Message-ID
    delivery.invitation_id = invitation.id
    _add(session, [delivery], kind="invite", mail_from=mail_from)
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


# --- the sweeper: hand out what is due ----------------------------------------------------


def due(
    session: Session, *, now: datetime, limit: int = 1000, grace: float = 0
) -> list[tuple[int, DeliveryStatus]]:
    """(id, status) of deliveries to hand out now: due, and no longer held by anyone.

    A delivery is held while its lease_until lies ahead: by a worker (sending) or by
    the broker (queued or retrying, handed out by a sweep). One never handed out
    (lease_until NULL) was enqueued when its transaction committed; `grace` gives
    that id time to come through the broker before a sweep enqueues it again.
    """
    query = (
        select(Delivery.id, Delivery.status)
        .where(
            Delivery.status.in_(UNFINISHED),
            Delivery.next_attempt_at <= now,
            or_(
                Delivery.lease_until <= now,
                and_(
                    Delivery.lease_until.is_(None),
                    Delivery.next_attempt_at <= now - timedelta(seconds=grace),
                ),
            ),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    return [(row.id, row.status) for row in session.execute(query)]


def hand_out(
    session: Session, *, now: datetime, lease: timedelta, limit: int = 1000, grace: float = 0
) -> list[int]:
    """Take the due deliveries for the broker until now + lease and return their ids.

    A claim whose lease ran out (its worker died or hung) is settled first: that
    attempt is logged as interrupted and the delivery is retried, or failed if it
    was the last attempt allowed.
    """
    found = due(session, now=now, limit=limit, grace=grace)
    lapsed = [i for i, status in found if status is DeliveryStatus.sending]
    if lapsed:
        ran_out = (Delivery.lease_until < now,)
        note = "interrupted: the worker stopped before recording the result"
        retried = transition_many(
            session,
            Delivery,
            lapsed,
            DeliveryStatus.retrying,
            expect=DeliveryStatus.sending,
            where=(*ran_out, Delivery.attempts < Delivery.max_attempts),
            values={"next_attempt_at": now, "last_error": note},
            detail=note,
        )
        failed = transition_many(
            session,
            Delivery,
            lapsed,
            DeliveryStatus.failed,
            expect=DeliveryStatus.sending,
            where=(*ran_out, Delivery.attempts >= Delivery.max_attempts),
            values={"lease_until": None, "last_error": note},
            detail=f"{note}; no attempts left",
        )
        settle_letters(session, _letters_of(session, failed), now=now)
        # Those neither retried nor failed were taken by a worker a moment ago.
        lapsed = list(set(lapsed) - set(retried))
    ids = [i for i, _ in found if i not in lapsed]
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status.in_(WAITING))
            .values(lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
    return ids


def _letters_of(session: Session, delivery_ids: Sequence[int]) -> list[int]:
    if not delivery_ids:
        return []
    found = session.scalars(select(Delivery.letter_id).where(Delivery.id.in_(delivery_ids)))
    return [letter_id for letter_id in found if letter_id is not None]


# --- a worker: load, defer, claim, record --------------------------------------------------


def claimable(session: Session, ids: Iterable[int], *, now: datetime) -> list[Delivery]:
    """The deliveries of `ids` that may be claimed now, with letter, appeal and target loaded."""
    return list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.id.in_(list(ids)),
                Delivery.status.in_(WAITING),
                Delivery.next_attempt_at <= now,
            )
            .options(
                joinedload(Delivery.letter).joinedload(Letter.appeal),
                joinedload(Delivery.target),
                joinedload(Delivery.invitation),
            )
            .order_by(Delivery.id)
        ).unique()
    )


def defer(session: Session, until: dict[int, datetime]) -> None:
    """Put off deliveries that are still waiting (rate limit): no attempt counted, no event."""
    if not until:
        return
    table = Delivery.__table__
    if not isinstance(table, Table):
        raise AssertionError(type(table))
    session.execute(
        update(table)
        # No IN (…) here: an executemany cannot expand one.
        .where(table.c.id == bindparam("d_id"), or_(*(table.c.status == s.value for s in WAITING)))
        .values(next_attempt_at=bindparam("at"), lease_until=bindparam("at")),
        [{"d_id": delivery_id, "at": at} for delivery_id, at in until.items()],
    )


def claim(
    session: Session, deliveries: Sequence[Delivery], *, now: datetime, lease: timedelta
) -> dict[int, int]:
    """Take each delivery for one attempt (status `sending`, a lease); {id: attempt} of those won.

    A delivery is won only if it is still as it was loaded (status, attempt count) and
    due; one that another worker is claiming at this moment is left to it.
    """
    won: dict[int, int] = {}
    for status in WAITING:
        batch = [d for d in deliveries if d.status is status]
        if not batch:
            continue
        moved = transition_many(
            session,
            Delivery,
            [d.id for d in batch],
            DeliveryStatus.sending,
            expect=status,
            where=(
                tuple_(Delivery.id, Delivery.attempts).in_([(d.id, d.attempts) for d in batch]),
                Delivery.next_attempt_at <= now,
            ),
            values={"attempts": Delivery.attempts + 1, "lease_until": now + lease},
            detail={d.id: f"attempt {d.attempts + 1}" for d in batch},
            skip_locked=True,
        )
        attempts = {d.id: d.attempts + 1 for d in batch}
        won.update((i, attempts[i]) for i in moved)
    return won


def renew(
    session: Session, claims: Mapping[int, int], *, now: datetime, lease: timedelta
) -> set[int]:
    """A new lease from `now` for each claim ({id: attempt}) its holder still has: the ids
    renewed. One whose claim was taken over (its lease ran out, the sweeper handed it
    out again) is not, and must not be sent."""
    if not claims:
        return set()
    table = _DELIVERY
    rows = session.execute(
        update(table)
        .where(
            tuple_(table.c.id, table.c.attempts).in_(list(claims.items())),
            table.c.status == DeliveryStatus.sending.value,
        )
        .values(lease_until=now + lease)
        .returning(table.c.id)
    )
    return {row[0] for row in rows}


def release(session: Session, claims: Mapping[int, int], *, now: datetime) -> list[int]:
    """Give back claims ({id: attempt}) whose message never left: each delivery waits
    again, due now, its attempt not counted; the ids given back. One whose claim was
    taken over meanwhile is left to its new holder."""
    given: list[int] = []
    for status, group in (
        (DeliveryStatus.queued, {i: n for i, n in claims.items() if n <= 1}),
        (DeliveryStatus.retrying, {i: n for i, n in claims.items() if n > 1}),
    ):
        given += transition_many(
            session,
            Delivery,
            list(group),
            status,
            expect=DeliveryStatus.sending,
            where=(tuple_(Delivery.id, Delivery.attempts).in_(list(group.items())),),
            values={
                "attempts": Delivery.attempts - 1,
                "lease_until": None,
                "next_attempt_at": now,
            },
            detail="given back unsent: its worker stopped",
        )
    return given


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one claimed attempt came to, for record()."""

    delivery_id: int
    letter_id: int | None  # None: a message about no letter (an invitation)
    attempt: int
    max_attempts: int
    reply: str
    failed: bool = False  # False: the message went to every recipient still owed it
    permanent: bool = False  # a failure not worth retrying
    accepted: tuple[str, ...] | None = None  # all who have it now, when that changed


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the next try: exponential in the attempt, with ±50% jitter."""
    delay: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    jitter: float = (rng or random).uniform(0.5, 1.5)
    return delay * jitter


def record(
    session: Session,
    attempts: Sequence[Attempt],
    *,
    now: datetime,
    retry_base: float,
    retry_cap: float,
) -> dict[int, DeliveryStatus]:
    """Record each attempt whose claim still holds and settle the letters concerned.

    Successes are written in one statement; a failure schedules a retry with backoff,
    or fails the delivery for good (a permanent error, or no attempts left). Returns
    the status each recorded delivery now has; an attempt missing from it had lost its
    claim (the lease ran out and the delivery was handed out again).
    """
    done: dict[int, DeliveryStatus] = {}
    sent = [a for a in attempts if not a.failed]
    claims = [(a.delivery_id, a.attempt) for a in sent]
    for delivery_id in transition_many(
        session,
        Delivery,
        [a.delivery_id for a in sent],
        DeliveryStatus.sent,
        expect=DeliveryStatus.sending,
        where=(tuple_(Delivery.id, Delivery.attempts).in_(claims),),
        values={"sent_at": now, "lease_until": None, "last_error": None},
        detail={a.delivery_id: a.reply[:2000] for a in sent},
    ):
        done[delivery_id] = DeliveryStatus.sent
    for a in attempts:
        if a.failed and _record_failure(session, a, now=now, base=retry_base, cap=retry_cap):
            done[a.delivery_id] = _failure_status(a)
    letters = {a.delivery_id: a.letter_id for a in attempts}
    finished = [
        letter_id
        for i, s in done.items()
        if s is not DeliveryStatus.retrying and (letter_id := letters[i]) is not None
    ]
    settle_letters(session, finished, now=now)
    return done


def _failure_status(attempt: Attempt) -> DeliveryStatus:
    final = attempt.permanent or attempt.attempt >= attempt.max_attempts
    return DeliveryStatus.failed if final else DeliveryStatus.retrying


def _record_failure(
    session: Session, a: Attempt, *, now: datetime, base: float, cap: float
) -> bool:
    to = _failure_status(a)
    values: dict[str, object] = {"last_error": a.reply[:2000]}
    if to is DeliveryStatus.retrying:
        at = now + timedelta(seconds=backoff(a.attempt, base=base, cap=cap))
        # Released until then: the next sweep after `at` hands it out.
        values.update(next_attempt_at=at, lease_until=at)
    else:
        values.update(lease_until=None)
    if a.accepted is not None:
        values["accepted"] = list(a.accepted)
    return bool(
        transition_many(
            session,
            Delivery,
            [a.delivery_id],
            to,
            expect=DeliveryStatus.sending,
            where=(Delivery.attempts == a.attempt,),
            values=values,
            detail=a.reply[:2000],
        )
    )


def settle_letters(session: Session, letter_ids: Iterable[int], *, now: datetime) -> None:
    """Set each letter sent (every target delivery sent) or failed (one failed, none pending)."""
    ids = sorted(set(letter_ids))
    if not ids:
        return
    # The row locks serialise two deliveries of one letter finishing at once, so the
    # second sees the first's result and the letter cannot be left `queued`; taken in
    # id order, so two workers settling overlapping letters never deadlock. FOR NO KEY
    # UPDATE, not FOR UPDATE: each recording transaction already holds KEY SHARE on its
    # letters (the foreign keys of its status_event rows), and FOR UPDATE would wait on
    # the other's KEY SHARE while the other waits on ours: a deadlock, a lost record,
    # and the message sent again once its lease runs out.
    queued = list(
        session.scalars(
            select(Letter.id)
            .where(Letter.id.in_(ids), Letter.status == LetterStatus.queued)
            .order_by(Letter.id)
            .with_for_update(key_share=True)
        )
    )
    if not queued:
        return
    counts: dict[int, dict[DeliveryStatus, int]] = {i: {} for i in queued}
    for letter_id, status, n in session.execute(
        select(Delivery.letter_id, Delivery.status, func.count())
        .where(Delivery.letter_id.in_(queued), Delivery.channel.in_(TARGET_CHANNELS))
        .group_by(Delivery.letter_id, Delivery.status)
    ):
        if letter_id is not None:  # always: the WHERE names letters
            counts[letter_id][status] = n
    finished = {i: c for i, c in counts.items() if c and not any(c.get(s) for s in UNFINISHED)}
    failed = [i for i, c in finished.items() if c.get(DeliveryStatus.failed)]
    sent = [i for i in finished if i not in set(failed)]
    transition_many(
        session,
        Letter,
        sent,
        LetterStatus.sent,
        expect=LetterStatus.queued,
        values={"sent_at": now, "finished_at": now},
    )
    transition_many(
        session,
        Letter,
        failed,
        LetterStatus.failed,
        expect=LetterStatus.queued,
        detail="a delivery failed",
        values={"finished_at": now},
    )


# --- organisers ----------------------------------------------------------------------------


def find_delivery(session: Session, delivery_id: int) -> Delivery:
    """The delivery of a letter with this id, or NotFound (an invitation's e-mail is no
    organiser's to see or retry: the admin invites again)."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.letter is None:
        raise NotFound("No such delivery.")
    return delivery


def retry(session: Session, delivery: Delivery, *, now: datetime, by: str) -> None:
    """Re-queue a failed or bounced delivery with a fresh set of attempts and enqueue it
    after commit, logging it as done `by` this organiser; DeliveryNotFailed if it is
    neither. A failed letter goes back to `queued`. The next attempt goes only to the
    recipients who do not have the message yet; after a bounce, that is the appeal's
    targets as they are now (the organiser has fixed the address that bounced) other than
    those who took it."""
    letter = delivery.letter
    if letter is None:
        raise AssertionError("organisers retry the deliveries of letters")
    values: dict[str, object] = {
        "next_attempt_at": now,
        "lease_until": None,
        "max_attempts": delivery.attempts + letter.appeal.max_attempts,
        "last_error": None,
    }
    was = delivery.status
    if was is DeliveryStatus.bounced:
        values.update(_after_bounce(session, delivery))
    won = was in RETRYABLE and transition(
        session,
        delivery,
        DeliveryStatus.queued,
        values=values,
        detail="retry requested by an organiser",
    )
    if not won:
        raise DeliveryNotFailed(f"The delivery is {delivery.status}, not failed or bounced.")
    if letter.status is LetterStatus.failed:
        transition(
            session,
            letter,
            LetterStatus.queued,
            values={"finished_at": None},
            detail="retry requested by an organiser",
        )
    enqueue_after_commit(session, [delivery.id])
    audit.record(
        session,
        by=by,
        action="delivery.retried",
        appeal_id=delivery.appeal_id,
        organisation_id=delivery.organisation_id,
        subject=letter.public_id,
        changes={"delivery": delivery.id, "channel": delivery.channel.value},
    )


# What an organiser may retry.
RETRYABLE = (DeliveryStatus.failed, DeliveryStatus.bounced)


def _after_bounce(session: Session, delivery: Delivery) -> dict[str, object]:
    """Recipients and `accepted` for retrying a bounced letter: its appeal's target
    addresses now; everyone who had it, bar the addresses that bounced, has it still."""
    bounced = set(
        session.scalars(
            select(Bounce.recipient).where(
                Bounce.delivery_id == delivery.id, Bounce.permanent.is_(True)
            )
        )
    )
    if delivery.letter is None:
        raise AssertionError("bounces are of letters to targets")
    targets = [t.email for t in delivery.letter.appeal.targets if t.email]
    if delivery.channel is not Channel.email:
        targets = []  # a fax goes to the number it was planned for
    had = [r for r in (*delivery.recipients, *delivery.cc) if r.lower() not in bounced]
    return {"recipients": targets or list(delivery.recipients), "accepted": had}


def expire_unconfirmed(session: Session, *, now: datetime, days: int) -> int:
    """Letters never confirmed within `days` become `expired`; returns how many."""
    cutoff = now - timedelta(days=days)
    stale = session.scalars(
        select(Letter.id)
        .where(Letter.status == LetterStatus.pending_confirmation, Letter.created_at < cutoff)
        .limit(1000)
    ).all()
    return len(
        transition_many(
            session,
            Letter,
            stale,
            LetterStatus.expired,
            expect=LetterStatus.pending_confirmation,
            detail=f"not confirmed in {days} days",
            values={"finished_at": now},
        )
    )


# --- a supporter withdraws or erases a letter ----------------------------------------------

# What may still be stopped: waiting, or failed (an organiser could retry it).
STOPPABLE = (DeliveryStatus.queued, DeliveryStatus.retrying, DeliveryStatus.failed)


def cancel_letter(session: Session, *, letter_id: int, detail: str) -> list[int]:
    """Cancel every delivery of a letter that has not gone out (waiting, or failed): none
    of them will be sent or retried. Returns their ids. A delivery a worker holds at this
    moment (`sending`) is left alone: see target_progress()."""
    found = session.execute(
        select(Delivery.id, Delivery.status).where(
            Delivery.letter_id == letter_id, Delivery.status.in_(STOPPABLE)
        )
    ).all()
    cancelled: list[int] = []
    for status in STOPPABLE:
        ids = [i for i, s in found if s is status]
        cancelled += transition_many(
            session,
            Delivery,
            ids,
            DeliveryStatus.cancelled,
            expect=status,
            values={"lease_until": None},
            detail=detail,
        )
    return cancelled


def progress(
    session: Session, *, letter_id: int, of: Collection[Channel] | None = None
) -> tuple[bool, bool]:
    """(whether any delivery of the letter, or any of its channels `of`, is being sent
    right now; whether any has reached a target), read afresh from the database."""
    statuses = set(
        session.execute(
            select(Delivery.channel, Delivery.status).where(Delivery.letter_id == letter_id)
        ).all()
    )
    sending = any(s is DeliveryStatus.sending and (of is None or c in of) for c, s in statuses)
    reached = any(c in TARGET_CHANNELS and s is DeliveryStatus.sent for c, s in statuses)
    return sending, reached
