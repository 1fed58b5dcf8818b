"""A signature is stored whole (the letter and its confirmation e-mail) or not at all."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory, session_scope
from app.core.errors import DuplicateSignature
from app.delivery import service as delivery
from app.letters import guard, service
from app.letters.schemas import SignatureIn
from app.models import Appeal, Delivery, Letter, LetterStatus, LetterTally, utcnow
from tests.appeals.factories import make_appeal
from tests.letters.factories import sign, signature


class DiskFull(Exception):
    pass


def test_a_failure_after_the_letter_is_written_stores_nothing(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    appeal_id = make_appeal(session).id
    session.commit()

    written: list[tuple[int | None, int | None]] = []

    def fail(session: Session, _ids: object) -> None:
        count = select(func.count())
        letters, deliveries = Letter.__table__, Delivery.__table__
        written.append(
            (
                session.scalar(count.select_from(letters)),
                session.scalar(count.select_from(deliveries)),
            )
        )
        raise DiskFull()

    # Once the letter and its confirmation e-mail are written, before the commit: on
    # SQLite by two INSERTs, on PostgreSQL by one statement.
    monkeypatch.setattr(delivery, "enqueue_after_commit", fail)
    sessions = session_factory(engine_for(settings.database_url))
    form = SignatureIn.model_validate(signature())

    def sign_in_a_transaction() -> None:
        with session_scope(sessions) as other:
            appeal = other.get(Appeal, appeal_id)
            assert appeal is not None
            service.sign_letter(other, appeal=appeal, form=form, settings=settings, now=utcnow())

    with pytest.raises(DiskFull):
        sign_in_a_transaction()
    assert written == [(1, 1)]  # both were written in the transaction that failed

    with session_scope(sessions) as fresh:
        assert fresh.scalar(select(func.count()).select_from(Letter)) == 0
        assert fresh.scalar(select(func.count()).select_from(Delivery)) == 0


def test_the_same_address_signing_at_the_same_moment_gets_409_and_stores_nothing(
    session: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_appeal(session)
    session.commit()
    url = "/api/v1/appeals/free-them/letters"
    first = client.post(url, json=signature())
    assert first.status_code == 202, first.text

    # As if the second request had looked for an earlier letter before the first one
    # committed and found none: it goes straight to its INSERT, and the unique key must
    # catch it.
    monkeypatch.setattr(service, "_make_way", lambda *_args, **_kwargs: None)
    second = client.post(url, json=signature(name="Ada Again"))
    assert second.status_code == 409, second.text
    assert second.json()["error"] == "duplicate_signature"

    session.expire_all()
    [letter] = session.scalars(select(Letter)).all()
    assert letter.public_id == first.json()["id"]
    assert letter.signer_name == "Ada Example"
    [confirmation] = session.scalars(select(Delivery)).all()
    assert confirmation.letter_id == letter.id
    tally = session.scalar(select(func.sum(LetterTally.n)))
    assert tally == 1


def test_a_letter_confirmed_while_the_address_signs_again_is_kept(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new signature read the old letter as unconfirmed; the supporter confirms it
    # before the old letter is deleted. The confirmed letter must stay, whole.
    appeal = make_appeal(session)
    first = sign(session, appeal, settings)
    session.commit()
    first_id = first.id
    read = service._make_way

    def confirmed_meanwhile(s: Session, **kwargs: object) -> None:
        real_execute = s.execute

        def execute(statement: object, *args: object, **kw: object) -> object:
            if getattr(statement, "is_delete", False):
                # The confirmation lands between the read and the delete.
                real_execute(
                    update(Letter)
                    .where(Letter.id == first_id)
                    .values(status=LetterStatus.queued)
                    .execution_options(synchronize_session=False)
                )
            return real_execute(statement, *args, **kw)  # type: ignore[call-overload]

        monkeypatch.setattr(s, "execute", execute)
        try:
            read(s, **kwargs)  # type: ignore[arg-type]
        finally:
            monkeypatch.setattr(s, "execute", real_execute)

    monkeypatch.setattr(service, "_make_way", confirmed_meanwhile)
    with pytest.raises(DuplicateSignature):
        sign(session, appeal, settings, name="Ada Again")
    session.rollback()

    session.expire_all()
    [letter] = session.scalars(select(Letter)).all()
    assert letter.id == first_id
    assert letter.signer_name == "Ada Example"


def test_a_signature_s_confirmation_e_mail_is_the_row_insert_confirmation_writes(
    session: Session, settings: Settings
) -> None:
    """On PostgreSQL a signature writes its letter and confirmation e-mail in one
    statement; on SQLite, insert_confirmation() writes the e-mail. Either way the same row."""
    appeal = make_appeal(session)
    letter = sign(session, appeal, settings)
    session.flush()
    assert letter.signer_email is not None
    row = delivery.confirmation_row(
        public_id=letter.public_id,
        appeal_id=letter.appeal_id,
        organisation_id=letter.organisation_id,
        signer_email=letter.signer_email,
        max_attempts=appeal.max_attempts,
        mail_from=settings.mail_from,
        now=letter.created_at,
    )
    delivery.insert_confirmation(session, letter.id, row)
    session.flush()
    session.expire_all()
    signed, planned = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    columns = [c.key for c in Delivery.__table__.columns if c.key not in ("id", "message_id")]
    assert {c: getattr(signed, c) for c in columns} == {c: getattr(planned, c) for c in columns}
    assert signed.letter_id == letter.id
    assert signed.recipients == ["ada@example.net"]
    prefix = f"<outcry.confirm.{letter.public_id}."
    assert signed.message_id.startswith(prefix)
    assert planned.message_id.startswith(prefix)
    assert signed.message_id != planned.message_id


def test_a_letter_confirmed_after_it_was_read_with_the_appeal_is_kept(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API reads the address's earlier letter with the appeal (appeal_to_sign); the
    supporter confirms it before the new signature would replace it: it stays, whole."""
    appeal = make_appeal(session)
    first = sign(session, appeal, settings)
    session.commit()
    form = SignatureIn.model_validate(signature(name="Ada Again"))
    _copy, earlier = service.appeal_to_sign(
        session, slug=appeal.slug, address=form.email, settings=settings
    )
    assert (earlier.id, earlier.status) == (first.id, LetterStatus.pending_confirmation)
    session.rollback()
    sessions = session_factory(engine_for(settings.database_url))

    def confirmed_meanwhile(_settings: Settings, _client: str | None) -> None:
        # Between the read and the write: while the signing limit is counted.
        with session_scope(sessions) as other:
            other.execute(update(Letter).values(status=LetterStatus.queued))

    monkeypatch.setattr(guard, "check_signing_limit", confirmed_meanwhile)
    with pytest.raises(DuplicateSignature):
        service.sign(
            session, slug=appeal.slug, form=form, settings=settings, now=utcnow(), client=None
        )
    session.rollback()
    session.expire_all()
    [letter] = session.scalars(select(Letter)).all()
    assert (letter.id, letter.signer_name) == (first.id, "Ada Example")


