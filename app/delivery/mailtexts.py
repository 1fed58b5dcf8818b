"""The e-mails Outcry writes itself (to supporters and invited organisers): templates in
templates/email/ beside this module, each with a subject and a body block, rendered in
the reader's language through the one translation system (app/core/i18n.py)."""

from __future__ import annotations

from pathlib import Path

import jinja2

from app.core import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def make_environment(lang: str) -> jinja2.Environment:
    """The e-mails' environment for `lang` (plain text: nothing is autoescaped)."""
    return i18n.make_environment(TEMPLATES_DIR, lang)
