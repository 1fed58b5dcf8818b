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

import idna

# Any control or line-breaking character in a header value could start a new header.
_HEADER_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
HEADER_MAX = 900
_MAX_LINE: int = email.policy.default.max_line_length or 78


_SPACES = re.compile(r" {2,}")


def header_text(value: str) -> str:
    """Make `value` safe for one header: controls become spaces, runs of space collapse."""
    return _SPACES.sub(" ", _HEADER_BAD.sub(" ", value)).strip(" ")[:HEADER_MAX]


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
    return f"<outcry.{kind}.{public_id}.{unique}@{_domain(mail_from)}>"


@lru_cache(maxsize=16)
def _domain(mail_from: str) -> str:
    # Parsed once: every signature's confirmation e-mail is given a Message-ID.
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


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


# --- Headers written here -------------------------------------------------------------------
#
# Every header that carries a name (From, Reply-To, To, Cc) and the Subject is encoded and
# folded here, in one pass, and stored so that the email package writes it out as it is.
# The package's own folding was the forgery: a long name holding `<ceo@bank.example>` lost
# its quotes when the package refolded it, and a name that looked like an encoded-word was
# decoded back into raw text, so a signer could make a letter come from any address.
# It was slow too: parsing a Cyrillic name cost about 1 ms, six times the rest of a message.

# RFC 5322 atext: a word made only of these may stand in a display name as it is.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
# An RFC 2047 encoded-word is at most 75 characters. 42 bytes of UTF-8 make 56 of base64,
# 68 with "=?utf-8?b?" and "?=": one fits on a line after "Reply-To: ".
_EW_BYTES = 42
# The longest word written on a line of its own: a folded line is " " + word.
_WORD_MAX = _MAX_LINE - 1
# A local part that needs no quoting (email-validator allows no other in an address we keep).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _atom(word: str) -> bool:
    """True if `word` may stand in a display name as it is (and cannot be mistaken for
    an encoded-word)."""
    return _ATEXT.fullmatch(word) is not None and "=?" not in word


def _encoded_words(text: str) -> list[str]:
    """`text` as 'B' encoded-words, each of whole characters, split after a space where
    one is near. The space stays inside the encoded-word before the split: a reader drops
    the white space *between* two encoded-words (RFC 2047 6.2)."""
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


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quoted_words(words: list[str]) -> list[str]:
    """Printable ASCII words with specials, as few quoted-strings as fit on a line each
    (never folded inside one: a folded quoted-string reads back with the line break in it);
    a word too long for a line becomes encoded-words."""
    pieces: list[str] = []
    group: list[str] = []
    for word in words:
        if len(_quoted(word)) > _WORD_MAX:
            if group:
                pieces.append(_quoted(" ".join(group)))
                group = []
            pieces += _encoded_words(word)
        elif group and len(_quoted(" ".join([*group, word]))) > _WORD_MAX:
            pieces.append(_quoted(" ".join(group)))
            group = [word]
        else:
            group.append(word)
    if group:
        pieces.append(_quoted(" ".join(group)))
    return pieces


def _phrase(display: str) -> list[str]:
    """A display name as RFC 5322 phrase words: atoms as they are; each run of other words
    as quoted-strings if it is printable ASCII, else (non-ASCII, or text that looks like an
    encoded-word, which lenient readers decode even inside quotes) as encoded-words."""
    pieces: list[str] = []
    run: list[str] = []

    def flush() -> None:
        text = " ".join(run)
        if text.isascii() and "=?" not in text:
            pieces.extend(_quoted_words(run))
        else:
            pieces.extend(_encoded_words(text))
        run.clear()

    for word in display.split(" "):
        if _atom(word) and len(word) <= _WORD_MAX:
            if run:
                flush()
            pieces.append(word)
        else:
            run.append(word)
    if run:
        flush()
    return pieces