def test_sign_letter_refuses_the_process_s_copy_of_the_appeal(
    session: Session, settings: Settings
) -> None:
    """A letter in a session pointing at the copy every request shares would put the copy
    in that session, or let a change to it reach every request."""
    appeal = make_appeal(session)
    session.commit()
    form = SignatureIn.model_validate(signature())
    copy, _earlier = service.appeal_to_sign(
        session, slug=appeal.slug, address=form.email, settings=settings
    )
    with pytest.raises(AssertionError, match="session's own appeal"):
        service.sign_letter(session, appeal=copy, form=form, settings=settings, now=utcnow())


def test_an_earlier_letter_read_for_another_address_is_looked_for_again(
    session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session)
    first = sign(session, appeal, settings)  # ada@example.net, unconfirmed
    session.commit()
    _appeal, someone_else = service.appeal_to_sign(
        session, slug=appeal.slug, address="bob@example.net", settings=settings
    )
    assert someone_else.id is None
    form = SignatureIn.model_validate(signature(name="Ada Again"))
    again = service.sign_letter(
        session, appeal=appeal, form=form, settings=settings, now=utcnow(), earlier=someone_else
    )
    session.commit()
    # Had bob's "no earlier letter" been taken for ada's, the INSERT would have met her
    # first letter's unique key (409); read again, that letter gives way.
    [letter] = session.scalars(select(Letter)).all()
    assert letter.public_id == again.public_id != first.public_id


def test_a_confirmation_e_mail_that_cannot_be_written_is_no_duplicate_signature(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    appeal = make_appeal(session)
    row = delivery.confirmation_row

    def broken(**kwargs: Any) -> dict[str, Any]:
        return {**row(**kwargs), "invitation_id": 987654}  # no such invitation

    monkeypatch.setattr(delivery, "confirmation_row", broken)
    with pytest.raises(IntegrityError) as failed:
        sign(session, appeal, settings)
    assert not isinstance(failed.value, DuplicateSignature)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Letter)) == 0
