"""What an inbound message is, as pure functions of its bytes: a bounce (which
recipients failed, for good or for now, and what the remote server said) or a reply
(human or automatic), and its text.

Inbound mail is hostile: nothing here renders HTML or opens an attachment. Text is
taken from text/plain parts (from an HTML part only as its characters, tags dropped),
cut to a bound, with control characters removed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

from flufl.bounce import all_failures

MAX_TEXT = 20_000  # characters of a reply kept
MAX_REPORT = 64_000  # characters of a bounce report kept
MAX_REPLY = 2_000  # characters of a remote server's reply kept
MAX_PARTS = 200  # parts of a message looked at: a bomb of nested parts is not walked

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Subjects of out-of-office and vacation answers that carry no header saying so
# (RFC 3834's Auto-Submitted is the reliable sign; many servers still send none).
_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|auto(matic)?[ _-]?(reply|response|answer)|autoreply|^\s*auto:"
    r"|vacation|abwesenheit|r[ée]ponse automatique|respuesta autom[áa]tica"
    r"|автоответ|автоматическ\w* ответ|вне офиса|в отпуске|автоматты жауап",
    re.IGNORECASE,
)
_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply")


def read(raw: bytes) -> EmailMessage:
    """The message parsed; never raises (the email package records defects instead)."""
    msg = message_from_bytes(raw, policy=policy.default)
    if not isinstance(msg, EmailMessage):  # policy.default makes every message one
        raise AssertionError(type(msg))
    return msg


def header(msg: Message, name: str) -> str:
    """A header's value as one clean line, or "" (a malformed one is read as raw text)."""
    try:
        value = msg.get(name)
    except Exception:  # the email package can fail on a hostile header
        value = None
    if value is None:
        return ""
    return " ".join(_CONTROLS.sub(" ", str(value)).split())[:1000]


def message_key(msg: Message, raw: bytes) -> str:
    """What makes a message the same when it is handed over twice: its Message-ID, else
    its bytes."""
    message_id = header(msg, "Message-ID")
    basis = message_id.encode() if message_id else raw
    return hashlib.sha256(basis).hexdigest()


@dataclass(frozen=True, slots=True)
class Failure:
    recipient: str  # lower case
    permanent: bool
    status: str  # the enhanced status code, "5.1.1", or ""
    reply: str  # what the remote server said, or the report's own words


@dataclass(frozen=True, slots=True)
class BounceReport:
    failures: tuple[Failure, ...]
    report: str  # the report as the organiser reads it, the returned message left out


def _parts(msg: Message) -> list[Message]:
    parts: list[Message] = []
    for part in msg.walk():
        parts.append(part)
        if len(parts) >= MAX_PARTS:
            break
    return parts


def _attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment"


def _text_of(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, ValueError, AssertionError, KeyError):
        content = None
    if not isinstance(content, str):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content


def _clean(text: str, limit: int) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)[:limit]


def _delivery_status(msg: Message) -> list[Message] | None:
    """The per-recipient blocks of the message/delivery-status parts, or None if there is
    no such part (not an RFC 3464 report)."""
    blocks: list[Message] | None = None
    for part in _parts(msg):
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            payload = part.get_payload()
            if not isinstance(payload, list):  # is_multipart(): a list of parts
                raise AssertionError(type(payload))
            # The first block is about the message, each other about one recipient.
            blocks = (blocks or []) + [b for b in payload[1:] if isinstance(b, Message)]
    return blocks


def _recipient(block: Message) -> str:
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        value = header(block, name)
        if value:
            address = value.split(";", 1)[-1].strip()
            return parseaddr(address)[1].lower() or address.lower()
    return ""


def _dsn_failures(blocks: list[Message]) -> list[Failure]:
    """RFC 3464: each recipient's action, status and the remote server's diagnostic."""
    failures = []
    for block in blocks:
        action = header(block, "action").lower()
        status = header(block, "status")
        code = _STATUS.search(status)
        if action.startswith(("fail", "error")):
            permanent = not (code and code.group(1) == "4")
        elif action.startswith("delayed"):
            permanent = False
        else:
            continue  # delivered, relayed, expanded: no failure
        diagnostic = header(block, "diagnostic-code")
        reply = diagnostic.split(";", 1)[-1].strip() if diagnostic else ""
        recipient = _recipient(block)
        if recipient:
            failures.append(
                Failure(
                    recipient=recipient,
                    permanent=permanent,
                    status=code.group(0) if code else "",
                    reply=_clean(reply, MAX_REPLY),
                )
            )
    return failures


