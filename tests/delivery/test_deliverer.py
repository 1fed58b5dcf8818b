"""Delivering letters to a real SMTP server that refuses, greylists and goes away."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.delivery import transports
from app.delivery.deliverer import Deliverer
from app.delivery.ratelimit import RedisRateLimiter
from app.main import create_app
from app.models import Channel, Delivery, Letter, StatusEvent
from tests.appeals.factories import appeal_data, make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import sign
from tests.support.smtp import Handler, SmtpSink, free_port

TARGET = "president@example.org"
COPIES = ["copies@example.org", "campaign@example.net"]


def sign_many(session: Session, settings: Settings, count: int, **appeal: object) -> list[Letter]:
    """`count` letters to an appeal that needs no confirmation: queued at once."""
    target = make_appeal(session, require_confirmation=False, **appeal)
    letters = [
        sign(session, target, settings, email=f"supporter{n}@example.net") for n in range(count)
    ]
    session.commit()
    return letters


def email_deliveries(session: Session) -> list[Delivery]:
    session.expire_all()
    return list(
        session.scalars(select(Delivery).where(Delivery.channel == Channel.email).order_by("id"))
    )


def outcomes_of(session: Session, delivery: Delivery) -> list[tuple[str, str]]:
    """(status, detail) of each attempt's outcome, in order."""
    events = session.scalars(
        select(StatusEvent)
        .where(StatusEvent.delivery_id == delivery.id, StatusEvent.from_status == "sending")
        .order_by(StatusEvent.id)
    )
    return [(e.to_status, e.detail) for e in events]


def every(n: int, reply: str) -> Callable[[list[str]], str | None]:
    """An on_data script: refuse every n-th message with `reply`."""
    counter = itertools.count(1)
    return lambda _rcpts: reply if next(counter) % n == 0 else None


def test_451_to_a_third_of_attempts_everything_arrives_exactly_once(
    session: Session, mail: Settings, handler: Handler, sink: SmtpSink
) -> None:
    handler.on_data = every(3, "451 4.3.0 Try again later")
    letters = sign_many(session, mail, 15)

    drain(mail)

    deliveries = email_deliveries(session)
    assert {d.status for d in deliveries} == {"sent"}
    assert sorted(sink.message_ids()) == sorted(d.message_id for d in deliveries)
    assert handler.attempts > len(letters)  # some were refused and tried again
    retried = [d for d in deliveries if d.attempts > 1]
    assert retried
    outcomes = outcomes_of(session, retried[0])
    assert outcomes[0] == ("retrying", "451 4.3.0 Try again later")
    assert outcomes[-1][0] == "sent"
    assert {letter.status for letter in session.scalars(select(Letter))} == {"sent"}


