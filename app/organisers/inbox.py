"""What came back, as organisers see it: targets' replies (human and automatic apart),
bounces with their reports, the addresses that bounce, and retrying their letters.
Every query takes the asker's scope: a union sees what came back for its own letters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.auth import Principal, bounces_filter, check_bounce, deliveries_filter
from app.core.auth import replies_filter as replies_scope
from app.core.errors import NotFound
from app.delivery import service as delivery
from app.models import Appeal, Bounce, Delivery, DeliveryStatus, Letter, Reply, ReplyKind
from app.organisers.schemas import (
    BounceDetail,
    BouncePage,
    BounceRead,
    BouncingAddress,
    ReplyPage,
    ReplyRead,
)

COMPLAINT = "complaint"  # the status of a relay's complaint report (app/delivery/inbound)


def replies(
    session: Session,
    *,
    appeal: Appeal,
    who: Principal,
    kind: ReplyKind = ReplyKind.human,
    limit: int = 50,
    offset: int = 0,
) -> ReplyPage:
    """The appeal's replies of one kind, newest first, and how many of each kind."""
    scope = (Reply.appeal_id == appeal.id, replies_scope(who))
    counts = {k.value: 0 for k in ReplyKind}
    for found, n in session.execute(
        select(Reply.kind, func.count()).where(*scope).group_by(Reply.kind)
    ):
        counts[found.value] = int(n)
    rows = session.execute(
        select(Reply, Letter.public_id)
        .outerjoin(Letter, Letter.id == Reply.letter_id)
        .where(*scope, Reply.kind == kind)
        .order_by(Reply.received_at.desc(), Reply.id.desc())
        .limit(limit)
        .offset(offset)
    )
    items = [
        ReplyRead(
            id=r.id,
            kind=r.kind,
            received_at=r.received_at,
            sender=r.sender,
            sender_name=r.sender_name,
            subject=r.subject,
            text=r.text,
            letter_id=public_id,
        )
        for r, public_id in rows
    ]
    return ReplyPage(counts=counts, items=items, total=counts[kind.value])


def _read(b: Bounce, letter_id: str) -> BounceRead:
    return BounceRead(
        id=b.id,
        delivery_id=b.delivery_id,
        letter_id=letter_id,
        recipient=b.recipient,
        permanent=b.permanent,
        status=b.status,
        reply=b.reply,
        source=b.source,
        received_at=b.received_at,
    )


def bounces(
    session: Session, *, appeal: Appeal, who: Principal, limit: int = 50, offset: int = 0
) -> BouncePage:
    """The appeal's bounces, newest first; hard, soft and complaints (a relay's word that
    the target marked a letter as spam) counted apart; and the addresses whose bounces
    left letters waiting for a retry."""
    scope = (Bounce.appeal_id == appeal.id, bounces_filter(who))
    counts = {"hard": 0, "soft": 0, "complaint": 0}
    complaint = Bounce.status == COMPLAINT
    for permanent, complained, n in session.execute(
        select(Bounce.permanent, complaint, func.count())
        .where(*scope)
        .group_by(Bounce.permanent, complaint)
    ):
        kind = "complaint" if complained else "hard" if permanent else "soft"
        counts[kind] += int(n)
    rows = session.execute(
        select(Bounce, Letter.public_id)
        .join(Delivery, Delivery.id == Bounce.delivery_id)
        .join(Letter, Letter.id == Delivery.letter_id)
        .where(*scope)
        .order_by(Bounce.received_at.desc(), Bounce.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return BouncePage(
        counts=counts,
        addresses=bouncing_addresses(session, appeal=appeal, who=who),
        items=[_read(b, public_id) for b, public_id in rows],
        total=sum(counts.values()),
    )


def bouncing_addresses(
    session: Session, *, appeal: Appeal, who: Principal
) -> list[BouncingAddress]:
    """Recipients whose permanent bounces left deliveries `bounced` (waiting for the
    organiser), the appeal's current target addresses first: those are the flags."""
    rows = session.execute(
        select(
            Bounce.recipient,
            func.count(func.distinct(Bounce.delivery_id)),
            func.max(Bounce.received_at),
        )
        .join(Delivery, Delivery.id == Bounce.delivery_id)
        .where(
            Bounce.appeal_id == appeal.id,
            bounces_filter(who),
            Bounce.permanent.is_(True),
            Delivery.status == DeliveryStatus.bounced,
        )
        .group_by(Bounce.recipient)
    ).all()
    targets = {t.email.lower() for t in appeal.targets if t.email}
    found = []
    for recipient, n, last_at in rows:
        last = session.scalars(
            select(Bounce.reply)
            .where(Bounce.appeal_id == appeal.id, Bounce.recipient == recipient)
            .order_by(Bounce.received_at.desc(), Bounce.id.desc())
            .limit(1)
        ).first()
        found.append(
            BouncingAddress(
                recipient=recipient,
                current=recipient in targets,
                letters=int(n),
                last_reply=last or "",
                last_at=last_at,
            )
        )
    return sorted(found, key=lambda a: (not a.current, -a.letters, a.recipient))


def bounce_detail(session: Session, *, bounce_id: int, who: Principal) -> BounceDetail:
    """One bounce with its report; NotFound, or Forbidden out of `who`'s scope."""
    bounce = session.get(Bounce, bounce_id)
    if bounce is None:
        raise NotFound("No such bounce.")
    appeal = session.get(Appeal, bounce.appeal_id)
    if appeal is None:  # bounce.appeal_id is a foreign key
        raise AssertionError(bounce.appeal_id)
    check_bounce(who, bounce, appeal)
    public_id = session.scalar(
        select(Letter.public_id)
        .join(Delivery, Delivery.letter_id == Letter.id)
        .where(Delivery.id == bounce.delivery_id)
    )
    return BounceDetail(**_read(bounce, public_id or "").model_dump(), report=bounce.report)


def retry_bounced(
    session: Session, *, appeal: Appeal, who: Principal, now: datetime, recipient: str = ""
) -> int:
    """Retry every bounced delivery of the appeal in `who`'s scope (only those a bounce
    from `recipient` left, if given), to the targets' addresses as they are now; each is
    enqueued after commit. Returns how many."""
    query = select(Delivery).where(
        Delivery.appeal_id == appeal.id,
        deliveries_filter(who),
        Delivery.status == DeliveryStatus.bounced,
    )
    if recipient:
        query = query.where(
            Delivery.id.in_(
                select(Bounce.delivery_id).where(
                    Bounce.appeal_id == appeal.id, Bounce.recipient == recipient.lower()
                )
            )
        )
    retried = 0
    for found in session.scalars(query.order_by(Delivery.id)).all():
        delivery.retry(session, found, now=now, by=who.label)
        retried += 1
    return retried