def _unstructured(text: str) -> list[str]:
    """Free text (a Subject) as words: printable ASCII words as they are, each run of
    others (non-ASCII, or looking like an encoded-word) as encoded-words."""
    pieces: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if word.isascii() and word.isprintable() and "=?" not in word and len(word) < _WORD_MAX:
            if run:
                pieces += _encoded_words(" ".join(run))
                run = []
            pieces.append(word)
        else:
            run.append(word)
    if run:
        pieces += _encoded_words(" ".join(run))
    return pieces


def ascii_address(address: str) -> str:
    """`address` as an ASCII header may carry it: an internationalised domain as its
    A-label (IDNA). A local part beyond ASCII cannot be written without SMTPUTF8, which
    signing refuses; ValueError if one arrives all the same."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError(f"cannot write a non-ASCII local part in a header: {address!r}")
    if not domain.isascii():
        domain = idna.encode(domain, uts46=True).decode("ascii")
    if _DOT_ATOM.fullmatch(local) is None:
        local = _quoted(local)
    return f"{local}@{domain}"


class _Written(str):
    """A header value written and folded here. The email package calls its fold() and
    writes it out as it is, whatever the policy (it never refolds it); reading it back
    (`msg["From"].addresses`) parses it then, once."""

    name: str
    _lines: tuple[str, ...]

    def __new__(cls, name: str, lines: tuple[str, ...]) -> _Written:
        self = super().__new__(cls, "".join(lines))
        self.name = name
        self._lines = lines
        return self

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {policy.linesep.join(self._lines)}{policy.linesep}"

    @property
    def parsed(self) -> BaseHeader:
        header: BaseHeader = POLICY.header_factory(self.name, str(self))
        return header

    def __getattr__(self, attribute: str) -> object:
        # What a reader asks of a parsed header (addresses, defects, ...).
        return getattr(self.parsed, attribute)


def _written(name: str, pieces: list[str]) -> _Written:
    """`pieces` on lines of at most 78 characters (a single longer piece on a line of its
    own), joined by a space: the folding white space is the space between the words."""
    lines = [f"{name}: {pieces[0]}"] if pieces else [f"{name}: "]
    for piece in pieces[1:]:
        if len(lines[-1]) + 1 + len(piece) <= _MAX_LINE:
            lines[-1] += " " + piece
        else:
            lines.append(" " + piece)
    lines[0] = lines[0][len(name) + 2 :]
    return _Written(name, tuple(lines))


def _address_list(name: str, mailboxes: tuple[tuple[str, str], ...]) -> _Written:
    """An address-list header: `display name <address>, ...`, whatever the names hold:
    each reads back as exactly one mailbox with its name as written."""
    pieces: list[str] = []
    for n, (display, address) in enumerate(mailboxes):
        addr = ascii_address(address)
        words = [*_phrase(display), f"<{addr}>"] if display else [addr]
        if n < len(mailboxes) - 1:
            words[-1] += ","
        pieces += words
    return _written(name, pieces)


# The To and Cc of one appeal's letters repeat; From and Reply-To carry each signer's name.
_shared_address_list = lru_cache(maxsize=4096)(_address_list)


@lru_cache(maxsize=4096)
def _subject(name: str, text: str) -> _Written:
    return _written(name, _unstructured(text))


def _mailboxes(addresses: Sequence[Address]) -> tuple[tuple[str, str], ...]:
    return tuple((header_text(a.display_name), f"{a.username}@{a.domain}") for a in addresses)


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
    msg["Subject"] = _subject("Subject", header_text(subject))
    msg["From"] = _address_list("From", ((header_text(from_name), from_address),))
    if to:  # a fax for the fax folder has a number, not an address
        msg["To"] = _shared_address_list("To", _mailboxes(to))
    if cc:
        msg["Cc"] = _shared_address_list("Cc", _mailboxes(cc))
    if reply_to is not None:
        msg["Reply-To"] = _address_list("Reply-To", _mailboxes([reply_to]))
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
