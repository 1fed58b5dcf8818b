"""Reading bounces and replies from a mailbox (a private Dovecot on loopback): what is
ours is recorded once; nothing is deleted, moved or marked read, and mail that is not
ours is left exactly as it was."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.delivery import returns
from app.delivery.dispatch import WakeUp
from app.delivery.inbound import imap, listener, service
from app.models import Channel, Delivery, DeliveryStatus, InboundDropped, Reply, ReplyKind
from tests.appeals.factories import make_appeal
from tests.conftest import SECRET, drain, make_settings
from tests.letters.factories import sign
from tests.support import dovecot
from tests.support.dovecot import Dovecot
from tests.support.smtp import SmtpSink, free_port

DOMAIN = "bounces.example.org"
HERE = Path(__file__).parent


@pytest.fixture
def mailbox() -> Iterator[int]:
    assert dovecot.available(), "Debian's dovecot-imapd is not installed (scripts/test does)"
    with Dovecot(free_port()) as server:
        yield server.port


def _flags(client: imaplib.IMAP4) -> dict[int, str]:
    typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    found = {}
    for line in data:
        text = line.decode() if isinstance(line, bytes) else ""
        match = re.search(r"UID (\d+) FLAGS \(([^)]*)\)", text)
        if match:
            found[int(match.group(1))] = match.group(2)
    return found


def test_the_mailbox_reader_records_ours_and_leaves_the_rest(
    session: Session, db_url: str, tmp_path: Path, sink: SmtpSink, mailbox: int
) -> None:
    url = f"imap://outcry:{dovecot.PASSWORD}@127.0.0.1:{mailbox}/INBOX"
    settings: Settings = make_settings(
        db_url,
        tmp_path,
        smtp_url=sink.url,
        bounce_domain=DOMAIN,
        imap_url=url,
        inbound_max_bytes=65536,
    )
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, settings)
    session.commit()
    drain(settings)
    delivery = session.scalars(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.email)
    ).one()
    bounce_to = returns.address("bounces", SECRET, delivery.id, DOMAIN)
    reply_to = returns.address("replies", SECRET, delivery.id, DOMAIN)
    dsn = (HERE / "postfix-failed.eml").read_bytes()
    dsn = dsn.replace(b"gone@example.org", b"president@example.org")
    dsn = re.sub(rb"bounces\+1-[a-z]+@bounces\.example\.org", bounce_to.encode(), dsn)
    reply = (
        f"Delivered-To: {reply_to}\r\nFrom: president@example.org\r\n"
        "Subject: Re: Free them now\r\nMessage-ID: <r1@example.org>\r\n\r\nWe read it.\r\n"
    ).encode()
    local, mac = reply_to.split("@")[0].split("-")
    forged_to = f"{local}-{'zz' if not mac.startswith('zz') else 'yy'}{mac[2:]}@{DOMAIN}"
    forged = reply.replace(reply_to.encode(), forged_to.encode())
    other = b"From: friend@example.net\r\nTo: campaign@example.net\r\nSubject: Lunch?\r\n\r\nHi\r\n"
    config = settings.imap
    assert config is not None
    client = imap.connect(config)
    huge = reply.replace(b"We read it.", b"x" * 70_000)
    for raw in (other, dsn, reply, forged, huge):
        client.append("INBOX", None, None, raw)
    receiver = listener.Inbound(session_factory(engine_for(db_url)), settings, WakeUp())

    box = imap.run(receiver, config, interval=0, passes=2)

    # Each once, however many passes.
    assert sorted(box.outcomes) == sorted(
        [service.BOUNCE, service.REPLY, service.FORGED, service.TOO_LARGE]
    )
    session.expire_all()
    assert session.get(Delivery, delivery.id).status is DeliveryStatus.bounced  # type: ignore[union-attr]
    assert [(r.kind, r.text) for r in session.scalars(select(Reply))] == [
        (ReplyKind.human, "We read it.")
    ]
    # The forged one is counted; the mail that is not ours is not Outcry's business.
    dropped = {d.reason: d.n for d in session.scalars(select(InboundDropped))}
    assert dropped == {"forged": 1, "too_large": 1}
    # Every message is still there; none is marked read; only ours carry the keyword.
    client.select("INBOX")
    flags = _flags(client)
    assert sorted(flags) == [1, 2, 3, 4, 5]
    assert not any("\\Seen" in f or "\\Deleted" in f for f in flags.values())
    assert [uid for uid, f in flags.items() if imap.DONE in f] == [2, 3, 4, 5]
    client.logout()
