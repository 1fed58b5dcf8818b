"""Moderation: letters with a supporter's own words wait, held, until an organiser decides.

Approved letters are queued and their deliveries written as if just confirmed; rejected
ones are never sent, and the supporter is told by e-mail (through the outbox).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import Conflict, InvalidInput
from app.core.text import multi_line
from app.delivery import service as delivery
from app.models import Appeal, Channel, Letter, LetterStatus, transition

REASON_MAX = 1000


class NotHeld(Conflict):
    code = "not_held"
    default_detail = "This letter is not waiting for moderation."


def held_letters(
    session: Session,
    *,
    appeal: Appeal,
    where: ColumnElement[bool],
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Letter], int]:
    """The appeal's held letters matching `where` (a union's scope), oldest first, and
    how many there are in all."""
    condition = (Letter.appeal_id == appeal.id, Letter.status == LetterStatus.held, where)
    total = session.scalar(select(func.count()).select_from(Letter).where(*condition)) or 0
    letters = session.scalars(
        select(Letter)
        .where(*condition)
        .order_by(Letter.confirmed_at, Letter.id)
        .limit(limit)
        .offset(offset)
    )
    return list(letters), total


def approve(
    session: Session, *, letter: Letter, settings: Settings, now: datetime, by: str
) -> Letter:
    """Release a held letter: it becomes `queued` and its deliveries are written and
    enqueued after commit. Raises NotHeld if it is not waiting."""
    if letter.status is not LetterStatus.held or not transition(
        session, letter, LetterStatus.queued, detail=f"approved by {by}"
    ):
        raise NotHeld()
    delivery.plan_letter(session, letter=letter, mail_from=settings.mail_from, now=now)
    return letter


def reject(
    session: Session,
    *,
    letter: Letter,
    settings: Settings,
    now: datetime,
    by: str,
    reason: str = "",
) -> Letter:
    """Decline a held letter: it becomes `rejected` and is never sent; the notice to the
    supporter (with the moderator's `reason`, if any) is written to the outbox and
    enqueued after commit. Raises NotHeld, or InvalidInput for a reason over REASON_MAX."""
    reason = multi_line(reason)
    if len(reason) > REASON_MAX:
        raise InvalidInput({"reason": f"must be at most {REASON_MAX} characters"})
    if letter.status is not LetterStatus.held or not transition(
        session,
        letter,
        LetterStatus.rejected,
        values={"rejection_reason": reason},
        detail=f"rejected by {by}",
    ):
        raise NotHeld()
    delivery.plan_message(
        session,
        letter=letter,
        channel=Channel.rejection,
        to=[letter.signer_email],
        kind="rejected",
        mail_from=settings.mail_from,
        now=now,
    )
    return letter
