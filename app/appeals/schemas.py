"""One schema for an appeal, whether it comes from a YAML file or the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.core.text import LanguageCode, OneLine, language, multi_line, one_line
from app.models import AppealStatus

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


def address(value: str) -> str:
    """A syntactically valid e-mail address (no DNS: these are configured by organisers)."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc


def fax_number(value: str) -> str:
    """A fax number in international form, normalised to E.164."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise PydanticCustomError(
            "fax_number", "must be an international number starting with +"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise PydanticCustomError("fax_number", "is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def aware(value: datetime | None) -> datetime | None:
    """Times without a zone are taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Email = Annotated[str, Field(max_length=254), AfterValidator(address)]
Fax = Annotated[str, Field(max_length=40), AfterValidator(fax_number)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
# Paths of the dashboard's own pages beside /dashboard/{appeal}.
RESERVED_APPEAL_SLUGS = frozenset({"account", "tokens", "appeals", "audit"})


# A text a reader sees: one string (in the appeal's default language), or one string per
# language, `{en: "…", ru: "…", kk: "…"}`, in YAML and JSON alike.
Texts = str | dict[str, str]


def _text(check: Callable[[str], str], value: str, max_length: int, where: str) -> str:
    try:
        value = check(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "single_line", "{where}{reason}", {"where": where, "reason": str(exc)}
        ) from exc
    if len(value) > max_length:
        raise PydanticCustomError(
            "string_too_long",
            "{where}String should have at most {max_length} characters",
            {"where": where, "max_length": max_length},
        )
    return value


def localised(
    check: Callable[[str], str], max_length: int, *, required: bool = False
) -> PlainValidator:
    """The validator of a reader-visible text: a string, or {language: string} with each
    language code normalised and each text checked; empty texts in a map are dropped
    (that language has none). Errors name the language: "ru: String should have…". A
    required text may not be empty (which language must have it, save_appeal checks)."""

    def validate(value: object) -> Texts:
        texts = _validate(value)
        if required and not texts:
            raise PydanticCustomError(
                "string_too_short", "String should have at least 1 character", {"min_length": 1}
            )
        return texts

    def _validate(value: object) -> Texts:
        if isinstance(value, str):
            return _text(check, value, max_length, "")
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "texts_type", "must be a text, or texts by language like {en: …, ru: …}"
            )
        texts: dict[str, str] = {}
        for code, item in value.items():
            try:
                lang = language(str(code))
            except ValueError as exc:
                raise PydanticCustomError("language_code", str(exc)) from exc
            if lang in texts:
                raise PydanticCustomError("texts_repeat", f"{lang} is given twice")
            if item is None:
                continue
            if not isinstance(item, str):
                raise PydanticCustomError("string_type", f"{lang}: must be a text")
            text = _text(check, item, max_length, f"{lang}: ")
            if text:
                texts[lang] = text
        return texts

    return PlainValidator(validate)


def texts_schema(max_length: int, *, min_length: int = 0) -> WithJsonSchema:
    """What OpenAPI says of a Texts field."""
    text: dict[str, object] = {"type": "string", "maxLength": max_length}
    if min_length:
        text["minLength"] = min_length
    return WithJsonSchema(
        {
            "anyOf": [text, {"type": "object", "additionalProperties": text}],
            "description": 'A text, or texts by language: {"en": "…", "ru": "…"}.',
        }
    )


ShortTexts = Annotated[Texts, localised(one_line, 200), texts_schema(200)]
RequiredShortTexts = Annotated[
    Texts, localised(one_line, 200, required=True), texts_schema(200, min_length=1)
]
SummaryTexts = Annotated[Texts, localised(multi_line, 5000), texts_schema(5000)]
AddressTexts = Annotated[Texts, localised(multi_line, 1000), texts_schema(1000)]


def texts_in(value: Texts, default_language: str) -> dict[str, str]:
    """Texts by language; a plain string is the default language's."""
    if isinstance(value, str):
        return {default_language: value} if value else {}
    return dict(value)


