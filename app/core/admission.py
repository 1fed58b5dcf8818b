"""Admission control: how many requests of one web process use the database at once.

A crowd must never stall the service. A request that has a pooled connection and then
waits for a worker thread, while every thread waits for a connection, is a deadlock
that only the pool's timeout ends (seen: 64 clients, 40 threads, 15 connections, 20 s of
silence, then 500s). So at most `limit` requests per process hold a turn, the pool holds
a connection for each (plus a reserve), and there are more worker threads than turns:
whatever a request needs next is always free. The others wait for a turn, first come
first served, for at most `wait` seconds, and then get a quick 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
from collections import deque

from app.core.errors import ServiceBusy


class Admission:
    """FIFO turns for the requests of one process (one event loop)."""

    def __init__(self, limit: int, *, wait: float, queue: int | None = None):
        self.limit = limit
        self.wait = wait
        # Beyond this many waiting, a request is turned away at once: it could not be
        # served within `wait` anyway.
        self.queue = queue if queue is not None else limit * 64
        self.free = limit
        self.waiting: deque[asyncio.Future[None]] = deque()

    @property
    def busy(self) -> int:
        """Requests holding a turn now."""
        return self.limit - self.free

    async def acquire(self) -> None:
        """Take a turn, waiting in line; ServiceBusy if none comes within `wait`."""
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        if len(self.waiting) >= self.queue or self.wait <= 0:
            raise ServiceBusy(retry_after=self._retry_after())
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            async with asyncio.timeout(self.wait):
                await turn
            return
        except TimeoutError:
            self._abandon(turn)
        except asyncio.CancelledError:  # the client went away while waiting
            self._abandon(turn)
            raise
        raise ServiceBusy(retry_after=self._retry_after())

    def _abandon(self, turn: asyncio.Future[None]) -> None:
        if turn.done() and not turn.cancelled():
            self.release()  # handed over just as the wait ended: pass it on
            return
        turn.cancel()
        if turn in self.waiting:
            self.waiting.remove(turn)

    def release(self) -> None:
        """Give the turn back: to the longest waiting request, if any."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1

    def _retry_after(self) -> int:
        # Long enough for the line ahead to clear; a few seconds under any real crowd.
        return max(1, min(30, round(self.wait or 1)))
