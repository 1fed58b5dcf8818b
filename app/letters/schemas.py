"""What a supporter sends to sign, and what they see of their letter."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field

from app.core.text import CountryCode, LanguageCode, MultiLine, OneLine, typed
from app.models import Channel, DeliveryStatus, LetterStatus

MESSAGE_MAX = 2000


# The address the request's form checked last, and its normal form: a signature checks
# its address when the form is read and again when it is stored, and the check is about
# 4% of its CPU (issue 10). A context variable, so it lives as long as the request (the
# route's worker thread runs in a copy of the request's context) and no longer: no
# address is kept in the process after its request.
_CHECKED: ContextVar[tuple[str, str] | None] = ContextVar("outcry_checked_address", default=None)


def normalised_address(address: str, *, check_deliverability: bool = False) -> str:
    """The address as we store and compare it; EmailNotValidError if it is not one (or,
    with `check_deliverability`, if its domain takes no mail: a DNS lookup). The syntax
    alone is not checked again if this request's form just checked it."""
    if not check_deliverability:
        checked = _CHECKED.get()
        if checked is not None and checked[0] == address:
            return checked[1]
    # No SMTPUTF8: a letter's Reply-To and the supporter's e-mails carry the address in
    # ASCII headers, which cannot hold a non-ASCII local part.
    valid = validate_email(address, check_deliverability=check_deliverability, allow_smtputf8=False)
    # Mail providers treat the local part case-insensitively in practice; comparing
    # it folded stops "Ada@x" and "ada@x" from signing one appeal twice.
    return valid.normalized.lower()


def syntax_only(value: str) -> str:
    try:
        _CHECKED.set((value, normalised_address(value)))
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return value


class SignatureIn(BaseModel):
    """The signing form, from the HTML page or `POST /api/v1/appeals/{slug}/letters`."""

    model_config = ConfigDict(extra="forbid", str_max_length=5000)

    name: Annotated[OneLine, Field(min_length=1, max_length=200)]
    # Syntax here, with the other fields; the DNS check (a setting) in the service.
    email: Annotated[str, Field(min_length=3, max_length=254), typed(syntax_only, "email_syntax")]
    country: CountryCode
    organisation: Annotated[OneLine, Field(max_length=200)] = ""
    city: Annotated[OneLine, Field(max_length=100)] = ""
    message: Annotated[MultiLine, Field(max_length=MESSAGE_MAX)] = ""
    language: LanguageCode | None = None
    share_email: bool = False
    copy_to_me: bool = False
    # Tell me when a target answers my letter (an e-mail saying so, not the answer).
    notify_replies: bool = False
    org: Annotated[str, Field(max_length=64)] | None = None


class LetterCreated(BaseModel):
    id: str
    status: LetterStatus
    status_url: str


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=200)]


class AttemptRead(BaseModel):
    at: datetime
    outcome: str
    detail: str


class DeliveryRead(BaseModel):
    id: int
    channel: Channel
    status: DeliveryStatus
    recipients: list[str]
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None
    history: list[AttemptRead]


class SignerRead(BaseModel):
    name: str
    organisation: str
    country: str
    city: str


class LetterRead(BaseModel):
    id: str
    appeal: str
    status: LetterStatus
    language: str
    signer: SignerRead
    subject: str
    body: str
    created_at: datetime
    confirmed_at: datetime | None
    sent_at: datetime | None
    rejection_reason: str  # a moderator's words when the letter was declined, else ""
    # Whether POST …/withdraw would take it back now (no target has it yet).
    withdrawable: bool
    # When the supporter's details were erased (then name, city, union, text are empty).
    erased_at: datetime | None
    deliveries: list[DeliveryRead]
    pdf_url: str
