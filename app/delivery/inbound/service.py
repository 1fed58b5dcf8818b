"""Record what came back for a letter: a bounce or a reply, matched by its return address.

Every function here flushes and never commits: the caller (the LMTP handler, the IMAP
reader, a webhook route) owns the transaction and, after commit, enqueues what
was planned (a notice to the supporter that a target answered).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.delivery import returns
from app.delivery import service as delivery_service
from app.delivery.inbound import parse
from app.delivery.inbound.parse import Answer, Failure
from app.documents import build
from app.models import (
    Bounce,
    Channel,
    Delivery,
    DeliveryStatus,
    InboundDropped,
    Letter,
    Reply,
    ReplyKind,
    transition,
)

log = logging.getLogger(__name__)

# What receive() made of a message for one return address.
BOUNCE = "bounce"
REPLY = "reply"
AUTO_REPLY = "auto_reply"
DUPLICATE = "duplicate"  # handed over before: nothing new
IGNORED = "ignored"  # a delivery report that only says "delivered"
LATER = "later"  # the delivery's send is not recorded yet: the MTA should try again
# Dropped, and counted in inbound_dropped by these reasons.
FORGED = "forged"  # a return address of ours whose token is not genuine
UNKNOWN = "unknown"  # a genuine token for a delivery that no longer exists
NOT_OURS = "not_ours"  # no return address of ours at all
TOO_LARGE = "too_large"
UNREADABLE = "unreadable"  # not even the email package could read it
DROP_REASONS = (FORGED, UNKNOWN, NOT_OURS, TOO_LARGE, UNREADABLE)


def count_dropped(session: Session, reason: str) -> None:
    """Add one to the inbound_dropped counter of `reason`. Flushes."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(InboundDropped).values(reason=reason, n=1)
    session.execute(
        statement.on_conflict_do_update(index_elements=["reason"], set_={"n": InboundDropped.n + 1})
    )


def match(session: Session, *, address: str, settings: Settings) -> Delivery | str:
    """The delivery a return address names, or why there is none (FORGED, UNKNOWN,
    NOT_OURS)."""
    if not settings.bounce_domain:
        return NOT_OURS
    found = returns.parse(settings.resolved_secret_key(), address, settings.bounce_domain)
    if found is None:
        return NOT_OURS
    if found.delivery_id is None:
        return FORGED
    delivery = session.get(Delivery, found.delivery_id, populate_existing=True)
    # Letters to targets only (an organiser's invitation, say, has no letter to report on).
    if (
        delivery is None
        or delivery.letter is None
        or delivery.channel not in delivery_service.TARGET_CHANNELS
    ):
        return UNKNOWN
    return delivery


