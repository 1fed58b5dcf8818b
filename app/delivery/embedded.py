"""Delivery without a broker: the same claim/send loop, on a thread (EmbeddedLoop), and
for `outcry serve` in a process of its own beside the web processes (DeliveryProcess)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from app.delivery.deliverer import SWEEP_PAGE, Deliverer
from app.delivery.dispatch import WakeUp

log = logging.getLogger(__name__)


class EmbeddedLoop:
    """A thread with its own event loop that sweeps and sends until stopped."""

    def __init__(self, deliverer: Deliverer, wake: WakeUp, *, interval: float):
        self.deliverer = deliverer
        self.wake = wake
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outcry-delivery", daemon=True)
        # The round under way is cut short through these (set in the loop's own thread).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the messages on the wire: the claims not yet sent are given back, and
        every result is recorded (Feed.close)."""
        self._stop.set()
        self.wake.event.set()
        loop, halt = self._loop, self._halt
        if loop is not None and halt is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(halt.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._halt = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                self.wake.event.clear()
                try:
                    ids = await asyncio.to_thread(self.deliverer.sweep)
                    if ids and not self._stop.is_set():
                        await self.deliverer.deliver_many(ids, until=self._halt)
                    if len(ids) >= SWEEP_PAGE:
                        continue  # there may be more due than one sweep returns
                except Exception:
                    log.exception("embedded delivery loop")
                await asyncio.to_thread(self.wake.event.wait, self.interval)
        finally:
            await self.deliverer.transport.close()


# How long the delivery process has to finish its round and go when the server stops,
# and the pause before another is started in place of one that died.
STOP_SECONDS = 15.0
RESTART_PAUSE_SECONDS = 5.0


class DeliveryProcess:
    """The embedded loop in a process of its own, started and watched by `outcry serve`.

    Served, the web processes do not deliver: composing a message (and a letter's PDF)
    would hold the interpreter lock of a process that answers signers, and with
    `--workers N` there would be N loops taking turns at SQLite's write lock. One process
    delivers for all of them (the system runs it on another core where there is one),
    and finds what is due at each poll (OUTCRY_EMBEDDED_POLL_INTERVAL): a crowd's
    confirmations go in batches, not one round each. Measured on SQLite, 16 connections
    (BENCHMARKS.md, fourth pass): one web process 193 → 247 signatures/s, two 198 → 310.

    `target(parent_pid)` runs in a spawned process (app.main.deliver_beside_server): it
    stops on SIGTERM, and by itself once the process that started it is gone. One that
    dies is started again after RESTART_PAUSE_SECONDS.
    """

    def __init__(
        self, target: Callable[[int], None], *, restart_pause: float = RESTART_PAUSE_SECONDS
    ):
        self.target = target
        self.restart_pause = restart_pause
        self.process: BaseProcess | None = None
        self._context = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()
        self._watch = threading.Thread(
            target=self._supervise, name="outcry-delivery-watch", daemon=True
        )

    def start(self) -> None:
        self._spawn()
        self._watch.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop the process (SIGTERM, then SIGKILL after `timeout`); none is started again."""
        self._stopping.set()
        if self._watch.is_alive():
            self._watch.join()
        process = self.process
        if process is None or process.exitcode is not None:
            return
        process.terminate()
        process.join(timeout)
        if process.exitcode is None:
            log.error("delivery process %s did not stop within %s s; killed", process.pid, timeout)
            process.kill()
            process.join()

    def _spawn(self) -> None:
        process = self._context.Process(
            target=self.target, args=(os.getpid(),), name="outcry-delivery"
        )
        process.start()
        self.process = process
        log.info("delivery process %s started", process.pid)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            process = self.process
            if process is None:
                return
            process.join(0.5)
            if process.exitcode is None or self._stopping.is_set():
                continue
            # 0: it was stopped (SIGTERM to it alone, or to the whole group as the server
            # stops, when stop() comes next); -SIGTERM: the same, come while it was still
            # starting, before its handler was in place (seen when a test stopped a
            # server a moment after it started); anything else: it died.
            stopped = process.exitcode in (0, -signal.SIGTERM)
            report = log.info if stopped else log.error
            report(
                "delivery process %s exited with %s; another starts in %s s",
                process.pid,
                process.exitcode,
                self.restart_pause,
            )
            if not self._stopping.wait(self.restart_pause):
                self._spawn()
