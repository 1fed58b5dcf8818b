"""Languages of the HTML pages: gettext catalogs, negotiation and the Jinja2 environments.

The catalogs live as .po files only; they are compiled to .mo in memory on first use,
so no binary files are committed and an edited .po takes effect on the next start.
"""

from __future__ import annotations

import functools
import gettext
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from markupsafe import Markup

from app.organisers import chart

SUPPORTED = ("en", "ru")

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
LOCALE_DIR = WEB_DIR / "locale"

# Accept-Language is attacker-controlled: only the first entries are looked at.
_MAX_ACCEPT_ENTRIES = 20
_QUALITY = re.compile(r"^q=(?P<q>[01](?:\.\d{0,3})?)$")


def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog for `lang`; NullTranslations (the English source) if none."""
    if lang not in SUPPORTED:
        return gettext.NullTranslations()
    return _load_translations(lang)


@functools.cache
def _load_translations(lang: str) -> gettext.NullTranslations:
    po_path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po_path.is_file():
        return gettext.NullTranslations()
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


def make_environment(lang: str) -> jinja2.Environment:
    """The page environment for `lang`: autoescaped .html, gettext installed (newstyle)."""
    return _make_environment(lang if lang in SUPPORTED else SUPPORTED[0])


@functools.cache
def _make_environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
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
    env.filters["daily_chart"] = _daily_chart
    return env


def _plain(text: object) -> str:
    """Template text as plain text: gettext under autoescape hands back Markup, and the
    chart escapes for itself."""
    return str(text.unescape()) if isinstance(text, Markup) else str(text)


def _daily_chart(days: Sequence[Any], title: str, signed: str, sent: str, empty: str) -> Markup:
    """`{{ stats.by_day|daily_chart(_("title"), _("Signed"), _("Sent"), _("No letters")) }}`:
    the SVG chart, with its words translated where the page's other words are."""
    labels = chart.ChartLabels(
        title=_plain(title), signed=_plain(signed), sent=_plain(sent), empty=_plain(empty)
    )
    svg = chart.daily_chart([(d.date, d.signed, d.sent) for d in days], labels=labels)
    return Markup(svg)  # every piece of text in it was escaped by chart.daily_chart
