"""SMTP transport against a real server: kept-open connections, concurrency, errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from app.core.config import parse_smtp_url
from app.delivery import messages
from app.delivery.transports import (
    PartlyRefused,
    PermanentError,
    SendError,
    SmtpTransport,
    TransientError,
)
from tests.support.smtp import Handler, SmtpSink, free_port

RECIPIENTS = ("president@example.org", "copies@example.org", "campaign@example.net")


def letter(n: int = 0) -> EmailMessage:
    return messages.build(
        subject="Free them now",
        body="Dear President,\n\nRelease them.\n",
        from_name="Ada Example via Solidarity",
        from_address="letters@localhost",
        to=[messages.plain(RECIPIENTS[0])],
        cc=[messages.plain(r) for r in RECIPIENTS[1:]],
        message_id=f"<outcry.letter.test.{n}@localhost>",
        date=datetime.now(UTC),
        language="en",
    )


def run(transport: SmtpTransport, work: Callable[[SmtpTransport], Coroutine[Any, Any, Any]]) -> Any:
    async def main() -> Any:
        try:
            return await work(transport)
        finally:
            await transport.close()

    return asyncio.run(main())


def send(transport: SmtpTransport, n: int = 0, recipients: Sequence[str] = RECIPIENTS) -> Any:
    return transport.send(letter(n), sender="letters@localhost", recipients=recipients)


# Long enough only to fail a transport that never sends messages side by side: a test
# that passes never waits for it, whatever the machine is doing.
PATIENCE = 10.0


@dataclass
class GateHandler(Handler):
    """Holds each message until `size` messages are in the server at once (once that has
    happened, or PATIENCE has passed, the gate stays open), and records the most there
    ever were. The handlers all run on the server's one event loop: no locks needed."""

    size: int = 1
    inside: int = 0
    most: int = 0
    gate: asyncio.Event | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.gate is None:
            self.gate = asyncio.Event()
        self.inside += 1
        self.most = max(self.most, self.inside)
        if self.inside >= self.size:
            self.gate.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gate.wait(), PATIENCE)
            self.gate.set()
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.inside -= 1


def test_one_connection_carries_many_messages() -> None:
    with SmtpSink() as sink:
        transport = SmtpTransport(parse_smtp_url(sink.url), size=4)

        async def one_by_one(t: SmtpTransport) -> None:
            for n in range(10):
                await send(t, n)

        run(transport, one_by_one)

    assert len(sink.messages) == 10
    assert len({m.peer for m in sink.messages}) == 1


def test_messages_go_out_concurrently_over_at_most_size_connections() -> None:
    handler = GateHandler(size=4)
    with SmtpSink(handler) as sink:
        transport = SmtpTransport(parse_smtp_url(sink.url), size=4)

        async def at_once(t: SmtpTransport) -> None:
            await asyncio.gather(*(send(t, n) for n in range(40)))

        run(transport, at_once)

    assert len(sink.messages) == 40
    # Four messages were in the server side by side, each on its own connection, and
    # never more than the pool's four.
    assert handler.most == 4
    assert len({m.peer for m in sink.messages}) == 4


def test_a_connection_the_server_dropped_is_opened_again() -> None:
    port = free_port()

    async def across_a_restart(t: SmtpTransport) -> None:
        with SmtpSink(port=port):
            await send(t, 1)
        # The server has gone; wait until this end has seen it go (white-box: the pool's
        # one connection), as a worker would have long before its next letter.
        [conn] = t._connections
        deadline = asyncio.get_running_loop().time() + PATIENCE
        while conn.client is not None and conn.client.is_connected:
            assert asyncio.get_running_loop().time() < deadline, "the close was never seen"
            await asyncio.sleep(0.01)
        with SmtpSink(port=port) as second:
            await send(t, 2)
            assert len(second.messages) == 1

    run(SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{port}")), across_a_restart)


def test_421_closing_is_tried_once_more_on_a_fresh_connection() -> None:
    replies = iter(["421 4.7.0 Too many messages on one connection"])
    handler = Handler(on_data=lambda _rcpts: next(replies, None))
    with SmtpSink(handler) as sink:
        reply = run(SmtpTransport(parse_smtp_url(sink.url)), send)

    assert reply == "2.0.0 Message accepted"
    assert handler.attempts == 2
    assert len(sink.messages) == 1


def test_a_partial_refusal_says_who_has_the_message() -> None:
    refuse = {"campaign@example.net": "550 5.1.1 No such user"}
    with SmtpSink(Handler(on_rcpt=refuse.get)) as sink:
        with pytest.raises(PartlyRefused) as raised:
            run(SmtpTransport(parse_smtp_url(sink.url)), send)

    assert raised.value.accepted == RECIPIENTS[:2]
    assert raised.value.refused == {"campaign@example.net": (550, "5.1.1 No such user")}
    assert sink.messages[0].rcpt_tos == list(RECIPIENTS[:2])


@pytest.mark.parametrize(
    ("on_data", "on_rcpt", "error", "reply"),
    [
        ("451 4.3.0 Try again later", None, TransientError, "451 4.3.0 Try again later"),
        ("554 5.7.1 Refused by policy", None, PermanentError, "554 5.7.1 Refused by policy"),
        (None, "550 5.1.1 No such user", PermanentError, "president@example.org: 550"),
        (None, "450 4.2.1 Mailbox busy", TransientError, "president@example.org: 450"),
    ],
)
def test_refusals_are_transient_or_permanent_by_their_code(
    on_data: str | None, on_rcpt: str | None, error: type[SendError], reply: str
) -> None:
    handler = Handler(on_rcpt=lambda _r: on_rcpt, on_data=lambda _r: on_data)
    with SmtpSink(handler) as sink:
        transport = SmtpTransport(parse_smtp_url(sink.url))

        async def refused_then_accepted(t: SmtpTransport) -> None:
            with pytest.raises(error) as raised:
                await send(t)
            assert type(raised.value) is error
            assert reply in raised.value.reply
            # The connection survives a refusal and carries the next message.
            handler.on_rcpt = lambda _r: None
            handler.on_data = lambda _r: None
            await send(t, 2)

        run(transport, refused_then_accepted)

    assert len({m.peer for m in sink.messages}) == 1


def test_an_unreachable_server_is_a_transient_error() -> None:
    transport = SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"))
    with pytest.raises(TransientError, match="Connect"):
        run(transport, send)
