"""MIME messages: what set_content() would make, without its cost; headers stay apart."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from app.delivery import messages

BODIES = {
    "short ascii": "Dear President,\n\nRelease them.\n",
    "long ascii paragraphs": ("We protest the threats against the strike committee. " * 8 + "\n")
    * 6,
    "short cyrillic": "Уважаемый Президент!\n\nОсвободите их.\n",
    "long cyrillic": ("Мы протестуем против угроз забастовочному комитету. " * 6 + "\n") * 6,
    "latin with accents": ("Müller, Bücher und Straße grüßen den Präsidenten herzlich. " * 4)
    + "\n",
    "line endings": "one\r\ntwo\rthree\n\n",
    "one very long line": "x" * 3000,
    "empty": "",
}


def build(body: str, **overrides: object) -> EmailMessage:
    values: dict[str, object] = {
        "subject": "Free them now",
        "body": body,
        "from_name": "Ada Example via Solidarity",
        "from_address": "letters@localhost",
        "to": [messages.mailbox("A. President", "president@example.org")],
        "cc": [messages.plain("copies@example.org")],
        "message_id": "<outcry.letter.x.1@localhost>",
        "date": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        "language": "ru",
    }
    values.update(overrides)
    return messages.build(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_body_is_encoded_as_set_content_encodes_it(body: str) -> None:
    reference = EmailMessage()
    reference.set_content(body, charset="utf-8")

    message = build(body)

    assert message["Content-Transfer-Encoding"] == reference["Content-Transfer-Encoding"]
    assert message.get_payload() == reference.get_payload()
    raw = message.as_bytes(policy=SMTP)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    parsed = message_from_bytes(raw, policy=policy.default)
    # A 7bit or 8bit body read back off the wire keeps the wire's CRLFs.
    assert parsed.get_content().replace("\r\n", "\n") == reference.get_content()


def test_headers_reused_between_messages_never_mix() -> None:
    first = build("a", to=[messages.plain("one@example.org")], subject="First")
    second = build("b", to=[messages.plain("two@example.org")], subject="Second")
    again = build("c", to=[messages.plain("one@example.org")], subject="First")

    assert str(first["To"]) == "one@example.org"
    assert str(second["To"]) == "two@example.org"
    assert (str(again["To"]), str(again["Subject"])) == ("one@example.org", "First")


def test_names_with_commas_quotes_and_cyrillic_survive() -> None:
    message = build(
        "x",
        to=[messages.mailbox('Bisembaev, Adil "the President"', "president@example.org")],
        from_name="Анна Пример via Solidarity",
    )
    parsed = message_from_bytes(message.as_bytes(policy=SMTP), policy=policy.default)

    [to] = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == (
        'Bisembaev, Adil "the President"',
        "president@example.org",
    )
    assert parsed["From"].addresses[0].display_name == "Анна Пример via Solidarity"


def test_a_line_break_in_any_value_adds_no_header() -> None:
    message = build(
        "x",
        subject="Hi\r\nBcc: victim@example.com",
        to=[messages.mailbox("A\nBcc: victim2@example.com", "president@example.org")],
        from_name="Ada\r\nX-Evil: 1",
    )
    parsed = message_from_bytes(message.as_bytes(policy=SMTP), policy=policy.default)

    assert parsed["Bcc"] is None
    assert parsed["X-Evil"] is None
    assert [a.addr_spec for a in parsed["To"].addresses] == ["president@example.org"]


NON_ASCII_NAMES = {
    "short cyrillic": "Анна Пример via Solidarity",
    "kazakh, long runs": (
        "Айгүл Серікбайқызы Нұрмағамбетова via Қазақстан жұмысшыларымен ынтымақтастық"
    ),
    "one 200-letter word": "Ж" * 200 + " via Кампания",
    "specials among cyrillic": 'O\'Brien, Сергей (СТК) "Boss" \\ a.b via X',
    "emoji": "😀 Emoji Name via X",
    "right to left": "שלום עולם via X",
    "looks encoded already": "=?utf-8?b?SGk=?= Иван x=?y via X",
    "zero width": "Zero\u200bwidth Иван via X",
}


def from_value(raw: bytes, header: str = "From") -> str:
    """The header's value as sent, unfolded."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = head.replace("\r\n ", " ").split("\r\n")
    [value] = [line.split(": ", 1)[1] for line in unfolded if line.startswith(f"{header}: ")]
    return value


@pytest.mark.parametrize("name", NON_ASCII_NAMES.values(), ids=NON_ASCII_NAMES.keys())
def test_a_non_ascii_name_is_encoded_and_folded_and_reads_back_as_written(name: str) -> None:
    reply_to = messages.mailbox(name, "supporter@example.net")
    raw = build("x", from_name=name, reply_to=reply_to).as_bytes(policy=SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert all(len(w) <= 75 for w in re.findall(r"=\?utf-8\?b\?[^?]*\?=", head.decode()))
    for header, address in (("From", "letters@localhost"), ("Reply-To", "supporter@example.net")):
        # What a mail client shows: RFC 2047 decoding, as the stdlib's decode_header does.
        shown = str(make_header(decode_header(from_value(raw, header))))
        assert shown == f"{messages.header_text(name)} <{address}>"
        [parsed] = message_from_bytes(raw, policy=policy.default)[header].addresses
        assert parsed.addr_spec == address
        # Python's own parser keeps the space between two encoded-words where a long
        # run had to be split; nothing else differs.
        assert parsed.display_name.replace(" ", "") == messages.header_text(name).replace(" ", "")


ASCII_NAMES = {
    "plain": "Ada Example via Solidarity Campaign",
    "specials": 'A. O\'Brien, "Boss" (STK) \\ x@y; via [X]',
    "long, folds between words": " ".join(["Supporter"] * 20) + " via X",
    "long, one word": "Dr. " + "x" * 90 + " via X",
    "looks encoded": "Hi =?utf-8?b?SGk=?= via X",
}


@pytest.mark.parametrize("name", ASCII_NAMES.values(), ids=ASCII_NAMES.keys())
def test_an_ascii_name_reads_back_as_written(name: str) -> None:
    raw = build("x", from_name=name).as_bytes(policy=SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    [sender] = message_from_bytes(raw, policy=policy.default)["From"].addresses
    assert sender.addr_spec == "letters@localhost"
    assert sender.display_name.replace(" ", "") == name.replace(" ", "")
    if "=?" not in name and "x" * 90 not in name:
        # No encoded-words, so nothing for CPython gh-128110 to space out.
        assert sender.display_name == name


def test_a_short_cyrillic_name_reads_back_exactly_even_in_python() -> None:
    raw = build("x", from_name="Айгуль Пример via Solidarity Campaign").as_bytes(policy=SMTP)
    assert from_value(raw).endswith(" via Solidarity Campaign <letters@localhost>")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["From"].addresses[0].display_name == "Айгуль Пример via Solidarity Campaign"
    assert build("x", from_name="Айгуль")["From"].addresses[0].display_name == "Айгуль"
