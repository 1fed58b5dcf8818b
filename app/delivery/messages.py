"""MIME messages as pure functions of their inputs: no settings, no clock, no database."""

from __future__ import annotations

import base64
import binascii
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import quoprimime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, parseaddr
from functools import lru_cache

# Any control or line-breaking character in a header value could start a new header.
_HEADER_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
HEADER_MAX = 900
_MAX_LINE: int = email.policy.default.max_line_length or 78


def header_text(value: str) -> str:
    """Make `value` safe for one header: controls become spaces, runs of space collapse."""
    return " ".join(_HEADER_BAD.sub(" ", value).split())[:HEADER_MAX]


def mailbox(display_name: str, address: str) -> Address:
    """`"Display Name" <local@domain>` with the name made header-safe and quoted as needed."""
    local, _, domain = address.rpartition("@")
    return Address(display_name=header_text(display_name), username=local, domain=domain)


def from_display(signer_name: str, sender_name: str) -> str:
    """The From name of a letter: the signer, sent via the campaign (never their address)."""
    return f"{header_text(signer_name)} via {header_text(sender_name)}"


def message_id(kind: str, public_id: str, unique: str | int, mail_from: str) -> str:
    """The Message-ID of one delivery's message: made once when the delivery is written and
    kept with it, so every resend after a crash is recognisably the same message."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<outcry.{kind}.{public_id}.{unique}@{domain}>"


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message with its SMTP envelope, ready for a transport."""

    message: EmailMessage
    sender: str
    recipients: tuple[str, ...]
    message_id: str
    attachments: tuple[Attachment, ...] = field(default=())


class _FoldOnce:
    """A header that remembers how it folds: the To, Cc and Subject an appeal's letters
    share are folded once per policy, not once a message."""

    def fold(self, *, policy: Policy) -> str:
        key = (policy.linesep, policy.max_line_length, getattr(policy, "utf8", False))
        folded: dict[tuple[object, ...], str] = self.__dict__.setdefault("_folded", {})
        if key not in folded:
            folded[key] = super().fold(policy=policy)  # type: ignore[misc]
        return folded[key]


class _HeaderClasses(HeaderRegistry):
    """The email package's header registry, making each header class once: the original
    builds a new class with type() for every header it parses."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            base = self.registry.get(key, self.default_class)
            made = type("_" + base.__name__, (_FoldOnce, base, self.base_class), {})
            self._made[key] = made
        return made


class _Unstructured(_FoldOnce, UnstructuredHeader, BaseHeader):
    pass


# email.policy.default, but with header classes made once.
POLICY = email.policy.default.clone(header_factory=_HeaderClasses())


@lru_cache(maxsize=4096)
def _header(name: str, value: str) -> BaseHeader:
    """A parsed header. The email package re-parses every value it is given, which was most
    of the cost of a message; the To, Cc and Subject of one appeal's letters repeat."""
    header: BaseHeader = POLICY.header_factory(name, value)
    return header


# RFC 5322 atext: a word made only of these may stand in a display name as it is.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
# An RFC 2047 encoded-word is at most 75 characters. 42 bytes of UTF-8 make 56 of base64,
# 68 with "=?utf-8?b?" and "?=": one fits on a line after "Reply-To: ".
_EW_BYTES = 42


def _atom(word: str) -> bool:
    """True if `word` may stand in a display name as it is (and cannot be mistaken for
    an encoded-word)."""
    return _ATEXT.fullmatch(word) is not None and "=?" not in word


def _encoded_words(text: str) -> list[str]:
    """`text` as 'B' encoded-words, each of whole characters, split after a space where
    one is near (a decoder joins adjacent encoded-words without the space between)."""
    chunks: list[str] = []
    chunk, size = "", 0
    for char in text:
        width = len(char.encode())
        if size + width > _EW_BYTES:
            cut = chunk.rfind(" ") + 1 or len(chunk)
            if len(chunk[cut:].encode()) + width > _EW_BYTES:
                cut = len(chunk)  # no room after the space: split right here
            chunks.append(chunk[:cut])
            chunk = chunk[cut:]
            size = len(chunk.encode())
        chunk += char
        size += width
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(c.encode()).decode()}?=" for c in chunks]


