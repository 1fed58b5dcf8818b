"""One schema for an appeal, whether it comes from a YAML file or the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.text import LanguageCode, MultiLine, OneLine
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
        raise ValueError("must be an international number starting with +") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
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
RESERVED_APPEAL_SLUGS = frozenset({"account", "tokens"})


def appeal_slug(value: str) -> str:
    if value in RESERVED_APPEAL_SLUGS:
        raise ValueError(f"{value!r} is reserved for the dashboard's own pages")
    return value


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[OneLine, Field(min_length=1, max_length=200)]
    title: Annotated[OneLine, Field(max_length=200)] = ""
    organisation: Annotated[OneLine, Field(max_length=200)] = ""
    email: Email | None = None
    fax: Fax | None = None
    address: Annotated[MultiLine, Field(max_length=1000)] = ""
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
    title: Annotated[OneLine, Field(min_length=1, max_length=200)]
    summary: Annotated[MultiLine, Field(max_length=5000)] = ""
    status: AppealStatus = AppealStatus.draft
    languages: Annotated[list[LanguageCode], Field(min_length=1, max_length=20)]
    default_language: LanguageCode | None = None
    template: Slug | None = None
    letter: dict[LanguageCode, LetterText] | None = None
    sender_name: Annotated[OneLine, Field(min_length=1, max_length=200)]
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
            raise ValueError("default_language must be one of languages")
        if (self.template is None) == (self.letter is None):
            raise ValueError("give either template or letter, not both and not neither")
        if self.letter is not None:
            missing = [lang for lang in self.languages if lang not in self.letter]
            if missing:
                raise ValueError(f"letter has no text for {', '.join(missing)}")
        if not any(t.email or t.fax for t in self.targets):
            raise ValueError("at least one target needs an email or fax")
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self


class TargetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    title: str
    organisation: str


Phase = Literal["draft", "scheduled", "open", "closed"]


class AppealRead(BaseModel):
    """What anyone may see of an appeal; targets' addresses stay with the organisers."""

    slug: str
    title: str
    summary: str
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
