"""Return addresses: the envelope sender and reply address of each letter to a target.

A letter goes out with the envelope sender `bounces+<token>@<OUTCRY_BOUNCE_DOMAIN>`
(VERP: a bounce names the delivery it is about) and, unless the supporter shares their
address, with `Reply-To: replies+<token>@<domain>`, so an answer finds its letter even
though the target never saw the supporter's address. The token is the delivery's id
and an HMAC of it under the site's secret: it cannot be guessed or altered, and needs no
table. It is lower case, since some servers fold the case of local parts, and short,
since a local part may be 64 octets at most.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["bounces", "replies"]
BOUNCES: Final = "bounces"
REPLIES: Final = "replies"
_MAC_BYTES = 13  # 104 bits: 21 characters of base32
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_ADDRESS = re.compile(r"(bounces|replies)\+([0-9a-z]{1,13})-([a-z2-7]{21})@(.+)", re.IGNORECASE)


def _base36(n: int) -> str:
    out = ""
    while True:
        n, digit = divmod(n, 36)
        out = _DIGITS[digit] + out
        if not n:
            return out


def _mac(secret: str, delivery_id: int) -> str:
    digest = hmac.new(
        secret.encode(), f"outcry.return:{delivery_id}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii").rstrip("=").lower()


def token(secret: str, delivery_id: int) -> str:
    """The delivery's return token: `<id in base 36>-<mac>`."""
    return f"{_base36(delivery_id)}-{_mac(secret, delivery_id)}"


def address(kind: Kind, secret: str, delivery_id: int, domain: str) -> str:
    """`bounces+<token>@domain` or `replies+<token>@domain`."""
    return f"{kind}+{token(secret, delivery_id)}@{domain}"


@dataclass(frozen=True, slots=True)
class Found:
    """A return address taken apart: its kind, and the delivery if the token is genuine."""

    kind: str
    delivery_id: int | None  # None: the token is forged or altered


def parse(secret: str, value: str, domain: str) -> Found | None:
    """The return address in `value` (a bare address), or None if it is not one of ours."""
    match = _ADDRESS.fullmatch(value.strip().strip("<>"))
    if match is None or match.group(4).lower().rstrip(".") != domain:
        return None
    kind = match.group(1).lower()
    return Found(kind=kind, delivery_id=delivery_of(secret, f"{match.group(2)}-{match.group(3)}"))


_TOKEN = re.compile(r"([0-9a-z]{1,13})-([a-z2-7]{21})")


def delivery_of(secret: str, value: str) -> int | None:
    """The delivery id a token carries, or None if it is not a genuine token."""
    match = _TOKEN.fullmatch(value.strip().lower())
    if match is None:
        return None
    delivery_id = int(match.group(1), 36)
    genuine = hmac.compare_digest(match.group(2), _mac(secret, delivery_id))
    return delivery_id if genuine else None


def find_all(text: str, domain: str) -> list[str]:
    """Every return address of `domain` in `text` (headers of a message read from a
    mailbox, where the envelope is lost)."""
    pattern = re.compile(
        r"(?:bounces|replies)\+[0-9a-z]{1,13}-[a-z2-7]{21}@" + re.escape(domain), re.IGNORECASE
    )
    return list(dict.fromkeys(m.group(0) for m in pattern.finditer(text)))
