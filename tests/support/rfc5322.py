"""A strict reader of address headers: RFC 5322 without its obsolete syntax, with RFC 2047
encoded-words decoded only where RFC 2047 allows them (a whole word of a display name).

Python's parsers are lenient: they accept and repair what a stricter mail client reads
otherwise. This one refuses anything outside the grammar, so a header that passes here
and in Python means the same to both. It reads headers as Outcry writes them, so it
refuses comments and groups outright (Outcry writes neither) rather than reading them.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# RFC 2047 section 2, and section 5 (3) for what 'Q' may hold in a phrase.
ENCODED_WORD = re.compile(r"=\?([^?\s()<>@,;:\"/\[\]=.]+)\?([BbQq])\?([^?\s]*)\?=")
B_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,2}")
Q_PHRASE_TEXT = re.compile(r"[A-Za-z0-9!*+\-/=_]*")


class Invalid(ValueError):
    """The header is not what RFC 5322 (and RFC 2047) allow."""


@dataclass(frozen=True)
class Mailbox:
    display_name: str
    addr_spec: str


def unfold(lines: list[str]) -> str:
    """The header's value from its lines as on the wire (without the `Name:` prefix on
    the first): each line at most 998 characters, printable ASCII and white space only,
    every continuation line starting with white space."""
    for n, line in enumerate(lines):
        if len(line) > 998:
            raise Invalid(f"line {n} is {len(line)} characters long")
        if not all(c == "\t" or " " <= c <= "~" for c in line):
            raise Invalid(f"line {n} has a character outside printable ASCII: {line!r}")
        if n and line[:1] not in (" ", "\t"):
            raise Invalid(f"continuation line {n} does not start with white space")
    return "".join(lines)


@dataclass(frozen=True)
class _Token:
    kind: str  # "atom" (dot-atom text), "quoted", "special", "space"
    text: str


def _tokens(value: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c in " \t":
            j = i
            while j < len(value) and value[j] in " \t":
                j += 1
            tokens.append(_Token("space", value[i:j]))
            i = j
        elif c == '"':
            text, i = _quoted_string(value, i + 1)
            tokens.append(_Token("quoted", text))
        elif c in "<>@,.":
            tokens.append(_Token("special", c))
            i += 1
        elif c == "(":
            raise Invalid("a comment (Outcry writes none)")
        elif c in ":;":
            raise Invalid("a group (Outcry writes none)")
        else:
            match = ATEXT.match(value, i)
            if match is None:
                raise Invalid(f"{c!r} is not allowed outside a quoted-string")
            tokens.append(_Token("atom", match.group()))
            i = match.end()
    return tokens


def _quoted_string(value: str, i: int) -> tuple[str, int]:
    """The content of the quoted-string whose opening quote is before `i`, and the index
    after its closing quote."""
    out: list[str] = []
    while i < len(value):
        c = value[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= len(value):
                raise Invalid("a backslash ends the header")
            out.append(value[i + 1])
            i += 2
            continue
        if not (c in " \t" or c == "!" or "#" <= c <= "[" or "]" <= c <= "~"):
            raise Invalid(f"{c!r} inside a quoted-string")
        out.append(c)
        i += 1
    raise Invalid("a quoted-string is not closed")


def _decode_word(word: str) -> str | None:
    """An atom that is exactly one encoded-word, decoded; None if it is not one."""
    match = ENCODED_WORD.fullmatch(word)
    if match is None:
        return None
    if len(word) > 75:
        raise Invalid(f"an encoded-word longer than 75 characters: {word}")
    charset, encoding, text = match.groups()
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    try:
        if encoding in "Bb":
            if B_TEXT.fullmatch(text) is None or len(text) % 4:
                raise Invalid(f"bad base64 in {word}")
            raw = base64.b64decode(text, validate=True)
        else:
            if Q_PHRASE_TEXT.fullmatch(text) is None:
                raise Invalid(f"a character 'Q' may not carry in a phrase: {word}")
            raw = binascii.a2b_qp(text.replace("_", " "), header=True)
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError, binascii.Error) as exc:
        raise Invalid(f"cannot decode {word}: {exc}") from exc


def _display_name(words: list[tuple[_Token, bool]], python: bool) -> str:
    """A phrase's words (each with whether white space came before it) as a reader shows
    them: words joined by one space, except that the space between two encoded-words is
    dropped (RFC 2047 6.2), unless `python` (CPython gh-128110 keeps it); an encoded-word
    inside quotes is not decoded."""
    parts: list[str] = []
    previous_encoded = False
    for token, spaced in words:
        decoded = _decode_word(token.text) if token.kind == "atom" else None
        if parts and spaced and (python or not (previous_encoded and decoded is not None)):
            parts.append(" ")
        elif parts and not spaced and (decoded is not None or previous_encoded):
            raise Invalid("an encoded-word not separated by white space")
        if decoded is not None and python:
            # policy.default reads white space inside an encoded-word as folding white
            # space: from a space or tab on, a run of any white space is one space.
            decoded = re.sub(r"[ \t]\s*", " ", decoded)
        parts.append(decoded if decoded is not None else token.text)
        previous_encoded = decoded is not None
    return "".join(parts)


def mailboxes(value: str, python: bool = False) -> list[Mailbox]:
    """The mailbox-list in an unfolded header value, as a strict reader reads it (or, with
    `python`, as CPython's policy.default reads it where it departs from RFC 2047)."""
    tokens = _tokens(value)
    result: list[Mailbox] = []
    i = 0

    def skip_space() -> bool:
        nonlocal i
        spaced = False
        while i < len(tokens) and tokens[i].kind == "space":
            i += 1
            spaced = True
        return spaced

    def addr_spec() -> str:
        nonlocal i
        local: list[str] = []
        while i < len(tokens) and not (tokens[i].kind == "special" and tokens[i].text == "@"):
            token = tokens[i]
            if token.kind == "space":
                raise Invalid("white space inside an address")
            local.append(f'"{token.text}"' if token.kind == "quoted" else token.text)
            i += 1
        if i == len(tokens):
            raise Invalid("an address without @")
        i += 1
        domain: list[str] = []
        while i < len(tokens) and (tokens[i].kind == "atom" or tokens[i].text == "."):
            domain.append(tokens[i].text)
            i += 1
        local_text, domain_text = "".join(local), "".join(domain)
        if not (DOT_ATOM.fullmatch(local_text) or re.fullmatch(r'"[^"]*"', local_text)):
            raise Invalid(f"bad local part {local_text!r}")
        if not DOT_ATOM.fullmatch(domain_text):
            raise Invalid(f"bad domain {domain_text!r}")
        return f"{local_text}@{domain_text}"

    while True:
        spaced = skip_space()
        words: list[tuple[_Token, bool]] = []
        start = i
        while i < len(tokens) and tokens[i].kind in ("atom", "quoted"):
            words.append((tokens[i], spaced or not words))
            i += 1
            spaced = skip_space()
        if i < len(tokens) and tokens[i].text == "<":
            if not words:
                raise Invalid("an angle address without a display name is obsolete here")
            i += 1
            address = addr_spec()
            if i >= len(tokens) or tokens[i].text != ">":
                raise Invalid("an angle address is not closed")
            i += 1
            result.append(Mailbox(_display_name(words, python), address))
        else:
            # A bare addr-spec: start again at its first token.
            i = start
            result.append(Mailbox("", addr_spec()))
        skip_space()
        if i == len(tokens):
            return result
        if tokens[i].text != ",":
            raise Invalid(f"{tokens[i].text!r} where a comma or the end belongs")
        i += 1


def header_lines(raw: bytes, name: str) -> list[list[str]]:
    """Each `name:` header's lines (the first without its `Name:`), from a whole message."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if current is not None:
                current.append(line)
            continue
        field, colon, rest = line.partition(":")
        if not colon:
            raise Invalid(f"a header line without a colon: {line!r}")
        current = [rest.removeprefix(" ")] if field.lower() == name.lower() else None
        if current is not None:
            found.append(current)
    return found


def read(raw: bytes, name: str) -> list[list[Mailbox]]:
    """The mailbox-list of every `name` header in a message, read strictly."""
    return [mailboxes(unfold(lines)) for lines in header_lines(raw, name)]
