"""Checks for text that comes from outside: one-line fields, multi-line fields, languages."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# C0/C1 controls, DEL, and the Unicode line/paragraph separators: none of them
# belongs in a name or a header, and CR/LF there could add an e-mail header.
_ONE_LINE_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Multi-line text keeps newlines and tabs, loses the other controls.
_MULTI_LINE_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


_SPACES = re.compile(r" {2,}")


def one_line(value: str) -> str:
    """NFC-normalise and strip a one-line field, one space between words; refuse control
    characters. (A name reads back in an e-mail header exactly as it is kept: headers
    cannot keep a run of spaces.)"""
    value = unicodedata.normalize("NFC", value).strip()
    if _ONE_LINE_BAD.search(value):
        raise ValueError("must be a single line without control characters")
    return _SPACES.sub(" ", value)


def multi_line(value: str) -> str:
    """NFC-normalise multi-line text, unify newlines, drop control characters."""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    value = _MULTI_LINE_BAD.sub("", value).replace("\u2028", "\n").replace("\u2029", "\n\n")
    return value.strip()


def typed(check: Callable[[str], str], error_type: str) -> AfterValidator:
    """`check` as a pydantic validator whose failure has its own error type, so a page can
    say it in the supporter's language; the API's message stays the ValueError's."""

    def validate(value: str) -> str:
        try:
            return check(value)
        except ValueError as exc:
            raise PydanticCustomError(error_type, "{reason}", {"reason": str(exc)}) from exc

    return AfterValidator(validate)


OneLine = Annotated[str, typed(one_line, "single_line")]
MultiLine = Annotated[str, AfterValidator(multi_line)]


@lru_cache(maxsize=256)
def language(code: str) -> str:
    """A language code Babel knows, normalised (`RU` -> `ru`, `pt-BR` -> `pt_BR`)."""
    try:
        return str(Locale.parse(code.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown language {code!r}") from exc


LanguageCode = Annotated[str, typed(language, "language_code")]

# Babel's territories include regions and private-use codes that are not countries.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


@lru_cache(maxsize=64)
def countries(lang: str) -> tuple[tuple[str, str], ...]:
    """(ISO 3166-1 alpha-2 code, name in `lang`), sorted by name."""
    names = Locale.parse(lang).territories
    items = [
        (code, name)
        for code, name in names.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    return tuple(sorted(items, key=lambda item: unicodedata.normalize("NFKD", item[1]).lower()))


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    return frozenset(code for code, _ in countries("en"))


# Cached, as _long_date(): every signature writes its letter with both, and Babel's
# lookups were about 3% of its own CPU.
@lru_cache(maxsize=4096)
def country_name(code: str, lang: str) -> str:
    """The country's name in `lang`, falling back to English and then the code."""
    for candidate in (lang, "en"):
        name = Locale.parse(candidate).territories.get(code)
        if name:
            return str(name)
    return code


def localised_date(day: date | datetime, language: str) -> str:
    """A long date in `language` ("23 November 2026", "23 ноября 2026 г."), as letters
    and PDFs print it."""
    return _long_date(day.date() if isinstance(day, datetime) else day, language)


@lru_cache(maxsize=1024)
def _long_date(day: date, language: str) -> str:
    try:
        return format_date(day, format="long", locale=language)
    except (ValueError, LookupError):
        # A language Babel cannot format still gets a date everyone can read.
        return day.isoformat()


def country(code: str) -> str:
    code = code.strip().upper()
    if code not in country_codes():
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, like KZ")
    return code


CountryCode = Annotated[str, typed(country, "country_code")]
