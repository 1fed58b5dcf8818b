"""Where messages go: an SMTP server (aiosmtplib), or `.eml` files in the outbox folder."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Protocol

import aiosmtplib

from app.core.config import Settings, SmtpConfig


class SendError(Exception):
    """A failed send; `reply` keeps what the server said."""

    permanent = False

    def __init__(self, reply: str):
        self.reply = reply
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
        # Write then rename, so a reader never sees half a message.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
        with os.fdopen(fd, "wb") as fh:
            fh.write(message.as_bytes(policy=SMTP))
        os.replace(tmp, path)
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


class SmtpTransport:
    """One SMTP connection kept open and reused, reconnecting after an error."""

    def __init__(self, config: SmtpConfig):
        self.config = config
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

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

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        async with self._lock:
            try:
                if self._client is None or not self._client.is_connected:
                    self._client = await self._connect()
                errors, reply = await self._client.send_message(
                    message, sender=sender, recipients=list(recipients)
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                replies = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
                permanent = all(r.code >= 500 for r in exc.recipients)
                await self._reset()
                raise (PermanentError if permanent else TransientError)(replies) from exc
            except aiosmtplib.SMTPResponseException as exc:
                await self._reset()
                if exc.code >= 500:
                    raise PermanentError(_reply(exc)) from exc
                raise TransientError(_reply(exc)) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._drop()
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        refused = "; ".join(f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in errors.items())
        return f"{reply}" + (f" (refused: {refused})" if refused else "")

    async def _reset(self) -> None:
        # After a refused transaction the connection is still good: RSET keeps it.
        try:
            if self._client is not None and self._client.is_connected:
                await self._client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self._drop()

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()


def make_transport(settings: Settings) -> Transport:
    """SMTP when OUTCRY_SMTP_URL is set, otherwise the outbox folder."""
    smtp = settings.smtp
    if smtp is not None:
        return SmtpTransport(smtp)
    return OutboxTransport(settings.outbox_dir)
