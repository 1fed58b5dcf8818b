"""A Redis that is away costs a request nothing: asked once, then left alone a while."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.delivery import broker
from app.main import create_app
from app.models import Channel, Delivery, DeliveryStatus
from tests.appeals.factories import make_appeal
from tests.conftest import make_settings
from tests.letters.factories import signature
from tests.support.private import private_redis


def test_after_a_failure_redis_is_not_asked_again_for_a_while() -> None:
    calls: list[str] = []

    def away() -> None:
        calls.append("asked")
        raise redis.ConnectionError("refused")

    with pytest.raises(broker.RedisAway):
        broker.call(away)
    with pytest.raises(broker.RedisAway):
        broker.call(away)
    assert calls == ["asked"]
    broker.reset()
    assert broker.call(lambda: "back") == "back"


def test_signing_goes_on_while_redis_is_away(session: Session, db_url: str, tmp_path: Path) -> None:
    make_appeal(session)
    session.commit()
    with private_redis() as server:
        settings = make_settings(db_url, tmp_path, broker_url=server.url)
        app = create_app(settings, deliver_in_process=False)
        with TestClient(app) as client:
            server.stop()
            for n in range(3):
                body = signature(email=f"r{n}@example.net")
                response = client.post("/api/v1/appeals/free-them/letters", json=body)
                assert response.status_code == 202, response.text
    # Kept in the outbox for the sweeper to hand out once Redis is back.
    waiting = session.scalars(
        select(Delivery).where(Delivery.channel == Channel.confirmation)
    ).all()
    assert len(waiting) == 3
    assert {d.status for d in waiting} == {DeliveryStatus.queued}


def test_redis_is_asked_again_once_the_pause_is_over() -> None:
    now = [100.0]
    breaker = broker._Breaker(clock=lambda: now[0])
    calls: list[str] = []

    def away() -> None:
        calls.append("asked")
        raise redis.ConnectionError("refused")

    with pytest.raises(broker.RedisAway):
        breaker.call(away)
    now[0] += broker.RETRY_SECONDS - 1
    with pytest.raises(broker.RedisAway):
        breaker.call(away)
    assert calls == ["asked"]
    now[0] += 2
    assert breaker.call(lambda: "back") == "back"


def test_calls_to_redis_do_not_wait_for_each_other() -> None:
    # Two requests' Redis calls run side by side: each waits for the other to be inside
    # the call too, which a breaker holding a lock around the call would never allow.
    both_inside = threading.Barrier(2, timeout=30)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: broker.call(both_inside.wait), range(2)))
    assert sorted(answers) == [0, 1]
