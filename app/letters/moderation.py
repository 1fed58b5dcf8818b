"""Moderation: letters with a supporter's own words wait, held, until an organiser decides.

Approved letters are queued and their deliveries written as if just confirmed; rejected
ones are never sent, and the supporter is told by e-mail (through the outbox).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.audit import service as audit
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


def hold_groups(
    session: Session, *, appeal: Appeal, where: ColumnElement[bool]
) -> list[tuple[str, int]]:
    """The flood guard's reasons among the appeal's held letters matching `where`, with
    how many letters each holds, largest first."""
    rows = session.execute(
        select(Letter.hold_reason, func.count())
        .where(
            Letter.appeal_id == appeal.id,
            Letter.status == LetterStatus.held,
            Letter.hold_reason != "",
            where,
        )
        .group_by(Letter.hold_reason)
        .order_by(func.count().desc(), Letter.hold_reason)
    )
    return [(reason, int(n)) for reason, n in rows]


def approve_group(
    session: Session,
    *,
    appeal: Appeal,
    reason: str,
    where: ColumnElement[bool],
    settings: Settings,
    now: datetime,
    by: str,
) -> int:
    """Release every held letter of the appeal that the flood guard held for `reason` (and
    matching `where`, a union's scope), as approve() does one; returns how many. Letters
    with the supporter's own words on an appeal that moderates them stay, to be read one
    by one."""
    conditions = [
        Letter.appeal_id == appeal.id,
        Letter.status == LetterStatus.held,
        Letter.hold_reason == reason,
        where,
    ]
    if appeal.moderation:
        conditions.append(Letter.message == "")
    letters = session.scalars(select(Letter).where(*conditions).order_by(Letter.id)).all()
    released = 0
    for letter in letters:
        if transition(session, letter, LetterStatus.queued, detail=f"approved by {by}"):
            delivery.plan_letter(session, letter=letter, mail_from=settings.mail_from, now=now)
            _log(session, letter, "letter.approved", by, {"held": reason})
            released += 1
    return released


def _log(session: Session, letter: Letter, action: str, by: str, changes: dict[str, str]) -> None:
    # The letter's public id, never the supporter's name or address.
    audit.record(
        session,
        by=by,
        action=action,
        appeal_id=letter.appeal_id,
        organisation_id=letter.organisation_id,
        subject=letter.public_id,
        changes=changes,
    )


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
    _log(session, letter, "letter.approved", by, {})
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
        values={"rejection_reason": reason, "finished_at": now},
        detail=f"rejected by {by}",
    ):
        raise NotHeld()
    _log(session, letter, "letter.rejected", by, {"reason": reason} if reason else {})
    if letter.signer_email is None:  # erased a moment ago: nobody to tell
        return letter
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
