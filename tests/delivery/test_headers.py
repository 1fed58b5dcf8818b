"""No signer can forge a letter: whatever the name, each message has exactly the mailboxes
Outcry meant, read the way Python reads them (policy.default and compat32) and the way a
strict RFC 5322 reader does (tests/support/rfc5322.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.text import one_line
from app.delivery import messages
from tests.appeals.factories import make_appeal
from tests.conftest import drain
from tests.letters.factories import signature
from tests.support import rfc5322

CAMPAIGN = "letters@example.org"
SUPPORTER = "supporter@example.net"
TARGET = "president@example.org"
COPIES = ("copies@example.org", "campaign@example.net")

# Characters that mean something in an address header, and words that look like one.
HOSTILE = [
    *' "<>(),;:@[]\\.=?_\t',
    "=?utf-8?q?",
    "=?utf-8?b?",
    "?=",
    "=?utf-8?q?ceo=40bank=2Eexample=2C?=",
    "<ceo@bank.example>",
    "ceo@bank.example,",
    " via ",
    "\u202e",  # right-to-left override
    "\u200b",  # zero width space
    "\u00a0",  # no-break space
    "😀",
    "Жанар",
]
# Any text the signing form accepts as a one-line field (it refuses controls).
ANY_CHAR = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))


def form_field(max_size: int) -> st.SearchStrategy[str]:
    """What a one-line form field of at most `max_size` characters can hold."""
    parts = st.lists(st.one_of(st.sampled_from(HOSTILE), ANY_CHAR), max_size=max_size)
    return (
        parts.map("".join)
        .map(lambda text: text.replace("\t", " "))
        .map(one_line)
        .filter(lambda text: 1 <= len(text) <= max_size)
    )


def _python_leaves_spaces_between_encoded_words() -> bool:
    """CPython gh-128110: policy.default keeps the white space between two adjacent
    encoded-words of a display name, which RFC 2047 says a reader drops."""
    raw = b"From: =?utf-8?b?QSA=?= =?utf-8?b?Qg==?= <a@example.org>\r\n\r\n"
    name = message_from_bytes(raw, policy=policy.default)["From"].addresses[0].display_name
    return bool(name == "A  B")


PYTHON_QUIRK = _python_leaves_spaces_between_encoded_words()


def flatten(message: EmailMessage) -> bytes:
    # As aiosmtplib and the outbox write it.
    return message.as_bytes(policy=policy.SMTP)


def assert_mailboxes(raw: bytes, header: str, expected: list[tuple[str, str]]) -> None:
    """`header` appears once and holds exactly `expected` (display name, address), for
    Python's two parsers and for the strict reader."""
    # The strict reader, line by line as on the wire.
    lines = rfc5322.header_lines(raw, header)
    assert len(lines) == 1, f"{header} appears {len(lines)} times"
    assert all(len(line) <= 78 for line in lines[0]), lines[0]
    value = rfc5322.unfold(lines[0])
    strict = [(m.display_name, m.addr_spec) for m in rfc5322.mailboxes(value)]
    assert strict == expected

    # Python's modern parser.
    modern = message_from_bytes(raw, policy=policy.default)
    assert len(modern.get_all(header, [])) == 1
    parsed = modern[header]
    assert not parsed.defects, parsed.defects
    addresses = [(a.display_name, a.addr_spec) for a in parsed.addresses]
    lenient = [(m.display_name, m.addr_spec) for m in rfc5322.mailboxes(value, PYTHON_QUIRK)]
    assert addresses == lenient

    # Python's compat32 parser, as older tools read it, with RFC 2047 decoding after.
    compat = message_from_bytes(raw, policy=policy.compat32)
    pairs = getaddresses(compat.get_all(header, []))
    assert [(str(make_header(decode_header(n))), a) for n, a in pairs] == expected


def letter(name: str, sender: str, target: str, *, share: bool) -> bytes:
    """The e-mail to a target, built as delivery/compose.py builds it."""
    return flatten(
        messages.build(
            subject=f"Free them now, says {name}",
            body="Dear President,\n",
            from_name=messages.from_display(name, sender),
            from_address=CAMPAIGN,
            to=[messages.mailbox(target, TARGET)],
            cc=[messages.plain(a) for a in COPIES],
            reply_to=messages.mailbox(name, SUPPORTER) if share else None,
            message_id="<outcry.letter.x.1@example.org>",
            date=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
            language="en",
        )
    )


def to_supporter(name: str, sender: str) -> bytes:
    """A confirmation or copy: from the campaign, to the supporter."""
    return flatten(
        messages.build(
            subject="Please confirm your letter",
            body="Confirm here.\n",
            from_name=sender,
            from_address=CAMPAIGN,
            to=[messages.mailbox(name, SUPPORTER)],
            message_id="<outcry.confirmation.x.2@example.org>",
            date=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
            language="en",
        )
    )


