"""Keep little, forget on time: forgetting, deleting the never confirmed, withdrawing,
erasing and purging, on both databases, with a controllable clock; every count stays."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appeals import service as appeals
from app.core.auth import Principal
from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.core.errors import (
    AppealNotClosed,
    DuplicateSignature,
    InvalidConfirmation,
    LetterBusy,
    NotWithdrawable,
)
from app.delivery import service as delivery
from app.delivery import transports
from app.delivery.deliverer import Deliverer
from app.letters import privacy
from app.models import (
    Appeal,
    AppealStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    Letter,
    LetterStatus,
    StatusEvent,
    utcnow,
)
from app.organisers import stats
from tests.appeals.factories import make_appeal
from tests.conftest import drain
from tests.letters.factories import confirm, sign
from tests.organisers.test_tally import assert_tally_matches

ADMIN = Principal(via="token", organisation_id=None)


def figures(session: Session, appeal: Appeal) -> dict[str, object]:
    """Everything an organiser or a supporter counts: stats, the public counts, the tally."""
    session.expire_all()
    return {
        "stats": stats.appeal_stats(session, appeal=appeal, who=ADMIN).model_dump(),
        "public": appeals.counts(session, [appeal.id])[appeal.id],
        "tally": assert_tally_matches(session),
    }


def reload(session: Session, letter: Letter) -> Letter:
    session.expire_all()
    found = session.get(Letter, letter.id)
    assert found is not None
    return found


def test_addresses_are_forgotten_after_n_days_and_every_count_stays(
    session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    ada = sign(session, appeal, settings, email="ada@example.net", copy_to_me=True)
    sign(session, appeal, settings, email="bo@example.net", country="KZ")
    session.commit()
    drain(settings)
    before = figures(session, appeal)
    sent_at = reload(session, ada).finished_at
    assert sent_at is not None

    days = settings.forget_after_days
    assert privacy.forget_addresses(session, now=sent_at + timedelta(days=days - 1), days=days) == 0
    later = sent_at + timedelta(days=days, hours=1)
    assert privacy.forget_addresses(session, now=later, days=days) == 2
    session.commit()

    ada = reload(session, ada)
    assert ada.signer_email is None
    assert ada.email_hash == privacy.email_hash(settings, "ada@example.net")
    # The letter as sent stays: it went to the target.
    assert ada.signer_name == "Ada Example"
    assert "Ada Example" in ada.body
    [copy] = [d for d in ada.deliveries if d.channel is Channel.copy]
    assert copy.recipients == []
    assert figures(session, appeal) == before
    # The same address is still refused, in any spelling.
    with pytest.raises(DuplicateSignature):
        sign(session, appeal, settings, email="ADA@Example.net")
    session.rollback()
    assert privacy.forget_addresses(session, now=later, days=days) == 0  # idempotent


def test_each_pass_is_bounded_and_the_next_goes_on(session: Session, settings: Settings) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    for n in range(3):
        sign(session, appeal, settings, email=f"p{n}@example.net")
    session.commit()
    drain(settings)
    later = utcnow() + timedelta(days=settings.forget_after_days + 1)
    done = [privacy.forget_addresses(session, now=later, days=30, limit=2) for _ in range(3)]
    assert done == [2, 1, 0]


def test_never_confirmed_letters_are_deleted_some_days_after_they_expire(
    session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session)
    gone = sign(session, appeal, settings, email="never@example.net", message="Mine")
    session.commit()
    signed_at = gone.created_at
    expiry = signed_at + timedelta(days=settings.confirmation_days, hours=1)
    assert delivery.expire_unconfirmed(session, now=expiry, days=settings.confirmation_days) == 1
    session.commit()
    before = figures(session, appeal)
    wait = settings.delete_unconfirmed_after_days
    assert privacy.delete_unconfirmed(session, now=expiry, days=wait) == 0
    assert (
        privacy.delete_unconfirmed(session, now=expiry + timedelta(days=wait + 1), days=wait) == 1
    )
    session.commit()

    gone = reload(session, gone)
    assert gone.status is LetterStatus.expired
    assert (gone.signer_name, gone.signer_email, gone.email_hash) == ("", None, None)
    assert (gone.signer_country, gone.signer_city, gone.message, gone.body) == ("", "", "", "")
    [mail] = gone.deliveries
    assert mail.recipients == []
    assert figures(session, appeal) == before  # still counted as expired
    # Nothing of the address is left, so its owner may sign afresh.
    again = sign(session, appeal, settings, email="never@example.net")
    assert again.status is LetterStatus.pending_confirmation


def test_the_sweeper_forgets_on_its_own_schedule(session: Session, settings: Settings) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, settings, email="ada@example.net")
    sign(
        session, make_appeal(session, slug="other"), settings, email="late@example.net"
    )  # never confirmed
    session.commit()
    drain(settings)
    future = utcnow() + timedelta(days=60)
    sessions = session_factory(engine_for(settings.database_url))
    deliverer = Deliverer(
        sessions,
        transports.make_transport(settings),
        settings,
        clock=lambda: future,
        upkeep=privacy.upkeep,
    )
    deliverer.sweep()  # expires the unconfirmed letter, then the privacy passes
    deliverer.sweep()  # the next sweep within the interval leaves them be
    session.expire_all()
    assert reload(session, letter).signer_email is None
    late = session.scalar(select(Letter).where(Letter.appeal_id != appeal.id))
    assert late is not None
    assert late.status is LetterStatus.expired
    # Expired only now (by the sweep's clock): deleted once its days have passed.
    assert late.erased_at is None
    assert late.signer_email is not None
    deliverer.clock = lambda: future + timedelta(days=settings.delete_unconfirmed_after_days + 1)
    deliverer._upkeep_due = 0.0  # the next sweep interval
    deliverer.sweep()
    assert reload(session, late).erased_at is not None


def test_a_letter_not_yet_sent_can_be_withdrawn(session: Session, settings: Settings) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, settings, email="ada@example.net", copy_to_me=True)
    session.commit()
    assert appeals.counts(session, [appeal.id])[appeal.id].signed == 1

    privacy.withdraw(session, letter=letter, now=utcnow())
    session.commit()
    assert letter.status is LetterStatus.withdrawn
    assert {d.status for d in letter.deliveries} == {DeliveryStatus.cancelled}
    drain(settings)
    assert not list(settings.outbox_dir.glob("*.eml"))  # nothing went anywhere
    assert appeals.counts(session, [appeal.id])[appeal.id].signed == 0
    assert figures(session, appeal)["stats"]["letters"]["withdrawn"] == 1  # type: ignore[index]
    privacy.withdraw(session, letter=letter, now=utcnow())  # twice: nothing more happens

    # Changed their mind again: they may sign anew; the withdrawn one keeps its count.
    again = sign(session, appeal, settings, email="ada@example.net")
    session.commit()
    assert again.status is LetterStatus.queued
    assert reload(session, letter).status is LetterStatus.withdrawn
    assert_tally_matches(session)


def test_a_held_or_unconfirmed_letter_can_be_withdrawn(
    session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session, moderation=True)
    pending = sign(session, appeal, settings, email="p@example.net")
    held = confirm(
        session, sign(session, appeal, settings, email="h@example.net", message="!"), settings
    )
    assert held.status is LetterStatus.held
    for letter in (pending, held):
        privacy.withdraw(session, letter=letter, now=utcnow())
        assert letter.status is LetterStatus.withdrawn
    session.commit()
    # The confirmation link of a withdrawn letter no longer confirms anything.
    from app.core.errors import InvalidConfirmation

    with pytest.raises(InvalidConfirmation):
        confirm(session, pending, settings)


def test_a_sent_letter_cannot_be_withdrawn_but_its_details_can_be_erased(
    session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(
        session, appeal, settings, email="ada@example.net", message="Free them!", copy_to_me=True
    )
    session.commit()
    drain(settings)
    before = figures(session, appeal)
    letter = reload(session, letter)
    with pytest.raises(NotWithdrawable):
        privacy.withdraw(session, letter=letter, now=utcnow())
    session.rollback()

    privacy.erase(session, letter=letter, now=utcnow())
    session.commit()
    letter = reload(session, letter)
    assert letter.status is LetterStatus.sent
    assert letter.erased_at is not None
    assert (letter.signer_name, letter.signer_email, letter.signer_city) == ("", None, "")
    assert (letter.message, letter.subject, letter.body) == ("", "", "")
    assert letter.signer_country == "GB"  # counted by country
    assert letter.email_hash is not None  # still one letter per address
    events = session.scalars(
        select(StatusEvent.detail)
        .join(Delivery, Delivery.id == StatusEvent.delivery_id)
        .where(Delivery.letter_id == letter.id, Delivery.channel == Channel.copy)
    ).all()
    assert events
    assert all(detail == "" for detail in events)
    assert figures(session, appeal) == before
    with pytest.raises(DuplicateSignature):
        sign(session, appeal, settings, email="ada@example.net")


def test_erasing_an_unsent_letter_withdraws_it(session: Session, settings: Settings) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, settings, email="ada@example.net")
    session.commit()
    privacy.erase(session, letter=letter, now=utcnow())
    session.commit()
    assert letter.status is LetterStatus.withdrawn
    assert letter.signer_name == ""
    drain(settings)
    assert not list(settings.outbox_dir.glob("*.eml"))
    assert_tally_matches(session)


def test_a_letter_being_sent_waits(session: Session, settings: Settings) -> None:
    """A worker holds the letter's e-mail right now: neither withdrawing nor erasing may
    pretend to stop it."""
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, settings, email="ada@example.net")
    session.commit()
    now = utcnow()
    email = next(d for d in letter.deliveries if d.channel is Channel.email)
    assert delivery.claim(session, [email], now=now, lease=timedelta(minutes=5))
    session.commit()
    for action in (privacy.withdraw, privacy.erase):
        with pytest.raises(LetterBusy):
            action(session, letter=letter, now=now)
        session.rollback()
    assert reload(session, letter).status is LetterStatus.queued
    # The fax, not yet handed out, was not cancelled either: all or nothing.
    statuses = {d.channel: d.status for d in reload(session, letter).deliveries}
    assert statuses[Channel.fax] is DeliveryStatus.queued


def test_the_supporter_s_own_e_mail_on_its_way_does_not_stop_a_withdrawal(
    session: Session, settings: Settings
) -> None:
    """Withdrawn a moment after signing, while the confirmation e-mail is being sent: it
    reaches no target, and its link then confirms nothing. Erasing still waits for it:
    its result, recorded after the erasure, would write the address back."""
    appeal = make_appeal(session)
    letter = sign(session, appeal, settings, email="ada@example.net")
    session.commit()
    now = utcnow()
    [confirmation] = letter.deliveries
    assert confirmation.channel is Channel.confirmation
    assert delivery.claim(session, [confirmation], now=now, lease=timedelta(minutes=5))
    session.commit()
    with pytest.raises(LetterBusy):
        privacy.erase(session, letter=letter, now=now)
    session.rollback()
    privacy.withdraw(session, letter=letter, now=now)
    session.commit()
    assert reload(session, letter).status is LetterStatus.withdrawn
    with pytest.raises(InvalidConfirmation):
        confirm(session, letter, settings)
    session.rollback()
    assert reload(session, letter).status is LetterStatus.withdrawn
    assert {d.channel for d in reload(session, letter).deliveries} == {Channel.confirmation}
    # Nor does a purge of the closed appeal scrub it while that e-mail is on its way.
    _closed(session, appeal)
    purged = privacy.purge_appeal(session, appeal=appeal, now=utcnow(), by="test")
    session.commit()
    assert (purged.erased, purged.unfinished) == (0, 1)
    assert reload(session, letter).signer_email == "ada@example.net"


def _closed(session: Session, appeal: Appeal) -> None:
    appeal.status = AppealStatus.closed
    session.commit()


def test_purge_anonymises_a_closed_appeal_and_keeps_its_stats(
    session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session, require_confirmation=False, moderation=True)
    sent = [
        sign(session, appeal, settings, email=f"s{n}@example.net", country=c)
        for n, c in enumerate(["GB", "KZ", "KZ"])
    ]
    held = sign(session, appeal, settings, email="held@example.net", message="Mine")
    withdrawn = sign(session, appeal, settings, email="w@example.net", message="Mine too")
    privacy.withdraw(session, letter=withdrawn, now=utcnow())
    session.commit()
    drain(settings)
    with pytest.raises(AppealNotClosed):
        privacy.purge_appeal(session, appeal=appeal, now=utcnow(), by="test")
    _closed(session, appeal)
    before = figures(session, appeal)
    preview = privacy.purge_preview(session, appeal=appeal, before=None)
    assert (preview.erased, preview.unfinished) == (4, 1)

    done = privacy.purge_appeal(session, appeal=appeal, now=utcnow(), by="test")
    session.commit()
    assert (done.erased, done.unfinished) == (4, 1)
    assert figures(session, appeal) == before
    for letter in (*sent, withdrawn):
        letter = reload(session, letter)
        assert (letter.signer_name, letter.signer_email, letter.email_hash) == ("", None, None)
        assert letter.body == ""
        assert letter.signer_country in ("GB", "KZ")
    assert reload(session, held).signer_name == "Ada Example"  # still waiting for a moderator
    assert privacy.purge_appeal(session, appeal=appeal, now=utcnow(), by="test").erased == 0


def test_purge_before_a_day(session: Session, settings: Settings) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    old = sign(session, appeal, settings, email="old@example.net")
    new = sign(session, appeal, settings, email="new@example.net")
    old.created_at = datetime(2020, 1, 1, tzinfo=old.created_at.tzinfo)
    session.commit()
    drain(settings)
    _closed(session, appeal)
    cutoff = datetime(2021, 1, 1, tzinfo=old.created_at.tzinfo)
    assert (
        privacy.purge_appeal(session, appeal=appeal, now=utcnow(), before=cutoff, by="test").erased
        == 1
    )
    session.commit()
    assert reload(session, old).erased_at is not None
    assert reload(session, new).erased_at is None
    assert session.scalar(select(func.count()).select_from(Letter)) == 2
