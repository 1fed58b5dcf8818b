"""An appeal's texts in one language: what pages, e-mails, PDFs and letters show a reader.

Each text an appeal's reader sees (its title, summary and sender name; each target's
name, title, organisation and address) is stored in the appeal's default language in
its own column, and in the other languages in the row's `translations` map. Reading
one language is a dictionary lookup with the default as the fallback: no query, no
join, whatever the number of languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.appeals.schemas import AppealIn, Texts, texts_in
from app.core.i18n import base_language
from app.models import Appeal, Target

APPEAL_TEXTS = ("title", "summary", "sender_name")
TARGET_TEXTS = ("name", "title", "organisation", "address")
# The kinds of problem check() finds, for a page to say them in its language.
STRAY_LANGUAGE = "stray_language"
DEFAULT_TEXT = "default_text"
# The texts an appeal cannot do without, in its default language at least.
REQUIRED_APPEAL_TEXTS = ("title", "sender_name")
REQUIRED_TARGET_TEXTS = ("name",)


@dataclass(frozen=True, slots=True)
class TargetText:
    name: str
    title: str
    organisation: str
    address: str


@dataclass(frozen=True, slots=True)
class AppealText:
    """The appeal as a reader of `language` sees it."""

    slug: str
    language: str  # the language asked for if the appeal is offered in it, else the default
    default_language: str
    title: str
    summary: str
    sender_name: str
    targets: tuple[TargetText, ...]
    # Texts shown in the default language for want of a translation: "title", "summary",
    # "sender_name", "targets.0.address"…; empty when `language` is the default.
    untranslated: tuple[str, ...]


def _translated(row: Appeal | Target, field: str, language: str) -> str | None:
    return (row.translations or {}).get(language, {}).get(field) or None


def text(row: Appeal | Target, field: str, language: str) -> str:
    """One text in `language`, or in the appeal's default language if it has none."""
    translated = _translated(row, field, language)
    return translated if translated is not None else str(getattr(row, field) or "")


def target_text(target: Target, language: str) -> TargetText:
    """A target as a reader (or a letter) in `language` addresses it."""
    return TargetText(*(text(target, field, language) for field in TARGET_TEXTS))


def in_language(appeal: Appeal, language: str) -> AppealText:
    """The appeal's texts in `language` where it has them, else in its default language."""
    default = appeal.default_language
    lang = next(
        (code for code in (language, base_language(language)) if code in appeal.languages),
        default,
    )
    missing: list[str] = []
    if lang != default:
        missing += [
            field
            for field in APPEAL_TEXTS
            if getattr(appeal, field) and _translated(appeal, field, lang) is None
        ]
        for n, target in enumerate(appeal.targets):
            missing += [
                f"targets.{n}.{field}"
                for field in TARGET_TEXTS
                if getattr(target, field) and _translated(target, field, lang) is None
            ]
    return AppealText(
        slug=appeal.slug,
        language=lang,
        default_language=default,
        title=text(appeal, "title", lang),
        summary=text(appeal, "summary", lang),
        sender_name=text(appeal, "sender_name", lang),
        targets=tuple(target_text(t, lang) for t in appeal.targets),
        untranslated=tuple(missing),
    )


def split(value: Texts, default_language: str) -> tuple[str, dict[str, str]]:
    """(the text in the default language, {other language: text}) of an input's texts."""
    by_language = texts_in(value, default_language)
    default = by_language.pop(default_language, "")
    return default, by_language


def store(row: Appeal | Target, fields: Mapping[str, Texts], default_language: str) -> None:
    """Set a row's texts from input: the default language's in the columns, the others
    in `translations` (replacing what was there)."""
    translations: dict[str, dict[str, str]] = {}
    for field, value in fields.items():
        default, others = split(value, default_language)
        setattr(row, field, default)
        for lang, translated in others.items():
            translations.setdefault(lang, {})[field] = translated
    row.translations = translations


def codes(problems: Mapping[str, str]) -> dict[str, str]:
    """The kind of each problem check() found: STRAY_LANGUAGE or DEFAULT_TEXT."""
    return {
        field: STRAY_LANGUAGE if why.startswith("has text in") else DEFAULT_TEXT
        for field, why in problems.items()
    }


def check(data: AppealIn) -> dict[str, str]:
    """{field: why} for texts no reader could be shown: a required text with nothing in
    the default language, or a text in a language the appeal is not offered in."""
    default = data.default_language or data.languages[0]
    offered = ", ".join(data.languages)
    errors: dict[str, str] = {}

    def look(field: str, value: Texts, required: bool) -> None:
        by_language = texts_in(value, default)
        strays = sorted(set(by_language) - set(data.languages))
        if strays:
            errors[field] = (
                f"has text in {', '.join(strays)}, which is not one of the appeal's "
                f"languages ({offered})"
            )
        elif required and default not in by_language:
            errors[field] = f"needs a text in {default}, the appeal's default language"

    for field in APPEAL_TEXTS:
        look(field, getattr(data, field), field in REQUIRED_APPEAL_TEXTS)
    for n, target in enumerate(data.targets):
        for field in TARGET_TEXTS:
            look(f"targets.{n}.{field}", getattr(target, field), field in REQUIRED_TARGET_TEXTS)
    return errors


def as_input(appeal: Appeal) -> dict[str, Texts]:
    """The appeal's own texts as an appeal file gives them: a plain string where there is
    only the default language's, else {language: text} (for editors and exports)."""
    return {field: _texts(appeal, field) for field in APPEAL_TEXTS}


def target_as_input(target: Target, default_language: str) -> dict[str, Texts]:
    """A target's texts as an appeal file gives them (see as_input)."""
    return {field: _texts(target, field, default_language) for field in TARGET_TEXTS}


def _texts(row: Appeal | Target, field: str, default_language: str | None = None) -> Texts:
    default = default_language or str(getattr(row, "default_language", ""))
    others = {
        lang: values[field]
        for lang, values in (row.translations or {}).items()
        if values.get(field)
    }
    value = str(getattr(row, field) or "")
    if not others:
        return value
    return {default: value, **others} if value else others