def _report(msg: Message) -> str:
    """The report as text: its headers that say who and when, the human-readable part and
    the delivery-status part; the returned message (or its headers) left out, since it may
    carry the supporter's name and address and the letter is kept anyway."""
    lines = [f"{name}: {header(msg, name)}" for name in ("From", "Date", "Subject") if msg[name]]
    for part in _parts(msg):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            lines.append("[the returned message is not kept]")
            break
        if kind == "message/delivery-status":
            for block in part.get_payload() if part.is_multipart() else []:
                if not isinstance(block, Message):
                    raise AssertionError(type(block))
                lines.append("")
                lines += [f"{k}: {header(block, k)}" for k in block.keys()]
        elif kind == "text/plain" and not _attachment(part):
            lines += ["", _text_of(part)]
    return _clean("\n".join(lines), MAX_REPORT)


def bounce(msg: Message) -> BounceReport | None:
    """The failures a bounce reports, or None if the message is not a bounce.

    An RFC 3464 report is read field by field (each recipient's action, status and the
    remote server's reply); any other shape is left to flufl.bounce, Mailman's detectors
    for the dozens of bounce formats servers send, with the report's text as the reply.
    A delivery report that only says "delivered" is not a bounce.
    """
    blocks = _delivery_status(msg)
    if blocks is not None:
        failures = _dsn_failures(blocks)
        return BounceReport(tuple(failures), _report(msg)) if failures else None
    if not sender(msg)[1]:
        return None  # (flufl.bounce's heuristic detectors fail on a message with no From)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping over a hostile message: not a bounce we can read
        return None
    if not temporary and not permanent:
        return None
    report = _report(msg)
    code = _STATUS.search(report)
    reply = _first_reply_line(report)
    failures = [
        Failure(
            recipient=address.decode("ascii", "replace").lower(),
            permanent=address in permanent,
            status=code.group(0) if code else "",
            reply=reply,
        )
        for address in sorted(permanent | temporary)
    ]
    return BounceReport(tuple(failures), report)


def _first_reply_line(report: str) -> str:
    """The line of a free-form bounce that looks most like a server's reply."""
    for line in report.splitlines():
        if re.search(r"\b[45]\d\d\b", line):
            return line.strip()[:MAX_REPLY]
    return ""


def is_automatic(msg: Message, *, null_sender: bool = False) -> bool:
    """True for an out-of-office, vacation or other automatic answer (RFC 3834's
    Auto-Submitted, the X-Autoreply family, Precedence, an empty envelope sender, the
    subjects such answers carry), which organisers count apart from human replies."""
    if null_sender:
        return True
    auto_submitted = header(msg, "auto-submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if any(header(msg, name) for name in _AUTO_HEADERS):
        return True
    if header(msg, "x-auto-response-suppress") or header(msg, "list-id"):
        return True
    if header(msg, "precedence").lower() in _AUTO_PRECEDENCE:
        return True
    if header(msg, "return-path").strip() == "<>":
        return True
    return _AUTO_SUBJECT.search(header(msg, "subject")) is not None


class _HtmlText(HTMLParser):
    """An HTML part's characters, tags, scripts and styles dropped: never rendered."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def body_text(msg: Message) -> str:
    """The message's text: its first text/plain part that is not an attachment, else the
    characters of its first HTML part; attachments are never opened."""
    html = None
    for part in _parts(msg):
        if part.is_multipart() or _attachment(part):
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            return _clean(_text_of(part), MAX_TEXT).strip()
        if kind == "text/html" and html is None:
            html = part
    if html is None:
        return ""
    parser = _HtmlText()
    parser.feed(_text_of(html)[: MAX_TEXT * 5])
    text = re.sub(r"\n\s*\n+", "\n\n", "".join(parser.chunks))
    return _clean(text, MAX_TEXT).strip()


def sender(msg: Message) -> tuple[str, str]:
    """(display name, address) of the From header."""
    pairs = getaddresses([header(msg, "from")])
    name, address = pairs[0] if pairs else ("", "")
    return name[:200], address.lower()[:254]


@dataclass(frozen=True, slots=True)
class Answer:
    """A message that is no bounce: a reply, human or automatic."""

    automatic: bool
    sender_name: str
    sender: str
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound message read once: a bounce, a delivery report (neither bounce nor
    reply: "delivered", a read receipt), or an answer."""

    key: str
    bounce: BounceReport | None = None
    answer: Answer | None = None


def classify(raw: bytes, *, null_sender: bool) -> Inbound | None:
    """What `raw` is; None if it cannot be read at all (the email package or a detector
    failing on a hostile message is not allowed to stop the reader)."""
    if raw.lower().count(b"multipart/") > MAX_PARTS:
        return None  # nested parts by the thousand take the email package minutes
    try:
        msg = read(raw)
        key = message_key(msg, raw)
        report = bounce(msg)
        if report is not None:
            return Inbound(key=key, bounce=report)
        if msg.get_content_type() == "multipart/report":
            return Inbound(key=key)
        name, address = sender(msg)
        answer = Answer(
            automatic=is_automatic(msg, null_sender=null_sender),
            sender_name=name,
            sender=address,
            subject=header(msg, "subject")[:300],
            text=body_text(msg),
        )
        return Inbound(key=key, answer=answer)
    except Exception:
        return None
