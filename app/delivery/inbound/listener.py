"""`outcry inbound`: an LMTP (or SMTP) server, on aiosmtpd, that the site's MTA hands the
bounce and reply addresses to.

LMTP answers each recipient of a message on its own, so a message for two letters'
addresses is taken for one and deferred for the other when that is what happened.
A message for a forged or unknown address is accepted and dropped (counted): refusing
it would make the MTA send a bounce to whoever forged it. A message whose delivery is
still being recorded gets a temporary failure, and the MTA hands it over again later.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import session_scope
from app.delivery import service as delivery_service
from app.delivery.dispatch import Dispatcher
from app.delivery.inbound import service
from app.models import utcnow

log = logging.getLogger(__name__)

OK = "250 2.0.0 OK"
TRY_LATER = "451 4.3.0 Not ready for this message yet, please try again later"
FAILED = "451 4.3.0 Temporary failure, please try again later"
# The shape of our addresses: anything else is refused at RCPT (a misrouted address).
_OURS = re.compile(r"(bounces|replies)\+[^@]+@.+", re.IGNORECASE)


class Inbound:
    """Receives messages for return addresses and records them, one transaction each;
    planned notices are enqueued after the commit."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], Any] = utcnow,
    ):
        self.sessions = sessions
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock

    def receive(self, raw: bytes, address: str, *, mail_from: str | None, source: str) -> str:
        """What the message came to for `address` (a service outcome); raises on a
        database failure, so the MTA is told to try again."""
        with session_scope(self.sessions) as session:
            outcome = service.receive(
                session,
                raw=raw,
                address=address,
                mail_from=mail_from,
                settings=self.settings,
                source=source,
                now=self.clock(),
            )
        enqueued = delivery_service.take_enqueued(session)
        if enqueued:
            self.dispatcher.enqueue(enqueued)
        log.info("inbound %s for %s: %s", source, address, outcome)
        return outcome

    def too_large(self) -> None:
        with session_scope(self.sessions) as session:
            service.count_dropped(session, service.TOO_LARGE)


class Handler:
    """aiosmtpd's handler: RCPT takes our addresses only; DATA records the message."""

    def __init__(self, inbound: Inbound, *, lmtp: bool):
        self.inbound = inbound
        self.lmtp = lmtp

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if not _OURS.fullmatch(address):
            return "550 5.1.1 Not a bounce or reply address of this site"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or b"")
        mail_from = envelope.mail_from or ""
        source = "lmtp" if self.lmtp else "smtp"
        replies = [
            await asyncio.to_thread(self._one, raw, address, mail_from, source)
            for address in envelope.rcpt_tos
        ]
        if self.lmtp:
            return "\r\n".join(replies)  # one reply a recipient (RFC 2033)
        # SMTP has one reply for the message: try again later if any recipient must.
        return next((r for r in replies if not r.startswith("2")), OK)

    def _one(self, raw: bytes, address: str, mail_from: str, source: str) -> str:
        try:
            outcome = self.inbound.receive(
                raw, address, mail_from="" if mail_from in ("", "<>") else mail_from, source=source
            )
        except Exception:
            log.exception("inbound message for %s could not be recorded", address)
            return FAILED
        return TRY_LATER if outcome == service.LATER else OK


class _Counted:
    """Counts messages refused as too large (aiosmtpd answers 552 itself)."""

    inbound: Inbound

    async def push(self, status: AnyStr) -> None:
        if (status if isinstance(status, str) else status.decode()).startswith("552"):
            await asyncio.to_thread(self.inbound.too_large)
        await super().push(status)  # type: ignore[misc]


class _LMTP(_Counted, LMTP):
    pass


class _SMTP(_Counted, SMTP):
    pass


def server_factory(inbound: Inbound, *, protocol: str) -> Callable[[], SMTP]:
    """A protocol factory for asyncio's create_server: LMTP or SMTP, with the size limit
    of OUTCRY_INBOUND_MAX_BYTES."""
    lmtp = protocol == "lmtp"
    handler = Handler(inbound, lmtp=lmtp)

    def make() -> SMTP:
        cls = _LMTP if lmtp else _SMTP
        server = cls(
            handler,
            data_size_limit=inbound.settings.inbound_max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname="outcry-inbound",
            ident="Outcry inbound",
        )
        server.inbound = inbound
        return server

    return make


async def serve(inbound: Inbound, *, host: str, port: int, protocol: str) -> None:
    """Listen until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(server_factory(inbound, protocol=protocol), host, port)
    log.info("outcry inbound: %s on %s:%s", protocol.upper(), host, port)
    async with server:
        await server.serve_forever()
