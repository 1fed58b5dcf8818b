"""The HTML pages' Jinja2 environment: app/core/i18n.py's, with the pages' own filters."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from app.core import i18n
from app.web import chart

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"


def make_environment(lang: str) -> jinja2.Environment:
    """The pages' environment for `lang` (app/core/i18n.py), with their own filters."""
    return i18n.make_environment(TEMPLATES_DIR, lang, extend=_page_extras)


def _page_extras(env: jinja2.Environment, lang: str) -> None:
    env.filters["daily_chart"] = _daily_chart
    env.globals["text_lang"] = functools.partial(text_lang, page_language=lang)


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
