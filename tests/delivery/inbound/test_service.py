"""Recording what came back (on SQLite and PostgreSQL): bounces turn deliveries
`bounced`, replies are kept and told apart, forged addresses are dropped and counted,
and a bounced letter is retried to the address the organiser fixed."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from app.core.auth import Principal
from app.core.config import Settings
from app.delivery import returns
from app.delivery import service as delivery_service
from app.delivery.inbound import service
from app.models import (
    Bounce,
    Channel,
    Delivery,
    DeliveryStatus,
    InboundDropped,
    LetterStatus,
    Reply,
    ReplyKind,
    utcnow,
)
from app.organisers import inbox, stats
from tests.appeals.factories import appeal_data, make_appeal
from tests.conftest import SECRET, drain, make_settings
from tests.letters.factories import sign
from tests.support.smtp import SmtpSink

HERE = Path(__file__).parent
DOMAIN = "bounces.example.org"
ADMIN = Principal(via="token", organisation_id=None)
TARGETS = [
    {"name": "A. President", "email": "president@example.org"},
    {"name": "A. Minister", "email": "minister@example.org"},
]


@pytest.fixture
def mail(db_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return make_settings(db_url, tmp_path, smtp_url=sink.url, bounce_domain=DOMAIN)


def _sent(session: Session, settings: Settings, **fields: Any) -> Delivery:
    """A letter to both targets, sent; its e-mail delivery."""
    appeal = make_appeal(session, require_confirmation=False, targets=TARGETS)
    letter = sign(session, appeal, settings, **fields)
    session.commit()
    drain(settings)
    session.expire_all()
    return session.scalars(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.email)
    ).one()


def _dsn(delivery: Delivery, recipient: str, *, name: str = "postfix-failed.eml") -> bytes:
    raw = (HERE / name).read_bytes()
    original = b"gone@example.org" if "failed" in name else b"full@example.org"
    return raw.replace(original, recipient.encode())


def _receive(session: Session, settings: Settings, raw: bytes, address: str, **kw: object) -> str:
    outcome = service.receive(
        session,
        raw=raw,
        address=address,
        mail_from=kw.pop("mail_from", ""),  # type: ignore[arg-type]
        settings=settings,
        source="lmtp",
        now=utcnow(),
    )
    session.commit()
    return outcome


def _bounce_address(delivery: Delivery) -> str:
    return returns.address("bounces", SECRET, delivery.id, DOMAIN)


def test_a_target_refusing_for_good_bounces_the_delivery(session: Session, mail: Settings) -> None:
    delivery = _sent(session, mail)
    assert delivery.status is DeliveryStatus.sent
    raw = _dsn(delivery, "minister@example.org")
    assert _receive(session, mail, raw, _bounce_address(delivery)) == service.BOUNCE
    # The MTA hands the same report over again: one bounce still.
    assert _receive(session, mail, raw, _bounce_address(delivery)) == service.DUPLICATE
    session.expire_all()
    delivery = session.get_one(Delivery, delivery.id)
    assert delivery.status is DeliveryStatus.bounced
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("minister@example.org: 550 5.1.1")
    # The letter reached the president: it stays sent; the stats count the bounce.
    assert delivery.letter is not None
    assert delivery.letter.status is LetterStatus.sent
    figures = stats.appeal_stats(session, appeal=delivery.letter.appeal, who=ADMIN)
    assert figures.deliveries["bounced"] == 1
    assert set(figures.deliveries) == {s.value for s in DeliveryStatus}
    [bounce] = session.scalars(select(Bounce)).all()
    assert (bounce.recipient, bounce.permanent, bounce.status) == (
        "minister@example.org",
        True,
        "5.1.1",
    )
    page = inbox.bounces(session, appeal=delivery.letter.appeal, who=ADMIN)
    assert page.counts == {"hard": 1, "soft": 0, "complaint": 0}
    [flag] = page.addresses
    assert (flag.recipient, flag.current, flag.letters) == ("minister@example.org", True, 1)


def test_copies_and_delays_are_recorded_without_a_bounce(session: Session, mail: Settings) -> None:
    delivery = _sent(session, mail)
    address = _bounce_address(delivery)
    copy = _dsn(delivery, "campaign@example.net")
    assert _receive(session, mail, copy, address) == service.BOUNCE
    delayed = _dsn(delivery, "minister@example.org", name="postfix-delayed.eml")
    assert _receive(session, mail, delayed, address) == service.BOUNCE
    session.expire_all()
    assert session.get(Delivery, delivery.id).status is DeliveryStatus.sent  # type: ignore[union-attr]
    kinds = {(b.recipient, b.permanent) for b in session.scalars(select(Bounce))}
    assert kinds == {("campaign@example.net", True), ("minister@example.org", False)}
    assert delivery.letter is not None
    page = inbox.bounces(session, appeal=delivery.letter.appeal, who=ADMIN)
    assert page.counts == {"hard": 1, "soft": 1, "complaint": 0}
    assert page.addresses == []  # nothing waits for the organiser


def test_a_report_before_the_send_is_recorded_waits(session: Session, mail: Settings) -> None:
    delivery = _sent(session, mail)
    table = cast(Table, Delivery.__table__)
    session.execute(
        table.update().where(table.c.id == delivery.id).values(status=DeliveryStatus.sending)
    )
    session.commit()
    raw = _dsn(delivery, "minister@example.org")
    assert _receive(session, mail, raw, _bounce_address(delivery)) == service.LATER
    assert session.scalars(select(Bounce)).all() == []


def test_forged_unknown_and_foreign_addresses_are_dropped_and_counted(
    session: Session, mail: Settings
) -> None:
    delivery = _sent(session, mail)
    raw = _dsn(delivery, "minister@example.org")
    good = _bounce_address(delivery)
    forged = good.replace(good.split("-")[1][:5], "aaaaa")
    unknown = returns.address("replies", SECRET, delivery.id + 1000, DOMAIN)
    assert _receive(session, mail, raw, forged) == service.FORGED
    assert _receive(session, mail, raw, forged) == service.FORGED
    assert _receive(session, mail, raw, unknown) == service.UNKNOWN
    assert _receive(session, mail, raw, "postmaster@" + DOMAIN) == service.NOT_OURS
    counts = {d.reason: d.n for d in session.scalars(select(InboundDropped))}
    assert counts == {"forged": 2, "unknown": 1, "not_ours": 1}
    assert session.scalars(select(Bounce)).all() == []


def _answer(text: str, *, subject: str = "Re: Free them now", **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "A. President <president@example.org>")
    msg["Subject"] = subject
    msg["Message-ID"] = headers.pop("Message_ID", "<answer@example.org>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg.as_bytes()


def test_replies_are_kept_apart_and_the_supporter_is_told_once(
    session: Session, mail: Settings, sink: SmtpSink
) -> None:
    delivery = _sent(session, mail, email="ada@example.net", notify_replies=True)
    reply_to = returns.address("replies", SECRET, delivery.id, DOMAIN)
    [letter_mail] = [m for m in sink.messages if "president@example.org" in m.rcpt_tos]
    assert letter_mail.message["Reply-To"].addresses[0].addr_spec == reply_to
    assert letter_mail.mail_from == _bounce_address(delivery)

    away = _answer("Away.", subject="Out of office", Message_ID="<away@example.org>")
    assert _receive(session, mail, away, _bounce_address(delivery)) == service.AUTO_REPLY
    first = _answer("Received. Write to ada@example.net? No.", Message_ID="<a1@example.org>")
    assert _receive(session, mail, first, reply_to, mail_from="p@example.org") == service.REPLY
    second = _answer("And again.", Message_ID="<a2@example.org>")
    assert _receive(session, mail, second, reply_to, mail_from="p@example.org") == service.REPLY
    assert _receive(session, mail, second, reply_to, mail_from="p@example.org") == (
        service.DUPLICATE
    )
    replies = session.scalars(select(Reply).order_by(Reply.id)).all()
    assert [r.kind for r in replies] == [ReplyKind.auto, ReplyKind.human, ReplyKind.human]
    # Never the supporter's address in what is kept.
    assert replies[1].text == "Received. Write to [the supporter's address]? No."
    notices = session.scalars(select(Delivery).where(Delivery.channel == Channel.reply_notice))
    [notice] = notices.all()
    assert notice.recipients == ["ada@example.net"]
    drain(mail)
    [told] = [m for m in sink.messages if m.rcpt_tos == ["ada@example.net"]]
    assert "answered" in told.message["Subject"]
    assert "Received." not in told.data.decode()  # the notice says so; it does not forward

    assert delivery.letter is not None
    page = inbox.replies(session, appeal=delivery.letter.appeal, who=ADMIN)
    assert page.counts == {"human": 2, "auto": 1}
    assert [r.text for r in page.items][-1].startswith("Received.")


def test_a_bounced_letter_goes_again_only_to_the_fixed_address(
    session: Session, mail: Settings, sink: SmtpSink
) -> None:
    delivery = _sent(session, mail)
    _receive(session, mail, _dsn(delivery, "minister@example.org"), _bounce_address(delivery))
    assert delivery.letter is not None
    appeal = delivery.letter.appeal
    fixed = [TARGETS[0], {"name": "A. Minister", "email": "minister@example.net"}]
    make_appeal(session, require_confirmation=False, targets=fixed)  # the organiser's edit
    page = inbox.bounces(session, appeal=appeal, who=ADMIN)
    assert [(a.recipient, a.current) for a in page.addresses] == [("minister@example.org", False)]
    before = len(sink.messages)
    assert inbox.retry_bounced(session, appeal=appeal, who=ADMIN, now=utcnow()) == 1
    assert delivery_service.take_enqueued(session)[-1:] == [delivery.id]
    session.commit()
    drain(mail)
    [again] = sink.messages[before:]
    assert again.rcpt_tos == ["minister@example.net"]  # not the president, not the copies
    session.expire_all()
    assert session.get(Delivery, delivery.id).status is DeliveryStatus.sent  # type: ignore[union-attr]
    assert inbox.bounces(session, appeal=appeal, who=ADMIN).addresses == []
    assert appeal_data()["slug"] == appeal.slug


def test_a_fax_gateway_refusing_the_number_bounces_the_fax(
    session: Session, db_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    settings = make_settings(
        db_url,
        tmp_path,
        smtp_url=sink.url,
        bounce_domain=DOMAIN,
        fax_gateway="{number}@fax.example.net",
    )
    appeal = make_appeal(session, require_confirmation=False)  # the target has a fax
    letter = sign(session, appeal, settings)
    session.commit()
    drain(settings)
    fax = session.scalars(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.fax)
    ).one()
    [sent] = [m for m in sink.messages if m.rcpt_tos == ["77279000000@fax.example.net"]]
    assert sent.mail_from == _bounce_address(fax)
    raw = _dsn(fax, "77279000000@fax.example.net")
    assert _receive(session, settings, raw, _bounce_address(fax)) == service.BOUNCE
    assert _status(session, fax) is DeliveryStatus.bounced


def _status(session: Session, delivery: Delivery) -> DeliveryStatus:
    session.expire_all()
    found = session.get(Delivery, delivery.id)
    assert found is not None
    return found.status
