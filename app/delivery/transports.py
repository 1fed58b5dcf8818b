"""Where messages go: an SMTP server (aiosmtplib), or `.eml` files in the outbox folder;
faxes to a gateway by mail, or as PDFs to the outbox's fax folder."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Protocol

import aiosmtplib

from app.core.config import Settings, SmtpConfig
from app.core.files import write_atomic
from app.delivery import faxes

Refusal = tuple[int, str]  # an SMTP reply: code and text


class SendError(Exception):
    """A failed send; `reply` keeps what the server said.

    When the server answered recipient by recipient, `refused` holds each refused
    recipient's reply and `accepted` the recipients it took the message for (a partial
    success: the message went to those, and must not go to them again).
    """

    permanent = False

    def __init__(
        self,
        reply: str,
        *,
        refused: dict[str, Refusal] | None = None,
        accepted: Sequence[str] = (),
    ):
        self.reply = reply
        self.refused = refused or {}
        self.accepted = tuple(accepted)
        super().__init__(reply)


class TransientError(SendError):
    """Worth retrying: connection trouble, timeouts, 4xx replies."""


class PermanentError(SendError):
    """Not worth retrying: 5xx replies for the message or every recipient."""

    permanent = True


class Transport(Protocol):
    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        """Send and return the server's reply (or where the file went); raise SendError."""
        ...

    async def close(self) -> None: ...


def _safe_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip("<>"))[:200]


class OutboxTransport:
    """Writes each message to `<dir>/<message-id>.eml`; nothing leaves the machine.

    The file name comes from the deterministic Message-ID, so sending the same
    delivery twice rewrites one file instead of making a duplicate.
    """

    def __init__(self, directory: Path):
        self.directory = directory

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{_safe_name(str(message['Message-ID']))}.eml"
        write_atomic(path, message.as_bytes(policy=SMTP))
        return path

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        try:
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise TransientError(f"outbox: {exc}") from exc
        return f"written to {path}"

    async def close(self) -> None:
        return None


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


def _refusals(refused: dict[str, Refusal]) -> str:
    return "; ".join(f"{rcpt}: {code} {text}".strip() for rcpt, (code, text) in refused.items())


# A connection unused for this long is checked with NOOP before it carries a message:
# servers drop idle clients, and a letter should not pay a retry for that.
IDLE_CHECK_SECONDS = 10.0


@dataclass(eq=False)
class _Connection:
    client: aiosmtplib.SMTP | None = None
    used_at: float = 0.0


