"""Hand delivery ids to whoever sends them: Celery through Redis, or the embedded loop.

Only ids travel; the database stays the source of truth. An enqueue that fails
(Redis down) loses nothing: the sweeper finds every due delivery again.
"""

from __future__ import annotations

import logging
import threading
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


class Dispatcher(Protocol):
    def enqueue(self, ids: Sequence[int]) -> None: ...


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
