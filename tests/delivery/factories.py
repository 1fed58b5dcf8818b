"""Thousands of confirmed letters straight into the outbox, for load and crash tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from app.appeals import letter as appeal_letter
from app.core import security
from app.delivery.messages import message_id
from app.models import Appeal, Channel, Delivery, DeliveryStatus, Letter, LetterStatus, utcnow


def outbox(
    session: Session,
    appeal: Appeal,
    *,
    count: int,
    mail_from: str = "Outcry <letters@localhost>",
    now: datetime | None = None,
    first: int = 0,
) -> list[int]:
    """Write `count` confirmed letters with their e-mail deliveries, as plan_letter would
    (To the appeal's targets, Cc its copies), in a few statements; returns the delivery ids.
    Supporters are numbered from `first`, so a second call can add more to one appeal."""
    now = now or utcnow()
    language = appeal.default_language
    text = appeal_letter.render(
        appeal,
        language,
        appeal_letter.letter_vars(
            appeal,
            name="A. Supporter",
            organisation="Example Union",
            country="GB",
            city="Leeds",
            message="",
            language=language,
            today=now.date(),
        ),
    )
    rows = session.execute(
        insert(Letter).returning(Letter.id, Letter.public_id, sort_by_parameter_order=True),
        [
            {
                "public_id": security.new_token(12),
                "key": security.new_token(24),
                "appeal_id": appeal.id,
                "signer_name": f"Supporter {n}",
                "signer_email": f"supporter{n}@example.net",
                "signer_country": "GB",
                "language": language,
                "status": LetterStatus.queued,
                "subject": text.subject,
                "body": text.body,
                "created_at": now,
                "confirmed_at": now,
            }
            for n in range(first, first + count)
        ],
    ).all()
    emails = [t.email for t in appeal.targets if t.email]
    deliveries = session.execute(
        insert(Delivery).returning(Delivery.id, Delivery.letter_id, sort_by_parameter_order=True),
        [
            {
                "letter_id": letter_id,
                "appeal_id": appeal.id,
                "channel": Channel.email,
                "recipients": emails,
                "cc": list(appeal.copies),
                "status": DeliveryStatus.queued,
                "max_attempts": appeal.max_attempts,
                "next_attempt_at": now,
                "accepted": [],
                "message_id": "",
                "created_at": now,
            }
            for letter_id, _ in rows
        ],
    ).all()
    public_ids: dict[int | None, str] = dict(rows)
    table = Delivery.__table__
    session.execute(
        update(table)  # type: ignore[arg-type]
        .where(table.c.id == bindparam("d_id"))
        .values(message_id=bindparam("mid")),
        [
            {"d_id": d_id, "mid": message_id("letter", public_ids[letter_id], d_id, mail_from)}
            for d_id, letter_id in deliveries
        ],
    )
    return [d_id for d_id, _ in deliveries]
