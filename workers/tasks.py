"""Thin tasks over the delivery service: they take ids, the Deliverer does the work."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass

from celery.signals import worker_process_shutdown

from app.core.config import get_settings
from app.core.db import engine_for, session_factory
from app.delivery import transports
from app.delivery.celery_app import celery_app
from app.delivery.deliverer import SWEEP_PAGE, Deliverer, Feed
from app.delivery.dispatch import SEND_TASK, SWEEP_TASK, batches
from app.letters import privacy

log = logging.getLogger(__name__)

# A sweep hands out at most this many pages, so one sweep task ends even if the
# database keeps finding more.
SWEEP_PAGES = 20


# How long a worker process, stopping, waits for the deliveries it has claimed to be sent
# and recorded; those still unfinished are left to the sweeper when their leases run out.
DRAIN_SECONDS = 60.0


@dataclass
class _Process:
    pid: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    deliverer: Deliverer
    feed: Feed


_state: _Process | None = None
# Celery's thread pool may run two tasks at once: one of them makes the process's state.
_making = threading.Lock()


def _process() -> _Process:
    """One event loop per worker process, made after the fork and run on a thread of its
    own, with one Feed in it: the SMTP connections stay open and busy from one task to
    the next, since a task returns once its deliveries are claimed, not sent."""
    global _state
    with _making:
        if _state is None or _state.pid != os.getpid() or not _state.thread.is_alive():
            _state = _start()
        return _state


def _start() -> _Process:
    settings = get_settings()
    sessions = session_factory(engine_for(settings.database_url))
    deliverer = Deliverer(
        sessions, transports.make_transport(settings), settings, upkeep=privacy.upkeep
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="outcry-send", daemon=True)
    thread.start()

    async def make_feed() -> Feed:
        return Feed(deliverer, senders=settings.send_concurrency)

    feed = asyncio.run_coroutine_threadsafe(make_feed(), loop).result()
    return _Process(os.getpid(), loop, thread, deliverer, feed)


@worker_process_shutdown.connect
def _drain(**_kwargs: object) -> None:
    """A worker process stopping sends and records what it has claimed, then says QUIT."""
    state = _state
    if state is None or state.pid != os.getpid() or not state.thread.is_alive():
        return

    async def stop() -> None:
        try:
            await state.feed.close(grace=DRAIN_SECONDS)
        finally:
            await state.deliverer.transport.close()

    try:
        # After the drain, close() still lets the messages on the wire finish (each
        # bounded by the transport's timeouts) and records them.
        asyncio.run_coroutine_threadsafe(stop(), state.loop).result(DRAIN_SECONDS + 90)
    except Exception:
        log.exception("stopping the delivery loop")
    state.loop.call_soon_threadsafe(state.loop.stop)


@celery_app.task(name=SEND_TASK, ignore_result=True)
def send(ids: list[int] | int) -> dict[str, int]:
    """Claim these deliveries (each not due or taken is skipped) and hand them to this
    process's connections; returns, with how many came to each result so far (`sending`:
    claimed, on their way), once each is claimed. The process sends and records them
    while it takes its next task; one that dies first leaves its claims to the sweeper."""
    state = _process()
    # One id: a task enqueued before tasks carried batches.
    batch = [ids] if isinstance(ids, int) else list(ids)
    taken = asyncio.run_coroutine_threadsafe(state.feed.take(batch), state.loop)
    # Bounded, so a loop that stopped answering cannot hold the task for ever: the
    # deliveries are in the outbox, and the sweeper hands them out again.
    outcomes = taken.result(state.deliverer.settings.lease_seconds)
    return dict(Counter(o.result for o in outcomes))


@celery_app.task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> int:
    """Expire unconfirmed letters and enqueue every delivery that is due or whose worker
    stopped; returns how many were enqueued."""
    deliverer = _process().deliverer
    total = 0
    for _ in range(SWEEP_PAGES):
        ids = deliverer.sweep(grace=deliverer.settings.sweep_interval)
        for batch in batches(ids, deliverer.settings.send_batch):
            send.delay(batch)
        total += len(ids)
        if len(ids) < SWEEP_PAGE:
            break
    if total:
        log.info("sweeper enqueued %d deliveries", total)
    return total
