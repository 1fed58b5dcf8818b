"""MIME messages as pure functions of their inputs: no settings, no clock, no database."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

# Any control or line-breaking character in a header value could start a new header.
_HEADER_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
HEADER_MAX = 900


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


def message_id(kind: str, public_id: str, delivery_id: int, mail_from: str) -> str:
    """Deterministic Message-ID, so a resend after a crash is recognisably the same message."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<outcry.{kind}.{public_id}.{delivery_id}@{domain}>"


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
    msg = EmailMessage()
    msg["Subject"] = header_text(subject)
    msg["From"] = mailbox(from_name, from_address)
    if to:  # a fax for the fax folder has a number, not an address
        msg["To"] = list(to)
    if cc:
        msg["Cc"] = list(cc)
    if reply_to is not None:
        msg["Reply-To"] = reply_to
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    # No forced encoding: long paragraphs get quoted-printable, so no line passes
    # SMTP's 998-octet limit.
    msg.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8")
    # After set_content, which clears every Content-* header.
    msg["Content-Language"] = header_text(language)
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
        msg["Content-Language"] = header_text(language)
    return msg


def plain(address: str) -> Address:
    """An address without a display name."""
    return mailbox("", address)
