"""Keep little, forget on time: withdrawing and erasing letters, the sweeper's privacy
passes, and purging a closed appeal.

What a seized database must not give away is who signed. So the supporter's e-mail
address goes OUTCRY_FORGET_AFTER_DAYS after their letter is finished, leaving a keyed
hash (HMAC with the secret key) that still refuses a second signature; a letter never
confirmed is reduced to its place in the counts; a supporter can withdraw a letter not
yet sent, and erase their details from one already sent (the copy the target received
cannot be recalled). Erased rows stay as rows, with their status, appeal, organisation,
country and dates, so every count (the trigger-kept tally, by country, by day) stays
exactly as it was. Every function flushes; the caller commits.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from app.appeals import service as appeals
from app.audit import service as audit
from app.core import security
from app.core.config import Settings
from app.core.errors import AppealNotClosed, LetterBusy, NotWithdrawable
from app.delivery import service as delivery
from app.models import (
    FINISHED,
    Appeal,
    Channel,
    Delivery,
    DeliveryStatus,
    Letter,
    LetterStatus,
    StatusEvent,
    transition,
)

log = logging.getLogger(__name__)

# The supporter's own mail: its recipient is their address, its server replies may be too.
SUPPORTER_CHANNELS = (Channel.copy, Channel.confirmation, Channel.rejection)
# What a withdrawal waits for while it is on the wire: all but the confirmation e-mail.
_BUSY_FOR_WITHDRAWAL = tuple(c for c in Channel if c is not Channel.confirmation)
# A letter the supporter may still take back, as long as no target has it.
WITHDRAWABLE = (
    LetterStatus.pending_confirmation,
    LetterStatus.held,
    LetterStatus.queued,
    LetterStatus.failed,
)
# Letters one sweep forgets or deletes at most: each pass stays short, the next goes on.
SWEEP_BATCH = 500
PURGE_BATCH = 1000


def email_hash(settings: Settings, email: str) -> str:
    """The keyed hash of a normalised address that outlives the address."""
    return security.derive(settings.resolved_secret_key(), "email", email)


def _lock(session: Session, letter: Letter) -> None:
    # Serialises a withdrawal or an erasure with settle_letters() (which takes the same
    # lock) and with a second click; the status is read afresh under it.
    session.execute(select(Letter.id).where(Letter.id == letter.id).with_for_update(key_share=True))
    session.refresh(letter, ["status", "erased_at"])


def can_withdraw(letter: Letter) -> bool:
    """Whether the letter page offers "withdraw": not yet sent to any target."""
    if letter.status not in WITHDRAWABLE:
        return False
    return not any(
        d.channel in delivery.TARGET_CHANNELS and d.status.value in ("sending", "sent")
        for d in letter.deliveries
    )


def _stop(
    session: Session, letter: Letter, detail: str, *, busy: Collection[Channel] | None = None
) -> bool:
    """Cancel what has not gone out; LetterBusy if a worker is sending part of it now (of
    the channels `busy`, if given). Returns whether any target has the letter."""
    delivery.cancel_letter(session, letter_id=letter.id, detail=detail)
    # Read after cancelling: a claim that won the race is `sending` by now, and one that
    # lost can no longer happen (the rows are cancelled, or locked until we commit).
    sending, reached = delivery.progress(session, letter_id=letter.id, of=busy)
    if sending:
        raise LetterBusy()
    return reached


def withdraw(session: Session, *, letter: Letter, now: datetime) -> Letter:
    """Take back a letter no target has received: it becomes `withdrawn` and whatever it
    had waiting is cancelled. NotWithdrawable once a target has it, LetterBusy while it
    is being sent; withdrawing twice changes nothing."""
    _lock(session, letter)
    if letter.status is LetterStatus.withdrawn:
        return letter
    if letter.status in (LetterStatus.expired, LetterStatus.rejected):
        raise NotWithdrawable("This letter will not be sent anyway: there is nothing to withdraw.")
    if letter.status not in WITHDRAWABLE:
        raise NotWithdrawable()
    # The supporter's confirmation e-mail on its way (a moment after signing) does not stop
    # a withdrawal: it reaches no target, and its link confirms nothing once the letter is
    # withdrawn. Anything else on its way does.
    if _stop(session, letter, "withdrawn by the supporter", busy=_BUSY_FOR_WITHDRAWAL):
        raise NotWithdrawable()  # rolled back with the cancellations by the caller
    transition(
        session,
        letter,
        LetterStatus.withdrawn,
        values={"finished_at": now},
        detail="withdrawn by the supporter",
    )
    _reload(session, letter)
    return letter


def erase(session: Session, *, letter: Letter, now: datetime) -> Letter:
    """Erase the supporter's details (name, address, city, union, message, the letter's
    text) at their request. A letter no target has is withdrawn first; one some target
    has keeps its status and the rest of its deliveries are cancelled. The address's
    hash stays, so the appeal cannot be signed twice. LetterBusy while it is being sent;
    erasing twice changes nothing."""
    _lock(session, letter)
    if letter.erased_at is not None:
        return letter
    reached = _stop(session, letter, "cancelled: the supporter erased their details")
    if not reached and letter.status in WITHDRAWABLE:
        transition(
            session,
            letter,
            LetterStatus.withdrawn,
            values={"finished_at": now},
            detail="withdrawn by the supporter, who erased their details",
        )
    elif letter.status is LetterStatus.queued:
        # Some targets have it and the rest are cancelled: it is as sent as it will be.
        delivery.settle_letters(session, [letter.id], now=now)
    _erase(session, [letter.id], now=now, drop_hash=False, drop_country=False)
    _reload(session, letter)
    return letter


def _reload(session: Session, letter: Letter) -> None:
    """Expire the letter and its loaded deliveries: the bulk updates above bypassed them."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Delivery) and obj.letter_id == letter.id:
            session.expire(obj)
    session.expire(letter)


