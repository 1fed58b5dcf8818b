"""The appeal's letter written out: for one signer, or with blanks where a signer's details
go (the preview, the letter to sign by hand). Rendered in the sandbox (templating.py)."""

from __future__ import annotations

import logging
from datetime import date

from app.appeals import service as appeals
from app.appeals import templating
from app.appeals.templating import AppealVars, LetterVars, SignerVars, TargetVars
from app.core import paths
from app.core.errors import LetterUnavailable
from app.core.text import country_name, localised_date
from app.models import Appeal

log = logging.getLogger(__name__)


def letter_vars(
    appeal: Appeal,
    *,
    name: str,
    organisation: str,
    country: str,
    city: str,
    message: str,
    language: str,
    today: date,
) -> LetterVars:
    """The variables a letter template sees: the appeal's texts in the letter's language."""
    texts = appeals.in_language(appeal, language)
    first = texts.targets[0]
    return LetterVars(
        appeal=AppealVars(title=texts.title, slug=appeal.slug, sender_name=texts.sender_name),
        target=TargetVars(name=first.name, title=first.title, organisation=first.organisation),
        signer=SignerVars(
            name=name,
            organisation=organisation,
            country=country,
            country_name=country_name(country, language) if country else "",
            city=city,
        ),
        message=message,
        date=localised_date(today, language),
    )


def render(appeal: Appeal, language: str, variables: LetterVars) -> templating.RenderedLetter:
    """The appeal's letter in `language` with these variables; LetterUnavailable if the
    appeal's template fails on them (it was checked with sample data when saved)."""
    try:
        return templating.render(
            appeals.letter_source(appeal, language),
            language,
            variables,
            directory=paths.letter_templates_dir(),
        )
    except templating.LetterTemplateError as exc:
        log.error("appeal %s: its %s letter cannot be written: %s", appeal.slug, language, exc)
        raise LetterUnavailable() from exc


def preview(
    appeal: Appeal, language: str, *, today: date, placeholders: dict[str, str]
) -> templating.RenderedLetter:
    """The letter with placeholders where the signer's details will go."""
    variables = letter_vars(
        appeal,
        name=placeholders["name"],
        organisation=placeholders["organisation"],
        country="",
        city=placeholders["city"],
        message="",
        language=language,
        today=today,
    )
    return render(appeal, language, variables)
