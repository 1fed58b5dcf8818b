"""A real SMTP server (aiosmtpd) on a loopback port that records what it is sent."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int] = ("", 0)  # the client's address: one per connection
    at: float = field(default_factory=time.time)  # when the message was accepted

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Handler:
    messages: list[Received] = field(default_factory=list)
    # Return an SMTP reply such as "451 4.7.1 try later" to refuse, or None to accept.
    on_rcpt: Callable[[str], str | None] = lambda _address: None
    on_data: Callable[[list[str]], str | None] = lambda _rcpts: None
    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        reply = self.on_rcpt(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts += 1
        reply = self.on_data(list(envelope.rcpt_tos))
        if reply:
            return reply
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content),
                    peer=tuple(session.peer[:2]),
                )
            )
        return "250 2.0.0 Message accepted"


class SmtpSink:
    """`with SmtpSink() as sink:` then point OUTCRY_SMTP_URL at `sink.url`."""

    def __init__(self, handler: Handler | None = None, port: int | None = None):
        self.handler = handler or Handler()
        self.port = port or free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=10_000_000
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def message_ids(self) -> list[str]:
        """The Message-ID of every message received, duplicates included."""
        with self.handler.lock:
            received = list(self.messages)
        # A regular expression, not the email parser: tests count thousands of these.
        found = (_MESSAGE_ID.search(r.data) for r in received)
        return [m.group(1).decode() if m else "" for m in found]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until at least `count` messages have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} messages arrived")
            time.sleep(0.05)
        return list(self.messages)
