"""Redis as a web request sees it: asked briefly, and left alone for a while once it fails.

Signing and logging in use Redis for per-client limits, and signing hands delivery ids
to Celery through it. Neither is needed to keep a letter (the database is the source of
truth, and the sweeper re-enqueues whatever was not handed over), so a Redis outage must
not slow a request down: each call to Redis gives up within a fraction of a second, and
after a failure the web process stops asking for RETRY_SECONDS and carries on without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pybreaker

T = TypeVar("T")

# How long after a failure web requests leave Redis alone before trying it again.
RETRY_SECONDS = 10.0
# Connecting to Redis may take this long; loopback or a LAN takes a millisecond.
CONNECT_SECONDS = 0.5

_breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=RETRY_SECONDS, name="redis")


class RedisAway(Exception):
    """Redis failed just now, or recently: carry on without it."""


def call(fn: Callable[[], T]) -> T:
    """`fn()`, which talks to Redis; RedisAway if it fails or Redis failed recently."""
    try:
        return _breaker.call(fn)
    except pybreaker.CircuitBreakerError as exc:
        raise RedisAway() from exc
    except Exception as exc:  # redis-py's, kombu's and socket errors alike
        raise RedisAway() from exc


def reset() -> None:
    """Forget past failures (tests that start a new Redis)."""
    _breaker.close()