def appeal_slug(value: str) -> str:
    if value in RESERVED_APPEAL_SLUGS:
        raise ValueError(f"{value!r} is reserved for the dashboard's own pages")
    return value


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # name, title, organisation and address may each be given per language.
    name: RequiredShortTexts
    title: ShortTexts = ""
    organisation: ShortTexts = ""
    email: Email | None = None
    fax: Fax | None = None
    address: AddressTexts = ""
    language: LanguageCode | None = None


class LetterText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Annotated[str, Field(min_length=1, max_length=2000)]
    body: Annotated[str, Field(min_length=1, max_length=20000)]


class OrganisationIn(BaseModel):
    """A union or group taking part: its slug goes in the share link (`/a/{appeal}?org=`)."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug
    name: Annotated[OneLine, Field(min_length=1, max_length=200)]


class AppealIn(BaseModel):
    """An appeal as organisers write it (YAML) or send it (POST/PUT /api/v1/appeals)."""

    model_config = ConfigDict(extra="forbid")

    slug: Annotated[Slug, AfterValidator(appeal_slug)]
    # title, summary and sender_name may each be given per language (see Texts).
    title: RequiredShortTexts
    summary: SummaryTexts = ""
    status: AppealStatus = AppealStatus.draft
    languages: Annotated[list[LanguageCode], Field(min_length=1, max_length=20)]
    default_language: LanguageCode | None = None
    template: Slug | None = None
    letter: dict[LanguageCode, LetterText] | None = None
    sender_name: RequiredShortTexts
    targets: Annotated[list[TargetIn], Field(min_length=1, max_length=50)]
    copies: Annotated[list[Email], Field(max_length=20)] = []
    goal: Annotated[int, Field(ge=1)] | None = None
    opens_at: Annotated[datetime | None, AfterValidator(aware)] = None
    closes_at: Annotated[datetime | None, AfterValidator(aware)] = None
    require_confirmation: bool = True
    attach_pdf: bool = False
    moderation: bool = False
    page_size: Literal["A4", "letter"] = "A4"
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    rate_limit: Annotated[int, Field(ge=1, le=100_000)] = 60
    organisations: Annotated[list[OrganisationIn], Field(max_length=500)] = []

    @field_validator("languages")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("languages must not repeat")
        return value

    @field_validator("organisations")
    @classmethod
    def _unique_organisations(cls, value: list[OrganisationIn]) -> list[OrganisationIn]:
        if len({o.slug for o in value}) != len(value):
            raise ValueError("organisation slugs must not repeat")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AppealIn:
        if self.default_language is None:
            self.default_language = self.languages[0]
        elif self.default_language not in self.languages:
            raise PydanticCustomError(
                "default_language", "default_language must be one of languages"
            )
        # Typed errors (not plain ValueErrors), so a page can say each in its language.
        if (self.template is None) == (self.letter is None):
            raise PydanticCustomError(
                "letter_or_template", "give either template or letter, not both and not neither"
            )
        if self.letter is not None:
            missing = [lang for lang in self.languages if lang not in self.letter]
            if missing:
                raise PydanticCustomError(
                    "letter_missing",
                    "letter has no text for {languages}",
                    {"languages": ", ".join(missing)},
                )
        if not any(t.email or t.fax for t in self.targets):
            raise PydanticCustomError("unreachable", "at least one target needs an email or fax")
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise PydanticCustomError("closes_before_opens", "closes_at must be after opens_at")
        return self


class TargetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    title: str
    organisation: str


Phase = Literal["draft", "scheduled", "open", "closed"]


class AppealRead(BaseModel):
    """What anyone may see of an appeal; targets' addresses stay with the organisers.

    Its texts are in `language`: the one asked for with `?lang=` when the appeal is
    offered in it, else the appeal's default; `untranslated` names the texts that had
    no translation and are given in the default language instead."""

    slug: str
    title: str
    summary: str
    language: str
    untranslated: list[str]
    status: AppealStatus
    # status together with opens_at/closes_at: scheduled = open but not yet opened.
    phase: Phase
    accepting: bool
    languages: list[str]
    default_language: str
    targets: list[TargetRead]
    goal: int | None
    opens_at: datetime | None
    closes_at: datetime | None
    signed: int
    sent: int
    url: str
