"""Serving the web app with uvicorn: one port, one or several processes, and a deadline
for reading each request, so slow or stalled clients cannot hold connections open.
Without a broker, one delivery process beside them (embedded.DeliveryProcess)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import get_settings
from app.delivery.embedded import DeliveryProcess
from app.main import deliver_beside_server

# uvicorn imports the app in each process by this name (the same with one process, so
# one process and several are served the same way).
APP_FACTORY = "app.main:app_from_env"


class DeadlineHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for reading a whole request.

    uvicorn only times out a keep-alive connection that is idle between requests. A
    client that connects and sends nothing, or a partial request, or a body a byte at a
    time, keeps its connection (and a file descriptor, and a slot in the accept backlog)
    for as long as it likes: 350 of them were seen open after 40 s. From a connection's
    first byte, or a new request's first byte, the request has `request_read_seconds`
    to arrive in full; then the connection is closed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_seconds = get_settings().request_read_seconds
        self.read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.read_deadline is None:
            self.read_deadline = self.loop.call_later(self.read_seconds, self._expired)

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _expired(self) -> None:
        self.read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def options() -> dict[str, Any]:
    """How Outcry's web processes are served (benchmarks serve their peers the same way)."""
    return {
        "http": DeadlineHttp,
        # The client's address comes from OUTCRY_TRUSTED_PROXIES alone (see main.py):
        # uvicorn's own default would believe X-Forwarded-For from 127.0.0.1.
        "proxy_headers": False,
        # Request lines carry letters' keys and confirmation tokens: not for a log.
        "access_log": False,
        "server_header": False,
        "log_level": "info",
        # A crowd connects at once: room in the accept queue for all of them.
        "backlog": 4096,
    }


def _exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(*, host: str, port: int, workers: int) -> None:
    """Serve on host:port with `workers` processes sharing the socket; each reads its
    settings from the environment, as the command that started them did. Without a
    broker, a delivery process of its own sends what they take in, and stops after them."""
    delivery = None
    if get_settings().embedded:
        delivery = DeliveryProcess(deliver_beside_server)
        delivery.start()
        # uvicorn stops on SIGTERM, then puts this handler back and raises the signal
        # again: with the default one the process would end there, before the delivery
        # process is stopped below.
        signal.signal(signal.SIGTERM, _exit)
    try:
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, **options())
    finally:
        if delivery is not None:
            delivery.stop()
