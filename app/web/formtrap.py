"""The signing form's own anti-bot checks, without a CAPTCHA and without JavaScript.

A honeypot field people never see (hidden by the stylesheet, skipped by the keyboard
and by screen readers) that form-filling bots fill in; and a signed token with the time
the form was shown, so a form sent back sooner than OUTCRY_FORM_MIN_SECONDS (or never
shown at all) is a bot's. A bot is answered with the same "check your e-mail" page a
person gets, and nothing is stored, sent or counted: it learns nothing to adapt to.
The JSON API takes signatures as they are (DESIGN.md): its clients are programs.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

from app.core import security
from app.core.config import Settings

HONEYPOT = "website"
TOKEN_FIELD = "form_token"  # noqa: S105  the form field's name, not a token
# A form open longer than this is shown again with a fresh token, not taken for a bot's:
# a supporter may leave a tab open overnight.
MAX_AGE = timedelta(days=2)


class Verdict(enum.Enum):
    person = "person"
    bot = "bot"
    stale = "stale"  # shown too long ago: show it again


def issue(settings: Settings, *, slug: str, now: datetime) -> str:
    """The token for a form of appeal `slug` shown at `now`."""
    return security.sign(settings.resolved_secret_key(), "form", f"{slug}|{now.timestamp():.3f}")


def shown_at(settings: Settings, *, slug: str, token: str) -> datetime | None:
    """When the form with this token was shown; None if the token is not one of ours for
    this appeal."""
    value = security.unsign(settings.resolved_secret_key(), "form", token) if token else None
    if value is None:
        return None
    token_slug, _, stamp = value.rpartition("|")
    if token_slug != slug:
        return None
    try:
        return datetime.fromtimestamp(float(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def judge(
    settings: Settings, *, slug: str, token: str, honeypot: str, now: datetime
) -> tuple[Verdict, str]:
    """Whether a posted form is a person's, and if not, why (for the log)."""
    if honeypot.strip():
        return Verdict.bot, "honeypot filled"
    shown = shown_at(settings, slug=slug, token=token)
    if shown is None:
        return Verdict.bot, "no valid form token"
    if (now - shown).total_seconds() < settings.form_min_seconds:
        return Verdict.bot, "sent too soon after the form was shown"
    if now - shown > MAX_AGE:
        return Verdict.stale, "form shown too long ago"
    return Verdict.person, ""
