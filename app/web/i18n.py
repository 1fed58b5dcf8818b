"""Languages of the HTML pages: the Jinja2 environments, over the catalogs of app/core/i18n.py."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from babel.dates import format_datetime
from babel.numbers import format_decimal
from markupsafe import Markup

from app.core.i18n import (
    LOCALE_DIR,
    SUPPORTED,
    base_language,
    language_name,
    negotiate,
    parse_accept_language,
    translations,
)
from app.organisers import chart

__all__ = [
    "LOCALE_DIR",
    "SUPPORTED",
    "TEMPLATES_DIR",
    "WEB_DIR",
    "base_language",
    "language_name",
    "make_environment",
    "negotiate",
    "parse_accept_language",
    "translations",
]

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"


def make_environment(lang: str) -> jinja2.Environment:
    """The page environment for `lang` (or its base language: an e-mail about a letter in
    ru_KZ is in Russian): autoescaped .html, gettext installed (newstyle)."""
    base = base_language(lang)
    return _make_environment(base if base in SUPPORTED else SUPPORTED[0])


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
    env.globals["text_lang"] = functools.partial(text_lang, page_language=lang)
    return env


def text_lang(view: Any, field: str, *, page_language: str) -> Markup:
    """`<h1{{ text_lang(appeal, "title") }}>`: a lang attribute when an appeal's text is
    not in the page's language (it had no translation), so a screen reader says it right.
    `field` is "title", "summary", "sender_name" or "targets" (any of their texts)."""
    missing = getattr(view, "untranslated", ())
    fell_back = any(part == field or part.startswith(f"{field}.") for part in missing)
    code = getattr(view, "default_language" if fell_back else "language", None)
    if not code or code == page_language:
        return Markup("")
    return Markup(' lang="{}"').format(code)


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
    return Markup(svg)  # noqa: S704  every piece of text in it was escaped by chart.daily_chart