def _key(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()


def _redact(text: str, letter: Letter | None) -> str:
    """`text` without the supporter's address (a bounce may quote the letter's headers)."""
    address = letter.signer_email if letter is not None else ""
    if not address or "@" not in address:
        return text
    return re.sub(re.escape(address), "[the supporter's address]", text, flags=re.IGNORECASE)


def target_addresses(delivery: Delivery, settings: Settings) -> set[str]:
    """The addresses a bounce of which means the target did not get the letter: the
    targets' own, or for a fax the gateway's address for its number."""
    if delivery.channel is Channel.fax:
        if not settings.fax_gateway:
            return set()
        return {
            settings.fax_gateway.replace("{number}", build.fax_digits(number)).lower()
            for number in delivery.recipients
        }
    return {r.lower() for r in delivery.recipients}


def record_bounce(
    session: Session,
    *,
    delivery: Delivery,
    failures: tuple[Failure, ...],
    report: str,
    key: str,
    source: str,
    settings: Settings,
    now: datetime,
) -> str:
    """Keep each failure of a bounce report; a permanent failure of one of the delivery's
    targets turns a sent delivery `bounced` with the remote server's reply. A temporary
    failure is only recorded: the relay keeps trying. Returns BOUNCE or DUPLICATE; LATER
    if the delivery's send is not recorded yet (the report must be handed over again)."""
    if delivery.status is DeliveryStatus.sending:
        return LATER
    targets = target_addresses(delivery, settings)
    report = _redact(report, delivery.letter)
    new = False
    for failure in failures:
        row_key = _key("bounce", key, delivery.id, failure.recipient, failure.permanent)
        if session.scalar(select(exists().where(Bounce.key == row_key))):
            continue
        new = True
        reply = _redact(failure.reply, delivery.letter)
        session.add(
            Bounce(
                key=row_key,
                delivery_id=delivery.id,
                appeal_id=delivery.appeal_id,
                organisation_id=delivery.organisation_id,
                recipient=failure.recipient[:254],
                permanent=failure.permanent,
                status=failure.status,
                reply=reply,
                report=report,
                source=source,
                received_at=now,
            )
        )
        session.flush()
        if (
            failure.permanent
            and failure.recipient in targets
            and delivery.status is DeliveryStatus.sent
        ):
            said = f"{failure.recipient}: {reply or failure.status or 'refused'}"
            transition(
                session,
                delivery,
                DeliveryStatus.bounced,
                detail=f"bounced ({source}): {said}"[:2000],
                values={"last_error": said[:2000]},
            )
    return BOUNCE if new else DUPLICATE


def record_reply(
    session: Session,
    *,
    delivery: Delivery,
    answer: Answer,
    key: str,
    settings: Settings,
    now: datetime,
) -> str:
    """Keep an answer to a letter, human or automatic (counted apart, never shown as a
    reply). The supporter who asked to be told is sent a notice on the first human
    answer to their letter (enqueued after commit). Returns REPLY, AUTO_REPLY or DUPLICATE."""
    row_key = _key("reply", key, delivery.id)
    if session.scalar(select(exists().where(Reply.key == row_key))):
        return DUPLICATE
    letter = delivery.letter
    if letter is None:
        raise AssertionError("match() finds letters to targets only")
    name, address = answer.sender_name, answer.sender
    if letter.signer_email and address == letter.signer_email.lower():
        name, address = "", ""  # never keep the supporter's own address here
    answered_before = session.scalar(
        select(exists().where(Reply.letter_id == letter.id, Reply.kind == ReplyKind.human))
    )
    session.add(
        Reply(
            key=row_key,
            appeal_id=delivery.appeal_id,
            letter_id=letter.id,
            delivery_id=delivery.id,
            organisation_id=delivery.organisation_id,
            kind=ReplyKind.auto if answer.automatic else ReplyKind.human,
            sender=address,
            sender_name=_redact(name, letter),
            subject=_redact(answer.subject, letter)[:300],
            text=_redact(answer.text, letter),
            received_at=now,
        )
    )
    session.flush()
    if answer.automatic:
        return AUTO_REPLY
    # (No notice once the supporter's address is forgotten: there is nobody to tell.)
    supporter = letter.signer_email
    if letter.notify_replies and supporter and "@" in supporter and not answered_before:
        delivery_service.plan_message(
            session,
            letter=letter,
            channel=Channel.reply_notice,
            to=[supporter],
            kind="replied",
            mail_from=settings.mail_from,
            now=now,
        )
    return REPLY


def receive(
    session: Session,
    *,
    raw: bytes,
    address: str,
    mail_from: str | None,
    settings: Settings,
    source: str,
    now: datetime,
) -> str:
    """What one inbound message, handed over for one of our return addresses, comes to:
    a bounce is recorded against its delivery, anything else is a reply (human or
    automatic: an auto-responder answers the envelope sender, so vacation notices arrive
    at bounce addresses too and must not count as bounces). Messages for unknown or
    forged addresses, and messages that cannot be read, are dropped and counted. Flushes."""
    found = match(session, address=address, settings=settings)
    if isinstance(found, str):
        count_dropped(session, found)
        return found
    inbound = parse.classify(raw, null_sender=mail_from == "")
    if inbound is None:
        count_dropped(session, UNREADABLE)
        return UNREADABLE
    if inbound.bounce is not None:
        return record_bounce(
            session,
            delivery=found,
            failures=inbound.bounce.failures,
            report=inbound.bounce.report,
            key=inbound.key,
            source=source,
            settings=settings,
            now=now,
        )
    if inbound.answer is None:
        return IGNORED
    return record_reply(
        session,
        delivery=found,
        answer=inbound.answer,
        key=inbound.key,
        settings=settings,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class Event:
    """A relay's report of one recipient of one of our messages (a webhook)."""

    delivery: Delivery
    failure: Failure
    report: str
    key: str  # the provider's id of the event, so a repeated webhook counts once


def record_event(
    session: Session, *, event: Event, source: str, settings: Settings, now: datetime
) -> str:
    """Record a relay's bounce event like a bounce report. Flushes."""
    return record_bounce(
        session,
        delivery=event.delivery,
        failures=(event.failure,),
        report=event.report,
        key=event.key,
        source=source,
        settings=settings,
        now=now,
    )
