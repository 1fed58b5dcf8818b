"""The outbox's state machine: claims, leases, the sweeper's hand-out, results, letters."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory, session_scope
from app.delivery import service
from app.delivery.deliverer import judge
from app.delivery.service import Attempt
from app.delivery.transports import PartlyRefused, PermanentError, TransientError
from app.models import Channel, Delivery, DeliveryStatus, Letter, StatusEvent, utcnow
from tests.appeals.factories import make_appeal
from tests.conftest import _truncate
from tests.delivery.factories import outbox
from tests.letters.factories import sign

LEASE = timedelta(seconds=60)
# One target with an e-mail address and no fax: one delivery a letter.
EMAIL_ONLY = [{"name": "A. President", "title": "President", "email": "president@example.org"}]
RETRY = {"retry_base": 1.0, "retry_cap": 10.0}


def queued(
    session: Session, settings: Settings, count: int = 1, **appeal: object
) -> list[Delivery]:
    """`count` letters queued for delivery; their target deliveries, as a worker loads them."""
    target = make_appeal(session, require_confirmation=False, targets=EMAIL_ONLY, **appeal)
    for n in range(count):
        sign(session, target, settings, email=f"s{n}@example.net")
    session.commit()
    return reload(session)


def reload(session: Session) -> list[Delivery]:
    session.expire_all()
    return list(
        session.scalars(select(Delivery).where(Delivery.channel == Channel.email).order_by("id"))
    )


def events(session: Session, delivery: Delivery) -> list[tuple[str, str, str]]:
    rows = session.scalars(
        select(StatusEvent).where(StatusEvent.delivery_id == delivery.id).order_by(StatusEvent.id)
    )
    return [(e.from_status, e.to_status, e.detail) for e in rows]


def test_a_delivery_is_claimed_once(session: Session, settings: Settings) -> None:
    [delivery] = queued(session, settings)
    now = utcnow()

    assert service.claim(session, [delivery], now=now, lease=LEASE) == {delivery.id: 1}
    # A second worker with the same (now stale) view of the row gets nothing.
    assert service.claim(session, [delivery], now=now, lease=LEASE) == {}

    [claimed] = reload(session)
    assert (claimed.status, claimed.attempts) == ("sending", 1)
    assert claimed.lease_until == now + LEASE
    assert events(session, claimed) == [("queued", "sending", "attempt 1")]


def test_a_delivery_not_yet_due_is_not_claimed(session: Session, settings: Settings) -> None:
    [delivery] = queued(session, settings)
    earlier = delivery.next_attempt_at - timedelta(seconds=1)

    assert service.claimable(session, [delivery.id], now=earlier) == []
    assert service.claim(session, [delivery], now=earlier, lease=LEASE) == {}


def test_a_result_counts_only_while_its_claim_holds(session: Session, settings: Settings) -> None:
    [delivery] = queued(session, settings)
    start = utcnow()
    service.claim(session, [delivery], now=start, lease=LEASE)

    # The worker hangs past its lease: the sweeper logs the attempt as interrupted and
    # hands the delivery out again; another worker takes it.
    later = start + LEASE + timedelta(seconds=1)
    assert service.hand_out(session, now=later, lease=LEASE) == [delivery.id]
    [delivery] = reload(session)
    assert delivery.status == "retrying"
    assert service.claim(session, [delivery], now=later, lease=LEASE) == {delivery.id: 2}

    # The first worker wakes up with its result: too late, it changes nothing.
    stale = Attempt(delivery.id, delivery.letter_id, attempt=1, max_attempts=8, reply="250 late")
    assert service.record(session, [stale], now=later, **RETRY) == {}
    fresh = Attempt(
        delivery.id, delivery.letter_id, attempt=2, max_attempts=8, reply="250 2.0.0 Ok"
    )
    assert service.record(session, [fresh], now=later, **RETRY) == {delivery.id: "sent"}

    [delivery] = reload(session)
    assert [(a, b) for a, b, _ in events(session, delivery)] == [
        ("queued", "sending"),
        ("sending", "retrying"),
        ("retrying", "sending"),
        ("sending", "sent"),
    ]
    assert "interrupted" in events(session, delivery)[1][2]
    assert session.scalars(select(Letter.status)).one() == "sent"


def test_an_interrupted_last_attempt_fails_the_letter(session: Session, settings: Settings) -> None:
    [delivery] = queued(session, settings, max_attempts=1)
    start = utcnow()
    service.claim(session, [delivery], now=start, lease=LEASE)

    later = start + LEASE + timedelta(seconds=1)
    assert service.hand_out(session, now=later, lease=LEASE) == []

    [delivery] = reload(session)
    assert delivery.status == "failed"
    assert "no attempts left" in events(session, delivery)[-1][2]
    assert session.scalars(select(Letter.status)).one() == "failed"


def test_the_sweeper_leaves_alone_what_the_broker_or_a_worker_holds(
    session: Session, settings: Settings
) -> None:
    deliveries = queued(session, settings, count=2)
    ids = [d.id for d in deliveries]
    t0 = max(d.next_attempt_at for d in deliveries)

    def hand_out(seconds: float) -> list[int]:
        now = t0 + timedelta(seconds=seconds)
        return sorted(service.hand_out(session, now=now, lease=LEASE, grace=30))

    # Enqueued when the letters were committed: their ids are on their way.
    assert hand_out(10) == []
    # Not claimed within the grace: the enqueue was lost; hand them out again...
    assert hand_out(31) == ids
    # ...and leave them to the broker for a lease...
    assert hand_out(60) == []
    # ...after which the broker has lost them too.
    assert hand_out(92) == ids
    [first, _] = reload(session)
    service.claim(session, [first], now=t0 + timedelta(seconds=92), lease=LEASE)
    assert hand_out(150) == []
    assert hand_out(153) == ids  # the worker stopped too


def test_a_deferred_delivery_keeps_its_state_and_comes_back_at_its_turn(
    session: Session, settings: Settings
) -> None:
    [delivery] = queued(session, settings)
    turn = utcnow() + timedelta(minutes=5)

    service.defer(session, {delivery.id: turn})

    [deferred] = reload(session)
    assert (deferred.status, deferred.attempts, deferred.next_attempt_at) == ("queued", 0, turn)
    assert events(session, deferred) == []
    assert service.hand_out(session, now=turn - timedelta(seconds=1), lease=LEASE) == []
    # Due at its turn exactly: no grace, nothing else will enqueue it.
    assert service.hand_out(session, now=turn, lease=LEASE, grace=30) == [delivery.id]


def test_a_claimed_delivery_is_not_deferred(session: Session, settings: Settings) -> None:
    [delivery] = queued(session, settings)
    now = utcnow()
    service.claim(session, [delivery], now=now, lease=LEASE)

    service.defer(session, {delivery.id: now + timedelta(minutes=5)})

    [claimed] = reload(session)
    assert (claimed.status, claimed.lease_until) == ("sending", now + LEASE)


def test_a_transient_failure_is_retried_at_its_backoff_without_grace(
    session: Session, settings: Settings
) -> None:
    [delivery] = queued(session, settings)
    now = utcnow()
    service.claim(session, [delivery], now=now, lease=LEASE)
    failure = Attempt(delivery.id, delivery.letter_id, 1, 8, reply="451 4.3.0 Later", failed=True)

    assert service.record(session, [failure], now=now, **RETRY) == {delivery.id: "retrying"}

    [delivery] = reload(session)
    assert delivery.last_error == "451 4.3.0 Later"
    assert now + timedelta(seconds=0.5) <= delivery.next_attempt_at <= now + timedelta(seconds=1.5)
    assert service.hand_out(session, now=delivery.next_attempt_at, lease=LEASE, grace=30) == [
        delivery.id
    ]


def test_the_supporters_copy_does_not_decide_the_letter(
    session: Session, settings: Settings
) -> None:
    target = make_appeal(session, require_confirmation=False, targets=EMAIL_ONLY)
    sign(session, target, settings, copy_to_me=True)
    session.commit()
    email, copy = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert (email.channel, copy.channel) == ("email", "copy")
    now = utcnow()
    service.claim(session, [email, copy], now=now, lease=LEASE)

    service.record(
        session,
        [
            Attempt(
                copy.id, copy.letter_id, 1, 8, reply="550 no such", failed=True, permanent=True
            ),
            Attempt(email.id, email.letter_id, 1, 8, reply="250 Ok"),
        ],
        now=now,
        **RETRY,
    )

    assert session.scalars(select(Letter.status)).one() == "sent"


def test_two_workers_claiming_one_batch_never_wait_for_each_other(
    pg_url: str, tmp_path: Path
) -> None:
    _truncate(pg_url)
    sessions = session_factory(engine_for(pg_url))
    with session_scope(sessions) as session:
        ids = outbox(session, make_appeal(session), count=10)
    now = utcnow() + timedelta(seconds=1)
    first, second = sessions(), sessions()
    try:
        # A regression to waiting on the first worker's locks fails here, not hangs.
        second.execute(text("SET lock_timeout = '2s'"))
        mine = service.claimable(first, ids, now=now)
        theirs = service.claimable(second, ids, now=now)

        won_first = service.claim(first, mine[:6], now=now, lease=LEASE)  # not committed yet
        won_second = service.claim(second, theirs, now=now, lease=LEASE)

        assert sorted(won_first) == ids[:6]
        assert sorted(won_second) == ids[6:]
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()


def test_letters_never_confirmed_expire(session: Session, settings: Settings) -> None:
    target = make_appeal(session)  # confirmation required
    sign(session, target, settings)
    session.commit()

    later = utcnow() + timedelta(days=8)
    assert service.expire_unconfirmed(session, now=later, days=7) == 1

    letter = session.scalars(select(Letter)).one()
    session.refresh(letter)
    assert letter.status == "expired"


# --- what a send's failure means (pure) ----------------------------------------------------


def _delivery(accepted: list[str] | None = None) -> Delivery:
    return Delivery(
        id=7,
        letter_id=3,
        recipients=["t1@gov.example", "t2@gov.example"],
        cc=["copies@union.example"],
        accepted=accepted or [],
        max_attempts=8,
    )


def test_judge_only_copies_refused_means_delivered() -> None:
    error = PartlyRefused(
        "250 Ok", {"copies@union.example": (550, "gone")}, ["t1@gov.example", "t2@gov.example"]
    )
    result = judge(_delivery(), 1, error)
    assert not result.failed


def test_judge_a_target_greylisted_is_retried_and_remembers_who_has_it() -> None:
    error = PartlyRefused(
        "250 Ok",
        {"t2@gov.example": (451, "greylisted")},
        ["t1@gov.example", "copies@union.example"],
    )
    result = judge(_delivery(), 1, error)
    assert (result.failed, result.permanent) == (True, False)
    assert result.accepted == ("t1@gov.example", "copies@union.example")


def test_judge_targets_refused_for_good_fail_even_if_a_copy_was_only_delayed() -> None:
    refused = {
        "t1@gov.example": (550, "no such user"),
        "t2@gov.example": (553, "rejected"),
        "copies@union.example": (451, "later"),
    }
    result = judge(_delivery(), 1, TransientError("all refused", refused=refused))
    assert (result.failed, result.permanent, result.accepted) == (True, True, None)


def test_judge_earlier_acceptances_count() -> None:
    error = PermanentError("550 no", refused={"t2@gov.example": (550, "no")})
    result = judge(_delivery(accepted=["t1@gov.example"]), 2, error)
    assert (result.failed, result.permanent) == (True, True)


def test_judge_a_whole_message_error_keeps_its_kind() -> None:
    assert judge(_delivery(), 1, TransientError("Connection refused")).permanent is False
    assert judge(_delivery(), 1, PermanentError("554 policy")).permanent is True


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(4)
    delays = [service.backoff(n, base=600, cap=8 * 3600, rng=rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        nominal = min(8 * 3600, 600 * 2 ** (n - 1))
        assert 0.5 * nominal <= delay <= 1.5 * nominal
    # Eight attempts with the defaults span most of a day.
    assert timedelta(hours=8) < timedelta(seconds=sum(delays[:7])) < timedelta(hours=60)


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "retrying"])
def test_only_a_failed_delivery_can_be_retried(
    session: Session, settings: Settings, status: str
) -> None:
    from app.core.errors import DeliveryNotFailed

    [delivery] = queued(session, settings)
    delivery.status = DeliveryStatus(status)
    session.commit()
    with pytest.raises(DeliveryNotFailed):
        service.retry(session, delivery, now=utcnow(), by="test")