ISSUE_NAMES = [
    one_line(name)
    for name in [
        # The names of issue 11: a folded name holding an address, an encoded-word look-alike,
        # quotes and angle brackets that need folding.
        "Ada <ceo@bank.example> padded out so that the header has to be folded by the email "
        "package lib",
        "=?utf-8?q?ceo=40bank=2Eexample=2C?=",
        'Ada "the boss" <ceo@bank.example>, Bob <x@y.example>; ' + "padding " * 12,
        "Айгүл <ceo@bank.example>, " + "Ж" * 150,
        "x" * 200,
        '"' * 200,
        "=?utf-8?b?" + "QUFB" * 40 + "?=",
    ]
]


@settings(max_examples=200)
@given(name=form_field(200), sender=form_field(200), target=form_field(200), share=st.booleans())
@example(name=ISSUE_NAMES[0], sender="Campaign", target="A. President", share=True)
@example(name=ISSUE_NAMES[1], sender="Campaign", target="A. President", share=True)
def test_a_letter_comes_from_the_campaign_whatever_the_names(
    name: str, sender: str, target: str, share: bool
) -> None:
    raw = letter(name, sender, target, share=share)

    assert_mailboxes(raw, "From", [(f"{name} via {sender}", CAMPAIGN)])
    if share:
        assert_mailboxes(raw, "Reply-To", [(name, SUPPORTER)])
    else:
        assert rfc5322.header_lines(raw, "Reply-To") == []
    assert_mailboxes(raw, "To", [(target, TARGET)])
    assert_mailboxes(raw, "Cc", [("", a) for a in COPIES])
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == f"Free them now, says {name}"
    assert parsed["Bcc"] is None


@settings(max_examples=200)
@given(name=form_field(200), sender=form_field(200))
def test_a_confirmation_goes_to_exactly_the_supporter(name: str, sender: str) -> None:
    raw = to_supporter(name, sender)

    assert_mailboxes(raw, "To", [(name, SUPPORTER)])
    assert_mailboxes(raw, "From", [(sender, CAMPAIGN)])


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_the_names_of_the_issue_cannot_forge_a_letter(name: str) -> None:
    raw = letter(name, "Solidarity Campaign", "A. President", share=True)
    assert_mailboxes(raw, "From", [(f"{name} via Solidarity Campaign", CAMPAIGN)])
    assert_mailboxes(raw, "Reply-To", [(name, SUPPORTER)])
    assert_mailboxes(to_supporter(name, "Solidarity Campaign"), "To", [(name, SUPPORTER)])


def test_an_internationalised_domain_is_written_as_its_a_label() -> None:
    raw = flatten(
        messages.build(
            subject="s",
            body="b",
            from_name="Ada via Campaign",
            from_address=CAMPAIGN,
            to=[messages.mailbox("Müller", "user@bücher.example")],
            message_id="<m@example.org>",
            date=datetime(2026, 11, 30, tzinfo=UTC),
            language="de",
        )
    )
    assert_mailboxes(raw, "To", [("Müller", "user@xn--bcher-kva.example")])


def test_a_forged_name_signed_through_the_api_forges_nothing(
    client: TestClient, settings: Settings, session: Session
) -> None:
    """Issue 11 as it was found: sign with a name holding an address, confirm, deliver,
    and read the .eml files the outbox holds."""
    make_appeal(session)
    session.commit()
    name = ISSUE_NAMES[0]
    response = client.post(
        "/api/v1/appeals/free-them/letters",
        json=signature(name=name, email="spoof1@example.net", share_email=True, copy_to_me=True),
    )
    assert response.status_code == 202, response.text
    drain(settings)
    [confirmation] = settings.outbox_dir.glob("*.confirm*.eml")
    assert_mailboxes(confirmation.read_bytes(), "To", [(name, "spoof1@example.net")])
    token = re.search(rb"/confirm/(\S+)", confirmation.read_bytes())
    assert token is not None
    confirmed = client.post("/api/v1/letters/confirm", json={"token": token.group(1).decode()})
    assert confirmed.status_code == 200, confirmed.text
    drain(settings)

    # The letter to the target and the supporter's copy of it.
    letters = [p.read_bytes() for p in settings.outbox_dir.glob("*.letter.*.eml")]
    [raw] = [r for r in letters if b"president@example.org" in r.split(b"\r\n\r\n")[0]]
    assert_mailboxes(raw, "From", [(f"{name} via Solidarity Campaign", settings.mail_from_address)])
    assert_mailboxes(raw, "Reply-To", [(name, "spoof1@example.net")])
    assert_mailboxes(raw, "To", [("A. President", "president@example.org")])
    [copy] = [r for r in letters if r is not raw]
    assert_mailboxes(copy, "To", [(name, "spoof1@example.net")])


def test_an_address_that_needs_smtputf8_is_refused_at_signing(
    client: TestClient, session: Session
) -> None:
    make_appeal(session)
    session.commit()
    response = client.post(
        "/api/v1/appeals/free-them/letters", json=signature(email="юзер@example.net")
    )
    assert response.status_code == 422
    assert "email" in response.json()["fields"]
