"""Hand delivery ids to whoever sends them: Celery through Redis, or the embedded loop.

Only ids travel; the database stays the source of truth. An enqueue that fails
(Redis down) loses nothing: the sweeper finds every due delivery again.

A web process wraps its Celery dispatcher in Batching: a request drops its ids in a list
and returns, and one thread of the process sends what has gathered, many requests' ids a
task. Handing each signature to Celery itself cost the request a round trip to Redis and
about 3 ms of CPU, a quarter of all the request spent (issue 10).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Protocol

from celery import Celery

from app.delivery import broker

log = logging.getLogger(__name__)

SEND_TASK = "delivery.send"
SWEEP_TASK = "delivery.sweep"
SEND_QUEUE = "celery"  # Celery's default, so tasks sent before there were two still run
SWEEP_QUEUE = "sweep"
# How long Batching lets ids gather before it hands them over (see there).
LINGER_SECONDS = 0.02


class Dispatcher(Protocol):
    def enqueue(self, ids: Sequence[int]) -> None: ...


class BrokerDispatcher(Dispatcher, Protocol):
    def ping(self) -> bool: ...


class WakeUp:
    """For the embedded loop: wakes it so it sends at once instead of at its next poll."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def enqueue(self, ids: Sequence[int]) -> None:
        if ids:
            self.event.set()


def batches(ids: Sequence[int], size: int) -> list[list[int]]:
    """`ids` in lists of at most `size`, in order."""
    return [list(ids[start : start + size]) for start in range(0, len(ids), size)]


class CeleryDispatcher:
    """Sends `delivery.send` tasks by name (app/ never imports workers/), `batch` ids a task."""

    def __init__(self, broker_url: str, *, batch: int = 50):
        self.batch = batch
        self.client = Celery("outcry-client", broker=broker_url)
        self.client.conf.broker_connection_retry_on_startup = False
        self.client.conf.broker_connection_timeout = broker.CONNECT_SECONDS
        # No retries here: a request waits on none (see broker.py).
        self.client.conf.broker_transport_options = {
            "max_retries": 0,
            "socket_connect_timeout": broker.CONNECT_SECONDS,
            "socket_timeout": 2,
        }

    def enqueue(self, ids: Sequence[int]) -> None:
        for batch in batches(ids, self.batch):
            try:
                broker.call(partial(self._send, batch))
            except broker.RedisAway:
                # The sweeper re-enqueues due deliveries; a letter is never lost here.
                log.warning("could not enqueue %d deliveries; the sweeper will", len(batch))
                return

    def _send(self, batch: list[int]) -> None:
        self.client.send_task(SEND_TASK, args=[batch], queue=SEND_QUEUE, retry=False)

    def ping(self) -> bool:
        """True if the broker answers."""
        try:
            with self.client.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            return True
        except Exception:
            return False


class Batching:
    """Takes ids at once and hands them to `inner` from one background thread of its own,
    all that gathered while the previous hand-over ran in one call (which `inner` splits
    into tasks of its batch size).

    Nothing waits for a quiet moment: the thread hands over what gathered once `gather` ids
    have, or `linger` seconds after the first of them came, whichever is sooner (or, if a
    hand-over to Redis was still on its way then, as soon as it is back). A hand-over
    costs the process about 0.3 ms of CPU however few ids it carries: without the linger,
    a crowd of 300 signatures a second made 240 of them a second, a tenth of the web
    process's CPU (issue 10). With it, there are at most 1/`linger` hand-overs a second
    of less than a full batch, and a lone signature's confirmation e-mail is queued
    `linger` later, which nobody waiting for an e-mail can tell.

    Ids held here are not precious. Their deliveries were committed before they came, with
    no lease (lease_until NULL), and the sweeper hands out any such delivery older than its
    grace (delivery.service.due): a process that dies holding ids, or a hand-over that
    fails, delays those letters by a sweep and loses none. So a failure is logged and its
    ids dropped, never retried here, and the thread goes on with the next ones.
    """

    def __init__(
        self,
        inner: BrokerDispatcher,
        *,
        gather: int = 50,
        linger: float = LINGER_SECONDS,
        close_seconds: float = 30.0,
    ):
        self.inner = inner
        self.gather = gather
        self.linger = linger
        self.close_seconds = close_seconds
        self._changed = threading.Condition()
        self._waiting: list[int] = []
        self._first_came = 0.0  # time.monotonic() when the first of _waiting came
        self._thread: threading.Thread | None = None
        self._closed = False

    def enqueue(self, ids: Sequence[int]) -> None:
        """Queue `ids` for the sending thread (started here the first time); after close(),
        hand them over on the caller's thread instead, so none is ever left behind."""
        if not ids:
            return
        with self._changed:
            if not self._closed:
                if not self._waiting:
                    self._first_came = time.monotonic()
                self._waiting.extend(ids)
                # is_alive(): in a child forked after the thread started, it does not run.
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="outcry-dispatch", daemon=True
                    )
                    try:
                        self._thread.start()
                    except RuntimeError:
                        # No thread to be had (a thread limit, the interpreter stopping).
                        # The letter is committed: its 202 must not turn into a 500, so
                        # hand the ids over here, as after close().
                        log.warning("no dispatch thread; handing ids over inline")
                        self._thread = None
                        ids, self._waiting = self._waiting, []
                    else:
                        self._changed.notify()
                        return
                else:
                    # Waking the thread for every id would cost more than it saves: only
                    # the first (to start the linger) and a full batch's.
                    if len(self._waiting) == len(ids) or len(self._waiting) >= self.gather:
                        self._changed.notify()
                    return
        self.inner.enqueue(ids)

    @property
    def closed(self) -> bool:
        """True once close() has begun: enqueue() then hands ids over on the caller's
        thread, a call to Redis (core.db's session dependency reads this)."""
        return self._closed

    def close(self) -> None:
        """Hand over everything queued and stop the thread; later ids go over inline."""
        with self._changed:
            self._closed = True
            thread = self._thread
            self._changed.notify()
        if thread is not None:
            # Bounded: the inner dispatcher gives up on a Redis that does not answer.
            thread.join(self.close_seconds)
            if thread.is_alive():
                log.warning("the dispatch thread did not finish; the sweeper will send the rest")

    def ping(self) -> bool:
        """True if the broker answers."""
        return self.inner.ping()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                handover = self._first_came + self.linger
                while len(self._waiting) < self.gather and not self._closed:
                    left = handover - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
                ids, self._waiting = self._waiting, []
                if not ids:  # closed, and nothing left
                    return
            try:
                self.inner.enqueue(ids)
            except Exception:
                # CeleryDispatcher already turns a Redis failure into a warning; anything
                # else must not end the thread either. The sweeper sends these.
                log.exception("could not enqueue %d deliveries; the sweeper will", len(ids))
