"""`outcry inbound --protocol imap`: read bounces and replies from a mailbox, for sites
whose MTA cannot hand them over (imaplib, from the standard library).

The mailbox may hold other mail: Outcry never deletes, moves or marks read a message.
It fetches with BODY.PEEK (which leaves \\Seen alone) and, where the server allows
keywords, tags each message it has dealt with `$OutcryDone`, so the next pass skips it;
elsewhere it remembers the highest UID it has read. A message without one of our
return addresses is left exactly as it was. The envelope is lost in a mailbox, so the
return address is looked for in the headers a delivery agent writes (Delivered-To,
X-Original-To) and in To and Cc.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
import time
from dataclasses import dataclass, field

from app.core.config import ImapConfig
from app.delivery import returns
from app.delivery.inbound import parse, service
from app.delivery.inbound.listener import Inbound

log = logging.getLogger(__name__)

DONE = "$OutcryDone"
ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")
_FINAL = frozenset(
    {
        service.BOUNCE,
        service.REPLY,
        service.AUTO_REPLY,
        service.DUPLICATE,
        service.IGNORED,
        service.FORGED,
        service.UNKNOWN,
        service.UNREADABLE,
    }
)


@dataclass
class Mailbox:
    """One pass's state between passes: the highest UID read, per UIDVALIDITY."""

    config: ImapConfig
    uidvalidity: str = ""
    last_uid: int = 0
    outcomes: list[str] = field(default_factory=list)


def connect(config: ImapConfig, *, timeout: float = 30) -> imaplib.IMAP4:
    """Logged in, with the mailbox selected for writing flags."""
    client: imaplib.IMAP4
    if config.use_tls:
        client = imaplib.IMAP4_SSL(
            config.host, config.port, ssl_context=ssl.create_default_context(), timeout=timeout
        )
    else:
        client = imaplib.IMAP4(config.host, config.port, timeout=timeout)
        if config.start_tls:
            client.starttls(ssl.create_default_context())
    client.login(config.username, config.password)
    typ, _ = client.select(_quote(config.mailbox))
    if typ != "OK":
        raise imaplib.IMAP4.error(f"cannot select {config.mailbox}")
    return client


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _keywords_allowed(client: imaplib.IMAP4) -> bool:
    for line in client.untagged_responses.get("OK", []):
        text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
        if text.startswith("[PERMANENTFLAGS") and "\\*" in text:
            return True
    return False


def _uidvalidity(client: imaplib.IMAP4) -> str:
    values = client.untagged_responses.get("UIDVALIDITY", [b""])
    value = values[-1]
    return value.decode() if isinstance(value, bytes) else str(value)


def _uids(client: imaplib.IMAP4, *criteria: str) -> list[int]:
    typ, data = client.uid("SEARCH", *criteria)
    if typ != "OK" or not data or not data[0]:
        return []
    return [int(x) for x in data[0].split()]


def _fetch(client: imaplib.IMAP4, uid: int, what: str) -> bytes | None:
    typ, data = client.uid("FETCH", str(uid), what)
    if typ != "OK":
        return None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _size(client: imaplib.IMAP4, uid: int) -> int:
    typ, data = client.uid("FETCH", str(uid), "(RFC822.SIZE)")
    if typ == "OK" and data and isinstance(data[0], bytes):
        found = re.search(rb"RFC822\.SIZE (\d+)", data[0])
        if found:
            return int(found.group(1))
    return 0


def addresses(raw_headers: bytes, domain: str) -> list[str]:
    """Our return addresses in the headers that name a message's recipient."""
    msg = parse.read(raw_headers)
    found: list[str] = []
    for name in ADDRESS_HEADERS:
        for value in msg.get_all(name, []) if msg[name] else []:
            found += [a for a in returns.find_all(str(value), domain) if a not in found]
    return found


def read_once(receiver: Inbound, mailbox: Mailbox, client: imaplib.IMAP4) -> list[str]:
    """One pass over the mailbox: every message not dealt with yet that is addressed to one
    of our return addresses is recorded; returns the outcomes."""
    settings = receiver.settings
    keywords = _keywords_allowed(client)
    validity = _uidvalidity(client)
    if validity != mailbox.uidvalidity:
        mailbox.uidvalidity, mailbox.last_uid = validity, 0
    if keywords:
        uids = _uids(client, "UNKEYWORD", DONE)
    else:
        newer = _uids(client, "UID", f"{mailbox.last_uid + 1}:*")
        uids = [u for u in newer if u > mailbox.last_uid]
    outcomes: list[str] = []
    for uid in sorted(uids):
        fields = " ".join(name.upper() for name in ADDRESS_HEADERS)
        headers = _fetch(client, uid, f"(BODY.PEEK[HEADER.FIELDS ({fields})])") or b""
        ours = addresses(headers, settings.bounce_domain)
        if not ours:
            mailbox.last_uid = max(mailbox.last_uid, uid)
            continue  # not ours: left exactly as it was
        results: list[str] = []
        if _size(client, uid) > settings.inbound_max_bytes:
            receiver.too_large()
            results.append(service.TOO_LARGE)
        else:
            raw = _fetch(client, uid, "(BODY.PEEK[])") or b""
            for address in ours:
                try:
                    results.append(receiver.receive(raw, address, mail_from=None, source="imap"))
                except Exception:
                    log.exception("message %s in the mailbox could not be recorded", uid)
                    results.append("error")
        outcomes += results
        if all(r in _FINAL or r == service.TOO_LARGE for r in results):
            if keywords:
                client.uid("STORE", str(uid), "+FLAGS.SILENT", f"({DONE})")
            mailbox.last_uid = max(mailbox.last_uid, uid)
        else:
            break  # read again from here on the next pass
    mailbox.outcomes += outcomes
    return outcomes


def run(receiver: Inbound, config: ImapConfig, *, interval: float, passes: int = 0) -> Mailbox:
    """Read the mailbox every `interval` seconds (`passes` times, or until stopped)."""
    mailbox = Mailbox(config)
    done = 0
    while True:
        try:
            client = connect(config)
            try:
                read_once(receiver, mailbox, client)
            finally:
                try:
                    client.logout()
                except (imaplib.IMAP4.error, OSError):
                    pass
        except (imaplib.IMAP4.error, OSError) as exc:
            log.warning("IMAP %s:%s: %s", config.host, config.port, exc)
        done += 1
        if passes and done >= passes:
            return mailbox
        time.sleep(interval)
