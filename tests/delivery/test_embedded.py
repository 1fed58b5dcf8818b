"""The embedded loop's own process beside `outcry serve`: started, restarted, stopped."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.delivery import transports
from app.delivery.deliverer import Deliverer
from app.delivery.dispatch import WakeUp
from app.delivery.embedded import DeliveryProcess, EmbeddedLoop
from app.models import Delivery
from tests.appeals.factories import make_appeal
from tests.conftest import make_settings
from tests.letters.factories import sign
from tests.support.processes import deaf, idle, wait_until
from tests.support.smtp import Handler, SmtpSink

WAIT = 30


def running(delivery: DeliveryProcess) -> tuple[BaseProcess, int]:
    """The delivery's process, alive, and its pid."""
    process = delivery.process
    assert process is not None
    assert process.is_alive()
    assert process.pid is not None
    return process, process.pid


def ignores_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_a_delivery_process_that_dies_is_started_again() -> None:
    delivery = DeliveryProcess(idle, restart_pause=0.05)
    delivery.start()
    try:
        first, pid = running(delivery)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: delivery.process is not first)
        second, _ = running(delivery)
        assert first.exitcode == -signal.SIGKILL
    finally:
        delivery.stop()
    assert second.exitcode == -signal.SIGTERM
    # Stopped for good: none is started in its place.
    assert delivery.process is second
    assert not delivery._watch.is_alive()


def test_a_sigterm_is_a_stop_not_a_death(caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM to the whole process group (systemd, Ctrl-C's sibling) may reach the
    delivery process before its handler is in place; it then ends by the signal, which is
    still a stop: logged as one, not as an error. It is started again all the same."""
    delivery = DeliveryProcess(idle, restart_pause=0.05)
    delivery.start()
    try:
        for signum, level in ((signal.SIGTERM, logging.INFO), (signal.SIGKILL, logging.ERROR)):
            caplog.clear()
            process, pid = running(delivery)
            with caplog.at_level(logging.INFO, logger="app.delivery.embedded"):
                os.kill(pid, signum)
                wait_until(lambda p=process: delivery.process is not p)
            assert process.exitcode == -signum
            [exited] = [r for r in caplog.records if "exited with" in r.getMessage()]
            assert exited.levelno == level
    finally:
        delivery.stop()


def test_one_that_will_not_stop_is_killed() -> None:
    delivery = DeliveryProcess(deaf, restart_pause=0.05)
    delivery.start()
    process, pid = running(delivery)
    wait_until(lambda: ignores_sigterm(pid))
    delivery.stop(timeout=0.5)
    assert process.exitcode == -signal.SIGKILL


def test_stopping_mid_round_sends_what_is_on_the_wire_and_gives_back_the_rest(
    session: Session, db_url: str, tmp_path: Path
) -> None:
    """A stop does not wait for the round (up to a sweep's page of letters): the message
    on the wire goes and is recorded; the claims behind it wait again, no attempt spent."""
    on_the_wire, go_on = threading.Event(), threading.Event()

    def hold(_rcpts: list[str]) -> None:
        on_the_wire.set()
        go_on.wait(WAIT)

    with SmtpSink(Handler(on_data=hold)) as sink:
        settings = make_settings(db_url, tmp_path, smtp_url=sink.url, send_concurrency=1)
        appeal = make_appeal(session)
        for n in range(30):
            sign(session, appeal, settings, email=f"supporter{n}@example.net")
        session.commit()
        sessions = session_factory(engine_for(settings.database_url))
        deliverer = Deliverer(sessions, transports.make_transport(settings), settings, upkeep=None)
        loop = EmbeddedLoop(deliverer, WakeUp(), interval=60)
        loop.start()
        assert on_the_wire.wait(WAIT)
        with ThreadPoolExecutor(1) as pool:
            stopping = pool.submit(loop.stop, WAIT)
            # The claims not on the wire are given back before the one on it is done.
            wait_until(lambda: statuses(settings)["sending"] == 1)
            go_on.set()
            stopping.result(WAIT)
        assert not loop._thread.is_alive()
    assert len(sink.messages) == 1
    assert statuses(settings) == {"sent": 1, "queued": 29}
    with sessions() as check:
        attempts = check.scalars(select(Delivery.attempts).where(Delivery.status == "queued"))
        assert set(attempts) == {0}


def statuses(settings: Settings) -> Counter[str]:
    with session_factory(engine_for(settings.database_url))() as check:
        return Counter(str(s) for s in check.scalars(select(Delivery.status)))
