"""Bounces and replies through a real MTA: Debian's Postfix relays the letters to a
"remote" server that refuses one target after Postfix has taken the message; Postfix
sends its own delivery status notification to the letter's VERP address and hands it,
and the replies, to a real `outcry inbound` process over LMTP.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.db import engine_for, session_factory, session_scope
from app.models import (
    Bounce,
    Channel,
    Delivery,
    DeliveryStatus,
    InboundDropped,
    Reply,
    ReplyKind,
)
from tests.appeals.factories import make_appeal
from tests.conftest import SECRET, _truncate, drain, make_settings
from tests.letters.factories import sign
from tests.support import postfix
from tests.support.postfix import Postfix, wait_port
from tests.support.processes import outcry, outcry_env, stop, wait_until
from tests.support.smtp import Handler, SmtpSink, free_port

pytestmark = pytest.mark.e2e

DOMAIN = "bounces.example.org"
GONE = "minister@example.org"
REFUSAL = "550 5.1.1 <minister@example.org>: Recipient address rejected: User unknown"


@pytest.fixture
def remote() -> Iterator[SmtpSink]:
    """The targets' server: it refuses the minister, whose address no longer exists."""
    handler = Handler(on_rcpt=lambda address: REFUSAL if address == GONE else None)
    with SmtpSink(handler) as sink:
        yield sink


@pytest.fixture
def inbound(pg_url: str, tmp_path: Path) -> Iterator[int]:
    """`outcry inbound` (LMTP) on a free port."""
    port = free_port()
    env = outcry_env(database_url=pg_url, bounce_domain=DOMAIN, secret_key=SECRET)
    proc = outcry("inbound", "--port", str(port), env=env, cwd=tmp_path, log=tmp_path / "in.log")
    try:
        wait_port(port, timeout=60)
        yield port
    finally:
        stop(proc)


def _send(port: int, msg: EmailMessage, *, sender: str, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.send_message(msg, from_addr=sender, to_addrs=[to])


def test_postfix_bounces_and_replies(
    pg_url: str, tmp_path: Path, remote: SmtpSink, inbound: int
) -> None:
    assert postfix.available(), "Debian's postfix is not installed (scripts/test installs it)"
    _truncate(pg_url)
    sessions = session_factory(engine_for(pg_url))
    with Postfix(
        smtp_port=free_port(),
        remote_port=remote.port,
        lmtp_port=inbound,
        bounce_domain=DOMAIN,
    ) as mta:
        settings = make_settings(
            pg_url, tmp_path, smtp_url=f"smtp://127.0.0.1:{mta.smtp_port}", bounce_domain=DOMAIN
        )
        with session_scope(sessions) as session:
            appeal = make_appeal(
                session,
                require_confirmation=False,
                targets=[
                    {"name": "A. President", "email": "president@example.org"},
                    {"name": "A. Minister", "email": GONE},
                ],
            )
            fine = make_appeal(
                session,
                slug="all-fine",
                require_confirmation=False,
                targets=[{"name": "A. President", "email": "president@example.org"}],
            )
            asks = sign(session, appeal, settings, email="ada@example.net", notify_replies=True)
            shares = sign(session, appeal, settings, email="bo@example.net", share_email=True)
            sign(session, fine, settings, email="cy@example.net")
        drain(settings)

        # What the targets' server saw: each letter's own return path, and a Reply-To that
        # is the campaign's reply address, or the supporter's when they chose to share it.
        # (Postfix took them when drain() returned; it relays them on at its own pace.)
        letters = [m for m in remote.wait_for(3, timeout=60) if "Free them" in m.message["Subject"]]
        assert len(letters) == 3
        by_cc = {parseaddr(m.message["Reply-To"] or "")[1]: m for m in letters}
        assert "bo@example.net" in by_cc
        asked = next(m for m in letters if asks.public_id in m.message["Message-ID"])
        assert "replies+" in asked.message["Reply-To"]
        assert asked.mail_from.startswith("bounces+")
        assert asked.mail_from.endswith("@" + DOMAIN)
        assert "ada@example.net" not in asked.data.decode()
        assert GONE not in asked.rcpt_tos  # refused at RCPT, after Postfix had taken it

        def bounced() -> list[Delivery]:
            with session_scope(sessions) as session:
                return list(
                    session.scalars(
                        select(Delivery).where(Delivery.status == DeliveryStatus.bounced)
                    )
                )

        wait_until(lambda: len(bounced()) == 2, timeout=60)
        with session_scope(sessions) as session:
            bounces = session.scalars(select(Bounce)).all()
            fine_delivery = session.scalars(
                select(Delivery).where(
                    Delivery.appeal_id == fine.id, Delivery.channel == Channel.email
                )
            ).one()
            assert fine_delivery.status is DeliveryStatus.sent
        assert {b.recipient for b in bounces} == {GONE}
        assert all(b.permanent and b.status == "5.1.1" for b in bounces)
        assert all(REFUSAL.split(":")[0] in b.reply for b in bounces)
        assert all("Diagnostic-Code" in b.report for b in bounces)
        # The returned letter (with the supporters' names and addresses) is not kept.
        assert not any("bo@example.net" in b.report for b in bounces)
        assert {d.last_error for d in bounced()} == {f"{GONE}: {bounces[0].reply}"}

        # The minister's office answers Ada's letter by hand, and its vacation notice
        # answers the return path; someone forges a reply address.
        reply_to = parseaddr(asked.message["Reply-To"])[1]
        human = EmailMessage()
        human["From"] = "Presidential Office <president@example.org>"
        human["To"] = reply_to
        human["Subject"] = "Re: Free them now"
        human["Message-ID"] = "<answer-1@example.org>"
        human.set_content("We have received your letter and passed it on.")
        _send(mta.smtp_port, human, sender="president@example.org", to=reply_to)
        away = EmailMessage()
        away["From"] = "president@example.org"
        away["To"] = asked.mail_from
        away["Subject"] = "Out of office"
        away["Auto-Submitted"] = "auto-replied"
        away.set_content("I am away until Monday.")
        _send(mta.smtp_port, away, sender="", to=asked.mail_from)
        forged = reply_to.split("+")[0] + "+1-aaaaaaaaaaaaaaaaaaaaa@" + DOMAIN
        _send(mta.smtp_port, human, sender="president@example.org", to=forged)

        def settled() -> bool:
            with session_scope(sessions) as session:
                replies = session.scalar(select(func.count()).select_from(Reply))
                dropped = session.get(InboundDropped, "forged")
                return replies == 2 and dropped is not None and dropped.n == 1

        wait_until(settled, timeout=60)
    with session_scope(sessions) as session:
        replies = {r.kind: r for r in session.scalars(select(Reply))}
        assert replies[ReplyKind.human].letter_id == asks.id
        assert replies[ReplyKind.human].text == "We have received your letter and passed it on."
        assert replies[ReplyKind.human].sender == "president@example.org"
        assert replies[ReplyKind.auto].subject == "Out of office"
        # Ada asked to be told; Bo did not, and nobody answered Bo.
        notices = session.scalars(
            select(Delivery).where(Delivery.channel == Channel.reply_notice)
        ).all()
        assert [(n.letter_id, n.recipients) for n in notices] == [(asks.id, ["ada@example.net"])]
    assert shares.id != asks.id
