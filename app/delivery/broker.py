"""Redis as a web request sees it: asked briefly, and left alone for a while once it fails.

Signing and logging in use Redis for per-client limits, and signing hands delivery ids
to Celery through it. Neither is needed to keep a letter (the database is the source of
truth, and the sweeper re-enqueues whatever was not handed over), so a Redis outage must
not slow a request down: each call to Redis gives up within a fraction of a second, and
after a failure the web process stops asking for RETRY_SECONDS and carries on without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How long after a failure web requests leave Redis alone before trying it again.
RETRY_SECONDS = 10.0
# Connecting to Redis may take this long; loopback or a LAN takes a millisecond.
CONNECT_SECONDS = 0.5


class RedisAway(Exception):
    """Redis failed just now, or recently: carry on without it."""


class _Breaker:
    """Open for RETRY_SECONDS after a failure; then the next call tries Redis again.

    Hand-written on purpose: pybreaker (tried first) holds one lock for the whole of each
    call, so every Redis request of a web process queued behind the one in flight, and
    under a crowd that lock took a fifth of the server's time. Here a call reads one
    float: a few calls racing past the moment it reopens only try Redis early.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.closed_at = 0.0  # Redis is left alone until then

    def call(self, fn: Callable[[], T]) -> T:
        if self.clock() < self.closed_at:
            raise RedisAway()
        try:
            return fn()
        except Exception as exc:  # redis-py's, kombu's and socket errors alike
            self.closed_at = self.clock() + RETRY_SECONDS
            raise RedisAway() from exc


_breaker = _Breaker()


def call(fn: Callable[[], T]) -> T:
    """`fn()`, which talks to Redis; RedisAway if it fails or Redis failed recently."""
    return _breaker.call(fn)


def reset() -> None:
    """Forget past failures (tests that start a new Redis)."""
    _breaker.closed_at = 0.0
