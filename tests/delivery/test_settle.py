"""A letter's deliveries finishing at the same moment settle it once, without deadlock."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import Letter, LetterStatus
from tests.appeals.factories import make_appeal
from tests.conftest import drain
from tests.letters.factories import confirm, sign


def test_parallel_records_of_one_letter_settle_it(session: Session, settings: Settings) -> None:
    # Each letter has an e-mail, a fax and a copy, all due at once and sent in parallel
    # (send_concurrency 8): their records race for the letter's row. On PostgreSQL a
    # FOR UPDATE there deadlocked against the KEY SHARE each record's status_event takes.
    appeal = make_appeal(session)
    for n in range(6):
        letter = sign(session, appeal, settings, email=f"s{n}@example.net", copy_to_me=True)
        confirm(session, letter, settings)
    session.commit()
    outcomes = drain(settings)
    assert "error" not in {o.result for o in outcomes}
    session.expire_all()
    assert {x.status for x in session.scalars(select(Letter))} == {LetterStatus.sent}
