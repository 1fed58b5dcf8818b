"""Thin tasks over the delivery service: they take ids, the Deliverer does the work."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from dataclasses import dataclass

from app.core.config import get_settings
from app.core.db import engine_for, session_factory
from app.delivery import transports
from app.delivery.celery_app import celery_app
from app.delivery.deliverer import SWEEP_PAGE, Deliverer
from app.delivery.dispatch import SEND_TASK, SWEEP_TASK, batches
from app.letters import privacy

log = logging.getLogger(__name__)

# A sweep hands out at most this many pages, so one sweep task ends even if the
# database keeps finding more.
SWEEP_PAGES = 20


@dataclass
class _Process:
    pid: int
    loop: asyncio.AbstractEventLoop
    deliverer: Deliverer


_state: _Process | None = None


def _process() -> _Process:
    """One event loop and one transport per worker process, made after the fork, so the
    SMTP connections stay open from one task to the next."""
    global _state
    if _state is None or _state.pid != os.getpid():
        settings = get_settings()
        sessions = session_factory(engine_for(settings.database_url))
        deliverer = Deliverer(
            sessions, transports.make_transport(settings), settings, upkeep=privacy.upkeep
        )
        _state = _Process(os.getpid(), asyncio.new_event_loop(), deliverer)
    return _state


@celery_app.task(name=SEND_TASK, ignore_result=True)
def send(ids: list[int] | int) -> dict[str, int]:
    """Claim, send and record these deliveries (each not due or taken is skipped); returns
    how many came to each result."""
    state = _process()
    # One id: a task enqueued before tasks carried batches.
    batch = [ids] if isinstance(ids, int) else list(ids)
    outcomes = state.loop.run_until_complete(state.deliverer.deliver_many(batch))
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
