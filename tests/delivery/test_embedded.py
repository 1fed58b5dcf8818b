"""The embedded loop's own process beside `outcry serve`: started, restarted, stopped."""

from __future__ import annotations

import os
import signal
from multiprocessing.process import BaseProcess
from pathlib import Path

from app.delivery.embedded import DeliveryProcess
from tests.support.processes import deaf, idle, wait_until


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


def test_one_that_will_not_stop_is_killed() -> None:
    delivery = DeliveryProcess(deaf, restart_pause=0.05)
    delivery.start()
    process, pid = running(delivery)
    wait_until(lambda: ignores_sigterm(pid))
    delivery.stop(timeout=0.5)
    assert process.exitcode == -signal.SIGKILL