class SmtpTransport:
    """A small pool of SMTP connections, kept open and reused, each reconnecting after an error.

    `size` messages go out at once, each over its own connection (one SMTP session
    carries one transaction at a time). The most recently used connection is handed
    out first, so under light load one connection stays warm and the others age out.
    """

    def __init__(self, config: SmtpConfig, *, size: int = 1):
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.config = config
        self.size = size
        self._connections = [_Connection() for _ in range(size)]
        # Made on first use, inside the event loop that sends.
        self._idle: asyncio.LifoQueue[_Connection] | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.use_tls,
            start_tls=cfg.start_tls,
            timeout=cfg.timeout,
        )
        await client.connect()
        if cfg.username and cfg.password:
            await client.login(cfg.username, cfg.password)
        return client

    @staticmethod
    def _drop(conn: _Connection) -> None:
        client, conn.client = conn.client, None
        if client is not None:
            # Closing a broken connection may fail; it is gone either way.
            with contextlib.suppress(Exception):
                client.close()

    async def _ready(self, conn: _Connection) -> aiosmtplib.SMTP:
        """The connection's client, connected (and checked, if it sat idle)."""
        client = conn.client
        if client is not None and client.is_connected:
            if time.monotonic() - conn.used_at < IDLE_CHECK_SECONDS:
                return client
            try:
                await client.noop()
                return client
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self._drop(conn)
        self._drop(conn)
        conn.client = await self._connect()
        return conn.client

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        if self._idle is None:
            self._idle = asyncio.LifoQueue()
            for conn in self._connections:
                self._idle.put_nowait(conn)
        conn = await self._idle.get()
        try:
            try:
                return await self._send(conn, message, sender=sender, recipients=recipients)
            except _Closing:
                # 421: the server refused the message and is closing this session (too
                # many messages on it, shutting down). Nothing was taken, so one more
                # try on a fresh connection is safe and spares the letter a backoff.
                pass
            try:
                return await self._send(conn, message, sender=sender, recipients=recipients)
            except _Closing as exc:
                raise TransientError(exc.reply) from exc
        finally:
            conn.used_at = time.monotonic()
            self._idle.put_nowait(conn)

    async def _send(
        self,
        conn: _Connection,
        message: EmailMessage,
        *,
        sender: str,
        recipients: Sequence[str],
    ) -> str:
        try:
            client = await self._ready(conn)
            errors, reply = await client.send_message(
                message, sender=sender, recipients=list(recipients)
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # aiosmtplib has sent RSET already: the connection stays usable.
            refused = {r.recipient: (r.code, r.message) for r in exc.recipients}
            permanent = all(code >= 500 for code, _ in refused.values())
            error = PermanentError if permanent else TransientError
            raise error(_refusals(refused), refused=refused) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                self._drop(conn)
                raise _Closing(_reply(exc)) from exc
            if exc.code >= 500:
                raise PermanentError(_reply(exc)) from exc
            raise TransientError(_reply(exc)) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self._drop(conn)
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        if errors:
            refused = {rcpt: (resp.code, resp.message) for rcpt, resp in errors.items()}
            accepted = [r for r in recipients if r not in refused]
            raise PartlyRefused(f"{reply} (refused: {_refusals(refused)})", refused, accepted)
        return reply

    async def close(self) -> None:
        """Say QUIT on every open connection."""
        for conn in self._connections:
            client, conn.client = conn.client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()


class _Closing(SendError):
    """A 421 reply: the server closes the session; the message was not taken."""


class PartlyRefused(SendError):
    """The server took the message for some recipients and refused the others."""

    def __init__(self, reply: str, refused: dict[str, Refusal], accepted: Sequence[str]):
        super().__init__(reply, refused=refused, accepted=accepted)
        self.permanent = all(code >= 500 for code, _ in refused.values())


_FAX_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")


def is_fax_number(recipient: str) -> bool:
    """True for an E.164 number ("+77279000000"): a fax line, not a mailbox."""
    return _FAX_NUMBER.fullmatch(recipient) is not None


class FaxFolderTransport:
    """Stands in for a fax line: writes the message's PDF to `<dir>/<number>-<message-id>.pdf`.

    The name comes from the number and the deterministic Message-ID, so faxing the
    same delivery twice rewrites one file. Someone (or a fax modem's spool) sends
    the files from there.
    """

    def __init__(self, directory: Path):
        self.directory = directory

    def _write(self, message: EmailMessage, recipients: Sequence[str]) -> list[Path]:
        pdfs = [
            part.get_content()
            for part in message.iter_attachments()
            if part.get_content_type() == "application/pdf"
        ]
        if len(pdfs) != 1:
            raise PermanentError(f"fax folder: a fax needs one PDF, the message has {len(pdfs)}")
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = _safe_name(str(message["Message-ID"]))
        paths = []
        for number in recipients:
            path = self.directory / f"{number.removeprefix('+')}-{stem}.pdf"
            write_atomic(path, pdfs[0])
            paths.append(path)
        return paths

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        try:
            paths = await asyncio.to_thread(self._write, message, recipients)
        except OSError as exc:
            raise TransientError(f"fax folder: {exc}") from exc
        return "written to " + ", ".join(str(p) for p in paths)

    async def close(self) -> None:
        return None


class FaxRouter:
    """Mail to the mail transport, faxes (recipients that are numbers) to the fax line.

    With OUTCRY_FAX_GATEWAY set, compose addresses faxes to the gateway's mailbox and
    they go out as mail; without it their recipients are numbers and end up here.
    """

    def __init__(self, mail: Transport, fax: Transport):
        self.mail = mail
        self.fax = fax

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        numbers = [r for r in recipients if is_fax_number(r)]
        if not numbers:
            return await self.mail.send(message, sender=sender, recipients=recipients)
        if len(numbers) != len(recipients):
            raise PermanentError("a message cannot go to fax numbers and mailboxes at once")
        return await self.fax.send(message, sender=sender, recipients=recipients)

    async def close(self) -> None:
        try:
            await self.mail.close()
        finally:
            await self.fax.close()


def make_transport(settings: Settings) -> Transport:
    """SMTP when OUTCRY_SMTP_URL is set, otherwise the outbox folder; faxes without a
    gateway go to the outbox's fax/ folder either way."""
    smtp = settings.smtp
    mail: Transport = (
        SmtpTransport(smtp, size=settings.send_concurrency)
        if smtp is not None
        else OutboxTransport(settings.outbox_dir)
    )
    return FaxRouter(mail, FaxFolderTransport(faxes.folder(settings)))
