"""The one translation system: gettext catalogs for pages, e-mails, errors and PDF labels.

Pages (app/web) and e-mails (app/delivery) render through make_environment() over
their own template folders; PDFs and errors look up texts with translations().

The catalogs live as .po files only (app/web/locale/<lang>/LC_MESSAGES/messages.po);
they are compiled to .mo in memory on first use, so no binary files are committed and
an edited .po takes effect on the next start. Pages and e-mails are offered in
SUPPORTED; a few more catalogs hold only the words the PDFs print themselves, so a
letter written in German still gets "Seite 1 von 2" (see tests/web/test_i18n.py).
"""

from __future__ import annotations

import functools
import gettext
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

# The languages of pages, e-mails and error messages, each with a complete catalog.
SUPPORTED = ("en", "ru", "kk")

LOCALE_DIR = Path(__file__).resolve().parent.parent / "web" / "locale"

# Accept-Language is attacker-controlled: only the first entries are looked at.
_MAX_ACCEPT_ENTRIES = 20
_QUALITY = re.compile(r"^q=(?P<q>[01](?:\.\d{0,3})?)$")


def base_language(code: str) -> str:
    """ "ru", "ru-KZ", "ru_KZ", "RU" -> "ru"."""
    return code.replace("_", "-").split("-")[0].strip().lower()


@functools.cache
def catalog_languages() -> frozenset[str]:
    """The languages that have a catalog (some only for PDF labels)."""
    return frozenset(
        path.parent.parent.name for path in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po")
    )


def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog for `lang` (or its base language: ru-KZ uses ru); the English
    source texts (NullTranslations) when there is none."""
    base = base_language(lang)
    if base not in catalog_languages():  # also keeps "../.." out of the path below
        return gettext.NullTranslations()
    return _load_translations(base)


@functools.cache
def _load_translations(lang: str) -> gettext.NullTranslations:
    po_path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=lang, domain="messages")
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def parse_accept_language(header: str) -> list[str]:
    """Language tags from an Accept-Language header, best first; q=0 and `*` dropped."""
    weighted: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")[:_MAX_ACCEPT_ENTRIES]):
        tag, *params = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for param in params:
            match = _QUALITY.match(param.replace(" ", ""))
            if match:
                quality = float(match["q"])
        if tag and tag != "*" and quality > 0:
            # Sorting on -quality then position keeps the header's order among equals.
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(accept_language: str | None, query_lang: str | None, available: Sequence[str]) -> str:
    """Pick the page language: `?lang=` if available, then Accept-Language, then available[0]."""
    by_lower = {code.lower(): code for code in available}
    if query_lang and query_lang.strip().lower() in by_lower:
        return by_lower[query_lang.strip().lower()]
    if accept_language:
        preferred = parse_accept_language(accept_language)
        locale = Locale.negotiate(preferred, list(available), sep="-")
        if locale is not None:
            # The negotiated locale may carry a territory (ru-RU); answer with our code.
            for candidate in (str(locale).lower(), locale.language.lower()):
                if candidate in by_lower:
                    return by_lower[candidate]
    return available[0]


@functools.lru_cache(maxsize=256)
def language_name(code: str, in_language: str) -> str:
    """The name of language `code` as a reader of `in_language` says it ("Kazakh",
    "казахский", "қазақ тілі"); the code itself for a language Babel does not know."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(
            Locale.parse(in_language.replace("-", "_"))
        )
    except (UnknownLocaleError, ValueError, TypeError):
        return code
    return name or code


def make_environment(
    templates: Path, lang: str, *, extend: Callable[[jinja2.Environment, str], None] | None = None
) -> jinja2.Environment:
    """The Jinja2 environment over the templates in `templates`, in `lang` (or its base
    language: an e-mail about a letter in ru_KZ is in Russian; the first of SUPPORTED for
    a language the pages do not speak): autoescaped .html, gettext installed (newstyle),
    numbers and dates written the language's way. One per folder, language and `extend`
    (which adds a renderer's own filters): building one costs."""
    base = base_language(lang)
    return _make_environment(templates, base if base in SUPPORTED else SUPPORTED[0], extend)


@functools.cache
def _make_environment(
    templates: Path, lang: str, extend: Callable[[jinja2.Environment, str], None] | None
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(lang), newstyle=True
    )

    def number(value: int) -> str:
        return format_decimal(value, locale=lang)

    def when(value: datetime) -> str:
        # Stored times are UTC; "long" names the zone so nobody has to guess.
        return format_datetime(value, "long", tzinfo=UTC, locale=lang)

    env.filters["number"] = number
    env.filters["datetime"] = when
    if extend is not None:
        extend(env, lang)
    return env