def test_550_fails_after_one_attempt_with_the_reply_in_the_status_json(
    session: Session, mail: Settings, handler: Handler
) -> None:
    handler.on_data = lambda _rcpts: "550 5.7.1 Message refused by policy"
    make_appeal(session, require_confirmation=False)
    session.commit()
    with TestClient(create_app(mail, deliver_in_process=False)) as client:
        created = client.post(
            "/api/v1/appeals/free-them/letters",
            json={"name": "Ada Example", "email": "ada@example.net", "country": "GB"},
        ).json()
        drain(mail)
        letter = client.get(str(created["status_url"]).removeprefix("http://testserver")).json()

    assert letter["status"] == "failed"
    [email] = [d for d in letter["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "failed"
    assert email["attempts"] == 1
    assert email["last_error"] == "550 5.7.1 Message refused by policy"
    assert [(h["outcome"], h["detail"]) for h in email["history"]] == [
        ("failed", "550 5.7.1 Message refused by policy")
    ]
    assert handler.attempts == 1


def test_gives_up_after_the_appeals_max_attempts(
    session: Session, mail: Settings, handler: Handler, sink: SmtpSink
) -> None:
    handler.on_data = lambda _rcpts: "451 4.7.1 Greylisted"
    sign_many(session, mail, 1, max_attempts=3)

    drain(mail)

    [delivery] = email_deliveries(session)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert [o for o, _ in outcomes_of(session, delivery)] == ["retrying", "retrying", "failed"]
    assert session.scalars(select(Letter.status)).one() == "failed"
    assert sink.messages == []


def test_target_refused_for_good_while_copies_accepted_fails_and_a_retry_goes_to_the_target_only(
    session: Session, mail: Settings, handler: Handler, sink: SmtpSink
) -> None:
    from app.delivery import service
    from app.models import utcnow

    handler.on_rcpt = lambda rcpt: "550 5.1.1 No such user" if rcpt == TARGET else None
    sign_many(session, mail, 1)

    drain(mail)

    [delivery] = email_deliveries(session)
    assert delivery.status == "failed"
    assert delivery.attempts == 1
    assert "550 5.1.1 No such user" in (delivery.last_error or "")
    assert sorted(delivery.accepted) == sorted(COPIES)
    [first] = sink.messages
    assert sorted(first.rcpt_tos) == sorted(COPIES)

    # The mailbox exists again; an organiser retries.
    handler.on_rcpt = lambda _rcpt: None
    service.retry(session, delivery, now=utcnow(), by="test")
    session.commit()
    drain(mail)

    assert email_deliveries(session)[0].status == "sent"
    second = sink.messages[1]
    assert second.rcpt_tos == [TARGET]  # the copies had it already
    assert second.message["Message-ID"] == first.message["Message-ID"]
    assert second.message["Cc"] is not None  # the same message, headers and all


def test_a_refused_copy_does_not_hold_the_letter_back(
    session: Session, mail: Settings, handler: Handler, sink: SmtpSink
) -> None:
    handler.on_rcpt = lambda rcpt: "550 5.1.1 Mailbox gone" if rcpt == COPIES[1] else None
    sign_many(session, mail, 1)

    drain(mail)

    [delivery] = email_deliveries(session)
    assert delivery.status == "sent"
    [received] = sink.messages
    assert TARGET in received.rcpt_tos
    [(status, detail)] = outcomes_of(session, delivery)
    assert status == "sent"
    assert f"{COPIES[1]}: 550 5.1.1 Mailbox gone" in detail


def test_a_greylisted_second_target_gets_the_retry_and_nobody_gets_it_twice(
    session: Session, mail: Settings, handler: Handler, sink: SmtpSink
) -> None:
    greylisted = {"minister@example.net"}

    def on_rcpt(rcpt: str) -> str | None:
        if rcpt in greylisted:
            greylisted.discard(rcpt)
            return "451 4.7.1 Greylisted, try again"
        return None

    handler.on_rcpt = on_rcpt
    targets = appeal_data()["targets"] + [
        {"name": "A. Minister", "email": "minister@example.net", "title": "Minister"}
    ]
    sign_many(session, mail, 1, targets=targets)

    drain(mail)

    [delivery] = email_deliveries(session)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    first, second = sink.messages
    assert sorted(first.rcpt_tos) == sorted([TARGET, *COPIES])
    assert second.rcpt_tos == ["minister@example.net"]
    assert Counter(r for m in sink.messages for r in m.rcpt_tos).most_common(1)[0][1] == 1


def test_a_server_that_is_down_is_retried_until_it_is_back(
    session: Session, db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(db_url, tmp_path, smtp_url=f"smtp://127.0.0.1:{port}")
    sign_many(session, settings, 2)

    drain(settings, rounds=1)

    deliveries = email_deliveries(session)
    assert {(d.status, d.attempts) for d in deliveries} == {("retrying", 1)}
    assert all("Connect" in (d.last_error or "") for d in deliveries)

    with SmtpSink(port=port) as sink:
        drain(settings)
    assert {d.status for d in email_deliveries(session)} == {"sent"}
    assert len(sink.messages) == 2


def test_over_the_domain_limit_waits_its_turn_uncounted_and_the_supporters_copies_do_not(
    session: Session, db_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    settings = make_settings(db_url, tmp_path, smtp_url=sink.url, rate_period_seconds=30)
    target = make_appeal(session, require_confirmation=False, rate_limit=2)
    for n in range(5):
        sign(session, target, settings, email=f"s{n}@example.net", copy_to_me=True)
    session.commit()

    drain(settings)

    to_target = [m for m in sink.messages if TARGET in m.rcpt_tos]
    copies = [m for m in sink.messages if m.rcpt_tos[0].endswith("@example.net")]
    assert len(to_target) == 2  # the limit: two a period to example.org
    assert len(copies) == 5  # the supporters' own copies are not limited
    waiting = [d for d in email_deliveries(session) if d.status == "queued"]
    assert len(waiting) == 3
    # Not attempted, not counted, no event: and each has its own turn, period/limit apart.
    assert {d.attempts for d in waiting} == {0}
    ids = [d.id for d in waiting]
    assert not session.scalars(select(StatusEvent).where(StatusEvent.delivery_id.in_(ids))).all()
    turns = sorted(d.next_attempt_at for d in waiting)
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(turns)] == pytest.approx(
        [15, 15], abs=0.5
    )
    first_sent = datetime.fromtimestamp(to_target[0].at, UTC)
    assert (turns[0] - first_sent).total_seconds() == pytest.approx(30, abs=2)


@pytest.mark.parametrize("share_email", [False, True])
def test_copy_to_me_is_a_message_of_its_own_and_the_target_never_sees_the_address(
    session: Session, mail: Settings, sink: SmtpSink, share_email: bool
) -> None:
    target = make_appeal(session, require_confirmation=False)
    sign(
        session,
        target,
        mail,
        email="ada@example.net",
        copy_to_me=True,
        share_email=share_email,
        message="Hands off the strike committee!",
    )
    session.commit()

    drain(mail)

    [letter] = [m for m in sink.messages if TARGET in m.rcpt_tos]
    [copy] = [m for m in sink.messages if m is not letter]
    assert sorted(letter.rcpt_tos) == sorted([TARGET, *COPIES])
    assert copy.rcpt_tos == ["ada@example.net"]
    assert copy.message["Message-ID"] != letter.message["Message-ID"]
    copy_text = copy.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hands off the strike committee!" in copy_text
    message = letter.message
    if share_email:
        assert message["Reply-To"].addresses[0].addr_spec == "ada@example.net"
        del message["Reply-To"]
    else:
        assert message["Reply-To"] is None
    # Nowhere else: not in From, To, Cc, the body or any other header.
    assert b"ada@example.net" not in message.as_bytes()


def test_without_an_answer_from_the_rate_limiter_nothing_is_sent(
    session: Session, mail: Settings, sink: SmtpSink
) -> None:
    sign_many(session, mail, 2)
    ids = [d.id for d in email_deliveries(session)]
    unreachable = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    deliverer = Deliverer(
        session_factory(engine_for(mail.database_url)),
        transports.make_transport(mail),
        mail,
        upkeep=None,
        limiter=RedisRateLimiter(unreachable),
    )

    outcomes = asyncio.run(deliverer.deliver_many(ids))

    assert [o.result for o in outcomes] == ["error", "error"]
    assert "rate limiter" in outcomes[0].detail
    assert sink.messages == []
    assert {(d.status, d.attempts) for d in email_deliveries(session)} == {("queued", 0)}
