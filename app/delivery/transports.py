"""Where messages go: an SMTP server (aiosmtplib), or `.eml` files in the outbox folder;
faxes to a gateway by mail, or as PDFs to the outbox's fax folder."""

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


_FAX_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")


def is_fax_number(recipient: str) -> bool:
    """True for an E.164 number ("+77279000000"): a fax line, not a mailbox."""
    return _FAX_NUMBER.fullmatch(recipient) is not None


def _write_atomic(path: Path, data: bytes) -> None:
    # Write then rename, so a reader never sees half a file and a resend replaces it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
            _write_atomic(path, pdfs[0])
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
        SmtpTransport(smtp) if smtp is not None else OutboxTransport(settings.outbox_dir)
    )
    return FaxRouter(mail, FaxFolderTransport(settings.outbox_dir / "fax"))