def _erase(
    session: Session, ids: Sequence[int], *, now: datetime, drop_hash: bool, drop_country: bool
) -> None:
    """Blank the supporter's details on these letters, and their address wherever the
    supporter's own mail kept it (recipients, server replies)."""
    if not ids:
        return
    _scrub_supporter_mail(session, ids)
    values: dict[str, Any] = {
        "signer_name": "",
        "signer_email": None,
        "signer_city": "",
        "signer_organisation": "",
        "message": "",
        "subject": "",
        "body": "",
        "rejection_reason": "",
        "hold_reason": "",
        "erased_at": now,
    }
    if drop_hash:
        values["email_hash"] = None
    if drop_country:
        values["signer_country"] = ""
    session.execute(
        update(Letter)
        .where(Letter.id.in_(ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _scrub_supporter_mail(session: Session, ids: Sequence[int]) -> None:
    mail = select(Delivery.id).where(
        Delivery.letter_id.in_(ids), Delivery.channel.in_(SUPPORTER_CHANNELS)
    )
    session.execute(
        update(StatusEvent)
        .where(StatusEvent.delivery_id.in_(mail.scalar_subquery()))
        .values(detail="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(mail.scalar_subquery()))
        .values(recipients=[], accepted=[], last_error=None)
        .execution_options(synchronize_session=False)
    )


# --- the sweeper's passes -------------------------------------------------------------------


def forget_addresses(
    session: Session, *, now: datetime, days: int, limit: int = SWEEP_BATCH
) -> int:
    """Erase the address of up to `limit` letters finished more than `days` ago (nothing of
    theirs still waiting to go out); the hash, the name and the letter as sent stay.
    Returns how many; run again until 0."""
    unfinished = exists().where(
        Delivery.letter_id == Letter.id, Delivery.status.in_(delivery.UNFINISHED)
    )
    ids = list(
        session.scalars(
            select(Letter.id)
            .where(
                Letter.signer_email.is_not(None),
                Letter.finished_at < now - timedelta(days=days),
                ~unfinished,
            )
            .order_by(Letter.finished_at)
            .limit(limit)
        )
    )
    if ids:
        _scrub_supporter_mail(session, ids)
        session.execute(
            update(Letter)
            .where(Letter.id.in_(ids))
            .values(signer_email=None, hold_reason="")
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def delete_unconfirmed(
    session: Session, *, now: datetime, days: int, limit: int = SWEEP_BATCH
) -> int:
    """Reduce up to `limit` letters that expired unconfirmed more than `days` ago to their
    place in the counts (status, appeal, organisation, dates): no name, address, hash,
    country or text. Returns how many; run again until 0."""
    ids = list(
        session.scalars(
            select(Letter.id)
            .where(
                # Literal, so PostgreSQL sees the partial index's predicate in the query.
                Letter.status == literal_column(f"'{LetterStatus.expired.value}'"),
                Letter.erased_at.is_(None),
                Letter.finished_at < now - timedelta(days=days),
            )
            .order_by(Letter.finished_at)
            .limit(limit)
        )
    )
    _erase(session, ids, now=now, drop_hash=True, drop_country=True)
    return len(ids)


@dataclass(frozen=True, slots=True)
class Upkeep:
    forgotten: int
    deleted: int


def upkeep(session: Session, *, now: datetime, settings: Settings) -> Upkeep:
    """One bounded round of both passes, for the sweeper (Celery beat or the embedded
    loop); safe to run any number of times."""
    done = Upkeep(
        forgotten=forget_addresses(session, now=now, days=settings.forget_after_days),
        deleted=delete_unconfirmed(session, now=now, days=settings.delete_unconfirmed_after_days),
    )
    if done.forgotten or done.deleted:
        log.info(
            "forgot %d supporters' addresses; deleted %d never-confirmed letters",
            done.forgotten,
            done.deleted,
        )
    return done


# --- purging a closed appeal ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurgeResult:
    erased: int  # letters anonymised now
    unfinished: int  # letters left as they are: still awaiting confirmation, held or queued


def _in_flight() -> Any:
    """The letter has a message on the wire: its result, recorded later, would write back
    what erasing it scrubbed (the server's reply may quote the address)."""
    return exists().where(
        Delivery.letter_id == Letter.id, Delivery.status == DeliveryStatus.sending
    )


def _purgeable(appeal: Appeal, before: datetime | None) -> list[Any]:
    conditions: list[Any] = [
        Letter.appeal_id == appeal.id,
        Letter.status.in_(FINISHED),
        Letter.erased_at.is_(None),
        ~_in_flight(),
    ]
    if before is not None:
        conditions.append(Letter.created_at < before)
    return conditions


def purge_preview(session: Session, *, appeal: Appeal, before: datetime | None) -> PurgeResult:
    """What purge_appeal() would do now, changing nothing."""
    erasable = session.scalar(
        select(func.count()).select_from(Letter).where(*_purgeable(appeal, before))
    )
    return PurgeResult(erased=erasable or 0, unfinished=_unfinished(session, appeal, before))


def _unfinished(session: Session, appeal: Appeal, before: datetime | None) -> int:
    conditions: list[Any] = [
        Letter.appeal_id == appeal.id,
        or_(
            Letter.status.in_(
                (LetterStatus.pending_confirmation, LetterStatus.held, LetterStatus.queued)
            ),
            and_(Letter.status.in_(FINISHED), Letter.erased_at.is_(None), _in_flight()),
        ),
    ]
    if before is not None:
        conditions.append(Letter.created_at < before)
    return session.scalar(select(func.count()).select_from(Letter).where(*conditions)) or 0


def purge_appeal(
    session: Session, *, appeal: Appeal, now: datetime, by: str, before: datetime | None = None
) -> PurgeResult:
    """Anonymise a closed appeal's finished letters (signed before `before`, if given):
    names, addresses and their hashes, cities, unions, messages and texts go; status,
    organisation, country and dates stay, so every count is as before. Letters still on
    their way are left and counted. AppealNotClosed unless the appeal has closed."""
    if appeals.phase(appeal, now) != "closed":
        raise AppealNotClosed()
    conditions = _purgeable(appeal, before)
    erased = 0
    while True:
        ids = list(
            session.scalars(
                select(Letter.id).where(*conditions).order_by(Letter.id).limit(PURGE_BATCH)
            )
        )
        if not ids:
            break
        _erase(session, ids, now=now, drop_hash=True, drop_country=False)
        erased += len(ids)
    unfinished = _unfinished(session, appeal, before)
    changes: dict[str, object] = {"erased": erased, "unfinished": unfinished}
    if before is not None:
        changes["before"] = before.date().isoformat()
    audit.record(
        session,
        by=by,
        action="appeal.purged",
        appeal_id=appeal.id,
        subject=appeal.slug,
        changes=changes,
    )
    session.flush()
    return PurgeResult(erased=erased, unfinished=unfinished)
