"""Delivery under crashes and outages: real `outcry worker` processes, Redis, PostgreSQL, SMTP.

Thousands of confirmed letters are written straight into the outbox and enqueued as
the web app would; the workers deliver them to an aiosmtpd sink, and the sink's
Message-IDs say what arrived and how often.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from app.core.db import engine_for, session_factory, session_scope
from app.delivery.dispatch import CeleryDispatcher
from app.models import Delivery, Letter
from tests.appeals.factories import make_appeal
from tests.conftest import _truncate
from tests.delivery.factories import outbox
from tests.support.processes import outcry, outcry_env, stop, wait_until
from tests.support.smtp import Handler, SmtpSink

pytestmark = pytest.mark.e2e

LETTERS = 2000


def counts(url: str, column: InstrumentedAttribute[Any]) -> dict[str, int]:
    with session_scope(session_factory(engine_for(url))) as session:
        rows = session.execute(select(column, func.count()).group_by(column)).all()
    return {str(status): n for status, n in rows}


def message_ids(url: str) -> set[str]:
    with session_scope(session_factory(engine_for(url))) as session:
        return set(session.scalars(select(Delivery.message_id)))


@pytest.fixture
def deliveries(pg_url: str, redis_url: str) -> list[int]:
    """LETTERS confirmed letters in the outbox, their ids enqueued as the web app would."""
    _truncate(pg_url)
    with session_scope(session_factory(engine_for(pg_url))) as session:
        appeal = make_appeal(session, rate_limit=100_000)
        ids = outbox(session, appeal, count=LETTERS)
    CeleryDispatcher(redis_url, batch=50).enqueue(ids)
    return ids


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def worker_env(pg_url: str, redis_url: str, sink: SmtpSink, **more: str) -> dict[str, str]:
    values = {
        "database_url": pg_url,
        "broker_url": redis_url,
        "smtp_url": sink.url,
        "secret_key": "e2e-secret",
        "sweep_interval": "1",
        "lease_seconds": "5",
    }
    values.update(more)
    return outcry_env(**values)


def start_worker(env: dict[str, str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
    """`outcry worker` with two processes and the sweeper (beat) in it."""
    return outcry(
        "worker", "--concurrency", "2", "--beat", env=env, cwd=cwd, log=cwd / f"{name}.log"
    )


def all_sent(url: str) -> bool:
    return counts(url, Delivery.status) == {"sent": LETTERS}


def test_sigkill_half_way_loses_nothing_and_duplicates_at_most_what_was_in_flight(
    deliveries: list[int], pg_url: str, redis_url: str, sink: SmtpSink, tmp_path: Path
) -> None:
    env = worker_env(pg_url, redis_url, sink)
    first = start_worker(env, tmp_path, "first")
    try:
        wait_until(lambda: len(sink.messages) >= LETTERS // 2, timeout=60)
    finally:
        # The whole process group: the Celery main process, its pool and beat.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    time.sleep(0.5)  # let the sink finish with connections the kill cut
    arrived_before_restart = len(sink.messages)
    in_flight = counts(pg_url, Delivery.status).get("sending", 0)
    assert arrived_before_restart < LETTERS, "the kill came too late to test anything"

    second = start_worker(env, tmp_path, "second")
    try:
        wait_until(lambda: all_sent(pg_url), timeout=75, interval=0.5)
    finally:
        stop(second)

    received = sink.message_ids()
    assert set(received) == message_ids(pg_url)
    duplicates = len(received) - len(set(received))
    # Shown with -s: what the kill left behind.
    print(f"\nbefore the kill {arrived_before_restart}, in flight {in_flight}, dup {duplicates}")
    assert duplicates <= in_flight, f"{duplicates} duplicates, {in_flight} in flight at the kill"
    assert counts(pg_url, Letter.status) == {"sent": LETTERS}


def test_redis_flushed_half_way_the_sweeper_delivers_everything(
    deliveries: list[int], pg_url: str, redis_url: str, sink: SmtpSink, tmp_path: Path
) -> None:
    # A longer lease than the send of one batch can take here, so nothing is handed out
    # twice while a worker still holds it: no duplicates expected at all.
    env = worker_env(pg_url, redis_url, sink, lease_seconds="15")
    proc = start_worker(env, tmp_path, "worker")
    try:
        wait_until(lambda: len(sink.messages) >= LETTERS // 4, timeout=60)
        broker = redis.Redis.from_url(redis_url)
        assert broker.llen("celery") > 0, "nothing was left in the queue to lose"
        broker.flushdb()
        broker.close()
        assert len(sink.messages) < LETTERS
        wait_until(lambda: all_sent(pg_url), timeout=75, interval=0.5)
    finally:
        stop(proc)

    received = sink.message_ids()
    assert sorted(received) == sorted(message_ids(pg_url))
    assert counts(pg_url, Letter.status) == {"sent": LETTERS}


def test_a_worker_stopped_warmly_sends_and_records_what_it_had_claimed(
    deliveries: list[int], pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    # A task returns once its letters are claimed, and the process sends them while it
    # takes the next: a process told to stop must still send and record those.
    handler = Handler(on_data=slowly)
    with SmtpSink(handler) as sink:
        env = worker_env(pg_url, redis_url, sink, lease_seconds="120")
        proc = outcry("worker", "--concurrency", "1", env=env, cwd=tmp_path, log=tmp_path / "w.log")
        try:
            wait_until(lambda: len(sink.messages) >= 20, timeout=60)
            claimed = counts(pg_url, Delivery.status).get("sending", 0)
            proc.send_signal(signal.SIGTERM)  # the Celery main process only: a warm shutdown
            proc.wait(90)
        finally:
            stop(proc)
        received = sink.message_ids()

    assert claimed > 0, "nothing was claimed and unsent when the worker was told to stop"
    after = counts(pg_url, Delivery.status)
    assert "sending" not in after, after
    assert 0 < after["sent"] < LETTERS
    assert len(received) == len(set(received)) == after["sent"]
    assert set(received) == sent_message_ids(pg_url)


def slowly(_rcpts: list[str]) -> None:
    """A slow relay (the sink takes one message at a time, ten a second): the letters a
    process has claimed take seconds to send, longer than a pool process lingers after it
    is told to stop (billiard waits a second before it exits)."""
    time.sleep(0.1)


def sent_message_ids(url: str) -> set[str]:
    with session_scope(session_factory(engine_for(url))) as session:
        return set(session.scalars(select(Delivery.message_id).where(Delivery.status == "sent")))


def test_domain_rate_limit_holds_across_two_worker_processes(
    pg_url: str, redis_url: str, sink: SmtpSink, tmp_path: Path
) -> None:
    """Five messages per two-second window to one target, whichever worker sends them."""
    limit, period, letters = 5, 2.0, 30
    _truncate(pg_url)
    # Sweeps every 3 s, so the letters' own tasks (not a sweep that finds them all at
    # once) reach both workers first.
    env = worker_env(pg_url, redis_url, sink, rate_period_seconds=str(period), sweep_interval="3")
    workers = [
        outcry("worker", "--concurrency", "1", *extra, env=env, cwd=tmp_path, log=log)
        for extra, log in (
            (("--beat",), tmp_path / "a.log"),
            ((), tmp_path / "b.log"),
        )
    ]
    try:
        for log in ("a.log", "b.log"):
            wait_until(lambda log=log: "ready." in (tmp_path / log).read_text(), timeout=30)
        with session_scope(session_factory(engine_for(pg_url))) as session:
            appeal = make_appeal(session, rate_limit=limit)
            ids = outbox(session, appeal, count=letters)
        # One id a task, as letters signed one by one are: both workers take some.
        CeleryDispatcher(redis_url, batch=1).enqueue(ids)
        wait_until(lambda: counts(pg_url, Delivery.status) == {"sent": letters}, timeout=75)
    finally:
        for proc in workers:
            stop(proc)

    times = sorted(received.at for received in sink.messages)
    assert len(times) == letters
    # limit + 1 messages never arrive within one window. Some slack: a slot is taken just
    # before the delivery is claimed and sent, and the sink notes it when it has arrived;
    # on a busy machine that can be a few hundred milliseconds. Were the limit not shared,
    # each worker would send its own five at once: ten within a fraction of a second.
    slack = 0.6
    for first, last in zip(times, times[limit:], strict=False):
        assert last - first >= period - slack, f"{limit + 1} messages in {last - first:.2f} s"
    assert times[-1] - times[0] >= (letters // limit - 1) * period - slack
    # Waiting for the limit is not an attempt: each delivery went out at its first.
    with session_scope(session_factory(engine_for(pg_url))) as session:
        assert set(session.scalars(select(Delivery.attempts))) == {1}
    # A task returns once its deliveries are claimed (`sending`), and is logged so.
    for log in ("a.log", "b.log"):
        assert re.search(r"'sending': \d", (tmp_path / log).read_text()), f"{log}: nothing sent"
