"""What organisers and unions get back: stats, letter lists, the moderation queue."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.appeals.schemas import Slug
from app.core.params import PAGE_MAX, TimeFilter, time_bound
from app.core.text import CountryCode, MultiLine
from app.letters.moderation import REASON_MAX
from app.models import LetterStatus, ReplyKind


class DayCount(BaseModel):
    date: date
    signed: int
    sent: int


class Stats(BaseModel):
    """DESIGN.md §4: every status key present, zeros included; days without letters too."""

    letters: dict[str, int]
    deliveries: dict[str, int]
    by_country: dict[str, int]
    by_organisation: dict[str, int]
    by_day: list[DayCount]


class LetterFilters(BaseModel):
    """Filters of `GET /api/v1/appeals/{slug}/letters[.csv]`; times are when a letter was
    signed: `since` inclusive, `until` exclusive (a date includes that whole day)."""

    model_config = ConfigDict(extra="forbid")

    status: LetterStatus | None = None
    organisation: Slug | None = None
    country: CountryCode | None = None
    since: TimeFilter = None
    until: TimeFilter = None

    @property
    def since_at(self) -> datetime | None:
        return time_bound(self.since, end=False)

    @property
    def until_at(self) -> datetime | None:
        return time_bound(self.until, end=True)


class LetterQuery(LetterFilters):
    page: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 1
    per_page: Annotated[int, Field(ge=1, le=500)] = 50


class LetterSummary(BaseModel):
    """A letter as organisers see it; `email` only for admins (a union never sees
    supporters' addresses: the form promises they are used only to confirm)."""

    id: str
    status: LetterStatus
    created_at: datetime
    confirmed_at: datetime | None
    sent_at: datetime | None
    name: str
    email: str | None
    country: str
    city: str
    union: str  # what the supporter typed
    organisation: str | None  # the organisation the letter is attributed to (slug)
    language: str
    message: str
    # Why the flood guard held it ("network:<tag>", "domain:<domain>"), else "".
    hold_reason: str = ""
    bounced: bool = False  # a target's server returned it


class LetterPage(BaseModel):
    items: list[LetterSummary]
    total: int
    page: int
    per_page: int


class ModerationQueue(BaseModel):
    items: list[LetterSummary]
    total: int


class RejectIn(BaseModel):
    """Why a letter is declined, for the supporter's notice (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[MultiLine, Field(max_length=REASON_MAX)] = ""


class Moderated(BaseModel):
    id: str
    status: LetterStatus


class ReplyRead(BaseModel):
    """A target's answer as organisers read it (plain text; nothing in it is rendered)."""

    id: int
    kind: ReplyKind
    received_at: datetime
    sender: str
    sender_name: str
    subject: str
    text: str
    letter_id: str | None  # the public id of the letter it answers, if it is still kept


class ReplyPage(BaseModel):
    """`GET /api/v1/appeals/{slug}/replies`: human replies and automatic answers apart."""

    counts: dict[str, int]  # {"human": n, "auto": n}
    items: list[ReplyRead]
    total: int


class BounceRead(BaseModel):
    id: int
    delivery_id: int
    letter_id: str
    recipient: str
    permanent: bool
    status: str
    reply: str
    source: str
    received_at: datetime


class BounceDetail(BounceRead):
    report: str  # the report as it came, without the returned letter


class BouncingAddress(BaseModel):
    """A recipient whose server refused letters for good: `current` while it is still one
    of the appeal's target addresses (fix it in the appeal, then retry)."""

    recipient: str
    current: bool
    letters: int  # deliveries bounced by it, waiting for a retry
    last_reply: str
    last_at: datetime


class BouncePage(BaseModel):
    counts: dict[str, int]  # {"hard": n, "soft": n, "complaint": n}
    addresses: list[BouncingAddress]
    items: list[BounceRead]
    total: int


class RetriedBounces(BaseModel):
    retried: int