def _raw_mailbox(header: str, display: str, address: str) -> str | None:
    """`display <address>` for `header`, encoded and folded here in one pass; None where
    the email package had better do it (no name, an address too long to fold here).

    The package parses the value it is given and folds the tree it parsed: for a
    Cyrillic name that costs about 1 ms, six times the rest of the message, and even a
    Latin name's parse was a quarter of a worker's CPU. The name is unique to each letter,
    so no cache helps."""
    if not display or not address.isascii() or (display.isascii() and "=?" in display):
        # (A Latin name that looks like an encoded-word is left to the email package,
        # which keeps it as it is; in a quoted-string a lenient reader would decode it.)
        return None
    words = display.split(" ")
    pieces: list[str] = []
    if display.isascii():
        if all(_atom(word) for word in words):
            pieces = words
        else:  # as the email package does: the whole name one quoted-string
            pieces = ['"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"']
    else:
        # Words the name may carry as they are stay atoms; each run of the others
        # (non-ASCII, or with specials that would need quoting) becomes encoded-words.
        run: list[str] = []
        for word in words:
            if _atom(word):
                if run:
                    pieces += _encoded_words(" ".join(run))
                    run = []
                pieces.append(word)
            else:
                run.append(word)
        if run:
            pieces += _encoded_words(" ".join(run))
    pieces.append(f"<{address}>")
    lines = [f"{header}: {pieces[0]}"]
    for piece in pieces[1:]:
        if len(lines[-1]) + 1 + len(piece) <= _MAX_LINE:
            lines[-1] += " " + piece
        else:
            lines.append(" " + piece)
    if any(len(line) > _MAX_LINE for line in lines):
        return None
    return "\n".join(lines)[len(header) + 2 :]


def _set_mailbox(msg: EmailMessage, header: str, mailbox: Address) -> None:
    raw = _raw_mailbox(header, mailbox.display_name, mailbox.addr_spec)
    if raw is None:
        msg[header] = mailbox
    else:
        # Stored unparsed: every line is already short enough, so the policy writes it
        # out as it is (and parses it only if someone reads the header back).
        msg.set_raw(header, raw)


def _text_payload(body: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, payload) of a UTF-8 text body, exactly as the email
    package's set_content() makes them (7bit or 8bit for short lines, else the shorter of
    quoted-printable and base64, so no line passes SMTP's 998-octet limit), without the
    cost of its header parsing."""
    lines = body.encode("utf-8").splitlines()
    data = b"\n".join(lines) + b"\n"
    if max(map(len, lines), default=0) <= _MAX_LINE:
        if data.isascii():
            return "7bit", data.decode("ascii")
        # As the email package keeps 8-bit payloads: the bytes, surrogate-escaped.
        return "8bit", data.decode("ascii", "surrogateescape")
    # The package's choice: whichever encodes the first ten lines shorter.
    sniff = b"\n".join(lines[:10]) + b"\n"
    if len(quoprimime.body_encode(sniff.decode("latin-1"), _MAX_LINE)) > len(
        binascii.b2a_base64(sniff)
    ):
        step = _MAX_LINE // 4 * 3
        chunks = (data[i : i + step] for i in range(0, len(data), step))
        return "base64", "".join(binascii.b2a_base64(c).decode("ascii") for c in chunks)
    return "quoted-printable", quoprimime.body_encode(data.decode("latin-1"), _MAX_LINE)


def build(
    *,
    subject: str,
    body: str,
    from_name: str,
    from_address: str,
    to: Sequence[Address],
    cc: Sequence[Address] = (),
    reply_to: Address | None = None,
    message_id: str,
    date: datetime,
    language: str,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """A UTF-8 text message; every header built from user input goes through header_text."""
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = _header("Subject", header_text(subject))
    _set_mailbox(msg, "From", mailbox(from_name, from_address))
    if to:  # a fax for the fax folder has a number, not an address
        msg["To"] = _header("To", ", ".join(str(a) for a in to))
    if cc:
        msg["Cc"] = _header("Cc", ", ".join(str(a) for a in cc))
    if reply_to is not None:
        _set_mailbox(msg, "Reply-To", reply_to)
    # Our own ASCII values: kept unstructured, which spares parsing them as a date and an
    # msg-id (it is the same on the wire).
    msg["Date"] = _Unstructured("Date", format_datetime(date))
    msg["Message-ID"] = _Unstructured("Message-ID", header_text(message_id))
    msg["MIME-Version"] = _header("MIME-Version", "1.0")
    cte, payload = _text_payload(body)
    msg["Content-Type"] = _header("Content-Type", 'text/plain; charset="utf-8"')
    msg["Content-Transfer-Encoding"] = _header("Content-Transfer-Encoding", cte)
    msg["Content-Language"] = _header("Content-Language", header_text(language))
    msg.set_payload(payload)
    for attachment in attachments:
        msg.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=header_text(attachment.filename),
        )
    if "Content-Language" not in msg:
        # The first attachment turned the message into multipart/mixed and moved every
        # Content-* header down to the text part; the whole message is in this language.
        msg["Content-Language"] = _header("Content-Language", header_text(language))
    return msg


def plain(address: str) -> Address:
    """An address without a display name."""
    return mailbox("", address)
