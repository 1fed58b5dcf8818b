"""The LMTP server the MTA hands bounces and replies to (aiosmtpd, in this process),
driven by the standard library's LMTP client as an MTA would."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.delivery import returns
from app.delivery.dispatch import WakeUp
from app.delivery.inbound import listener
from app.main import create_app
from app.models import Channel, Delivery, DeliveryStatus, InboundDropped, Reply
from tests.appeals.factories import make_appeal
from tests.conftest import SECRET, drain, make_settings
from tests.letters.factories import sign
from tests.support.smtp import SmtpSink, free_port

DOMAIN = "bounces.example.org"
HERE = Path(__file__).parent


class _Controller(Controller):
    def __init__(self, make: Any, port: int, *, lmtp: bool = True):
        super().__init__(handler=None, hostname="127.0.0.1", port=port)
        self.make = make
        self.lmtp = lmtp

    def factory(self) -> Any:
        return self.make()

    def _trigger_server(self) -> None:  # aiosmtpd's readiness check, in LMTP when it is
        if not self.lmtp:
            super()._trigger_server()  # type: ignore[no-untyped-call]
            return
        with smtplib.LMTP("127.0.0.1", self.port):
            pass


def _lmtp_replies(port: int, sender: str, recipients: list[str], data: bytes) -> list[str]:
    """Speak LMTP by hand and return the replies to DATA, one per recipient."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def reply() -> str:
            lines = [reader.readline().decode().rstrip()]
            while lines[-1][3:4] == "-":
                lines.append(reader.readline().decode().rstrip())
            return lines[-1]

        reply()  # greeting
        for command in ("LHLO mta.example.net", f"MAIL FROM:<{sender}>"):
            sock.sendall(command.encode() + b"\r\n")
            reply()
        for recipient in recipients:
            sock.sendall(f"RCPT TO:<{recipient}>\r\n".encode())
            assert reply().startswith("250")
        sock.sendall(b"DATA\r\n")
        assert reply().startswith("354")
        sock.sendall(data + b".\r\n")
        return [reply() for _ in recipients]


@pytest.fixture
def mail(db_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return make_settings(
        db_url, tmp_path, smtp_url=sink.url, bounce_domain=DOMAIN, inbound_max_bytes=65536
    )


@pytest.fixture
def lmtp(mail: Settings) -> Iterator[int]:
    inbound = listener.Inbound(session_factory(engine_for(mail.database_url)), mail, WakeUp())
    port = free_port()
    controller = _Controller(listener.server_factory(inbound, protocol="lmtp"), port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_lmtp_answers_each_recipient(
    session: Session, mail: Settings, sink: SmtpSink, lmtp: int
) -> None:
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, mail)
    session.commit()
    drain(mail)
    delivery = session.scalars(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.email)
    ).one()
    bounce_to = returns.address("bounces", SECRET, delivery.id, DOMAIN)
    reply_to = returns.address("replies", SECRET, delivery.id, DOMAIN)
    forged = reply_to.replace(reply_to.split("-")[1][:4], "zzzz")
    dsn = (HERE / "postfix-failed.eml").read_bytes().replace(b"gone@", b"president@")
    answer = b"From: president@example.org\r\nSubject: Re\r\nMessage-ID: <r@x>\r\n\r\nNoted.\r\n"
    with smtplib.LMTP("127.0.0.1", lmtp) as client:
        client.ehlo_or_helo_if_needed()
        # Not one of ours: refused at RCPT, so the MTA knows at once.
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("", ["postmaster@" + DOMAIN], answer)
        assert client.sendmail("", [bounce_to], dsn) == {}
        # Too large: refused (552, when the client declares its SIZE) and counted.
        with pytest.raises(smtplib.SMTPSenderRefused) as too_large:
            client.sendmail("p@example.org", [reply_to], answer + b"x" * 70000 + b"\r\n")
        assert too_large.value.smtp_code == 552
    # One reply per recipient (which smtplib's LMTP client does not read); a forged address
    # is taken and dropped, never bounced back to whoever forged it.
    assert _lmtp_replies(lmtp, "p@example.org", [reply_to, forged], answer) == [
        listener.OK,
        listener.OK,
    ]
    session.expire_all()
    assert session.get(Delivery, delivery.id).status is DeliveryStatus.bounced  # type: ignore[union-attr]
    assert [r.text for r in session.scalars(select(Reply))] == ["Noted."]
    dropped = {d.reason: d.n for d in session.scalars(select(InboundDropped))}
    assert dropped == {"forged": 1, "too_large": 1}
    scraper = mail.model_copy(update={"metrics_token": "prometheus-scrapes-with-this"})
    with TestClient(create_app(scraper, deliver_in_process=False)) as client:
        auth = {"Authorization": "Bearer prometheus-scrapes-with-this"}
        metrics = client.get("/metrics", headers=auth).text
    assert 'outcry_inbound_dropped{reason="forged"} 1.0' in metrics
    assert 'outcry_inbound_dropped{reason="unknown"} 0.0' in metrics
    assert 'outcry_bounces{kind="hard"} 1.0' in metrics
    assert 'outcry_replies{kind="human"} 1.0' in metrics


def test_smtp_mode_answers_once_for_the_message(session: Session, mail: Settings) -> None:
    """`--protocol smtp`, for MTAs without LMTP: one reply for all recipients."""
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, mail)
    session.commit()
    drain(mail)
    delivery = session.scalars(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.email)
    ).one()
    reply_to = returns.address("replies", SECRET, delivery.id, DOMAIN)
    inbound = listener.Inbound(session_factory(engine_for(mail.database_url)), mail, WakeUp())
    port = free_port()
    controller = _Controller(listener.server_factory(inbound, protocol="smtp"), port, lmtp=False)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            answer = b"From: president@example.org\r\nSubject: Re\r\n\r\nThank you.\r\n"
            assert client.sendmail("p@example.org", [reply_to], answer) == {}
    finally:
        controller.stop()
    assert [r.text for r in session.scalars(select(Reply))] == ["Thank you."]
