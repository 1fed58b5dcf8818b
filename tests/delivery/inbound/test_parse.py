"""Reading inbound mail: genuine Postfix DSNs (stored as they came, from the private
Postfix of tests/e2e/test_inbound_postfix.py), other bounce shapes, automatic answers,
and text taken from hostile messages without rendering anything."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from app.delivery import returns
from app.delivery.inbound import parse

HERE = Path(__file__).parent


def _read(name: str) -> EmailMessage:
    return parse.read((HERE / name).read_bytes())


def test_a_postfix_failure_names_the_recipient_and_the_remote_reply() -> None:
    report = parse.bounce(_read("postfix-failed.eml"))
    assert report is not None
    [failure] = report.failures
    assert failure.recipient == "gone@example.org"
    assert failure.permanent
    assert failure.status == "5.1.1"
    assert failure.reply == (
        "550 5.1.1 <gone@example.org>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    # The organiser reads the report; the returned letter (the supporter's name, the
    # reply address) is not kept.
    assert "Diagnostic-Code: smtp; 550 5.1.1" in report.report
    assert "could not\nbe delivered" in report.report
    assert "Release them." not in report.report
    assert "replies+" not in report.report


def test_a_postfix_delay_warning_is_temporary() -> None:
    report = parse.bounce(_read("postfix-delayed.eml"))
    assert report is not None
    [failure] = report.failures
    assert (failure.recipient, failure.permanent, failure.status) == (
        "full@example.org",
        False,
        "4.2.2",
    )
    assert "Mailbox full" in failure.reply


def test_a_dsn_saying_delivered_is_not_a_bounce() -> None:
    raw = (HERE / "postfix-failed.eml").read_bytes()
    delivered = raw.replace(b"Action: failed", b"Action: delivered").replace(
        b"Status: 5.1.1", b"Status: 2.0.0"
    )
    assert parse.bounce(parse.read(delivered)) is None


QMAIL = b"""\
From: MAILER-DAEMON@mx.example.net
To: bounces+1-abcdefghijklmnopqrstu@bounces.example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.org>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

From: Ada via Campaign <letters@example.org>
"""


def test_a_qmail_bounce_is_read_by_flufl_bounce() -> None:
    report = parse.bounce(parse.read(QMAIL))
    assert report is not None
    [failure] = report.failures
    assert failure.recipient == "nobody@example.org"
    assert failure.permanent
    assert failure.status == "5.1.1"


def _reply(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "A. President <president@example.org>"
    msg["To"] = "replies+1-abcdefghijklmnopqrstu@bounces.example.org"
    msg["Subject"] = headers.pop("Subject", "Re: Free them now")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("We have received your letter.")
    return msg


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"X_Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"X_Auto_Response_Suppress": "All"},
        {"Subject": "Out of Office: Free them now"},
        {"Subject": "Automatic reply: Free them now"},
        {"Subject": "Автоответ: Освободите их"},
    ],
)
def test_automatic_answers_are_told_apart(headers: dict[str, str]) -> None:
    assert parse.is_automatic(_reply(**headers))
    assert parse.bounce(_reply(**headers)) is None


def test_a_human_reply_is_not_automatic() -> None:
    assert not parse.is_automatic(_reply(Auto_Submitted="no"))
    assert parse.is_automatic(_reply(), null_sender=True)


def test_text_of_an_html_reply_never_renders_it() -> None:
    msg = EmailMessage()
    msg["From"] = "president@example.org"
    msg["Subject"] = "Re"
    msg.set_content(
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
        "<body><p>We will <b>consider</b> it.</p><img src='http://tracker.example.net/x'>"
        "</body></html>",
        subtype="html",
    )
    msg.add_attachment(
        b"MZ\x90\x00 not run", maintype="application", subtype="x-msdownload", filename="answer.exe"
    )
    assert parse.body_text(msg) == "We will consider it."


def test_text_prefers_the_plain_part_and_is_bounded() -> None:
    msg = EmailMessage()
    msg.set_content("x" * (parse.MAX_TEXT * 2) + "\x00\x1b[31m")
    msg.add_alternative("<p>html</p>", subtype="html")
    text = parse.body_text(msg)
    assert len(text) == parse.MAX_TEXT
    assert set(text) == {"x"}


def test_return_tokens_cannot_be_forged_or_altered() -> None:
    secret, domain = "s3cret", "bounces.example.org"
    address = returns.address("bounces", secret, 12345, domain)
    local = address.split("@")[0]
    assert len(local) <= 64
    found = returns.parse(secret, address.upper(), domain)  # servers may fold the case
    assert found == returns.Found(kind="bounces", delivery_id=12345)
    # Another delivery's id with this MAC, another secret, another domain.
    other = address.replace("9ix-", "9iy-")
    assert returns.parse(secret, other, domain) == returns.Found("bounces", None)
    assert returns.parse("other", address, domain) == returns.Found("bounces", None)
    assert returns.parse(secret, address, "example.net") is None
    assert returns.parse(secret, "letters@bounces.example.org", domain) is None


NESTED = (
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 3000
)
HOSTILE = [
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: text/plain\r\n\r\nno end",
    b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe words",
    b"Subject: =?utf-8?b?!!!not-base64?= =?x-unknown?q?=FF?=\r\n\r\nbody",
    b"Content-Transfer-Encoding: base64\r\n\r\n%%%% not base64 at all ****",
    b"From: <<<@@@>>>\r\nSubject: \x00\x1b[31mred\r\n\r\n" + b"A" * 200_000 + b"\x00",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
    b"--r\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n\r\n"
    b"Final-Recipient: ;;;\r\nAction: failed\r\nStatus: 9.9.9\r\n--r--\r\n",
    NESTED,
    b"",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_messages_never_stop_the_reader(raw: bytes) -> None:
    found = parse.classify(raw, null_sender=False)
    if found is not None and found.answer is not None:
        text = found.answer.text
        assert len(text) <= parse.MAX_TEXT
        assert not any(c in text for c in "\x00\x1b")
        assert "\x00" not in found.answer.subject
