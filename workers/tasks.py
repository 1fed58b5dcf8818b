"""Thin tasks over app.delivery.service: they take ids, the service does the work."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from app.core.config import get_settings
from app.core.db import engine_for, session_factory
from app.delivery import transports
from app.delivery.dispatch import SEND_TASK, SWEEP_TASK
from app.delivery.service import Deliverer
from workers.celery_app import celery_app

log = logging.getLogger(__name__)


@dataclass
class _Process:
    pid: int
    loop: asyncio.AbstractEventLoop
    deliverer: Deliverer


_state: _Process | None = None


def _process() -> _Process:
    """One event loop and one transport per worker process, made after the fork, so the
    SMTP connection stays open from one task to the next."""
    global _state
    if _state is None or _state.pid != os.getpid():
        settings = get_settings()
        sessions = session_factory(engine_for(settings.database_url))
        deliverer = Deliverer(sessions, transports.make_transport(settings), settings)
        _state = _Process(os.getpid(), asyncio.new_event_loop(), deliverer)
    return _state


@celery_app.task(name=SEND_TASK, ignore_result=True)
def send(delivery_id: int) -> str:
    """Claim, send and record one delivery; a no-op if it is not due or taken."""
    state = _process()
    outcome = state.loop.run_until_complete(state.deliverer.deliver(delivery_id))
    return outcome.result


@celery_app.task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> int:
    """Expire unconfirmed letters and re-enqueue every delivery that is due or lost."""
    state = _process()
    ids = state.deliverer.sweep(grace=state.deliverer.settings.sweep_interval)
    for delivery_id in ids:
        send.delay(delivery_id)
    if ids:
        log.info("sweeper re-enqueued %d deliveries", len(ids))
    return len(ids)
