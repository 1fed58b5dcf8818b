"""Bounds on the numbers and times a request may carry, shared by every domain's routes.

A number or a time that Python takes but the database cannot hold (an id past 2**31, a
date whose next day is past year 9999) would otherwise fail deep in a query as a 500.
"""

from __future__ import annotations

from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Path, Query
from pydantic import BeforeValidator
from sqlalchemy import ColumnElement

from app.core.errors import InvalidInput
from app.models import Letter

# Row ids are INTEGER columns (32 bits in PostgreSQL); an id past that names no row.
ID_MAX = 2**31 - 1
# A page or offset past this finds nothing in any appeal Outcry will hold, and keeps
# page * per_page well inside a 64-bit OFFSET.
PAGE_MAX = 1_000_000
OFFSET_MAX = 500_000_000

RowId = Annotated[int, Path(ge=1, le=ID_MAX)]
Offset = Annotated[int, Query(ge=0, le=OFFSET_MAX)]


TIME_FORMAT = "must be a date like 2026-05-01 or a date and time like 2026-05-01T12:00Z"


def parse_time(value: object) -> date | datetime | None:
    """A `since`/`until` filter as given: a date, or an ISO 8601 date and time; ValueError
    saying what is expected (one reason for the field, not one per type it could be)."""
    if value is None or isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(TIME_FORMAT) from exc


TimeFilter = Annotated[date | datetime | None, BeforeValidator(parse_time)]


def time_bound(value: date | datetime | None, *, end: bool) -> datetime | None:
    """A `since` (or, with `end`, an `until`) filter as an aware UTC datetime: a time
    without a zone is UTC; an `until` date includes that whole day. A bound past what a
    datetime can hold in UTC bounds nothing on its open side (`until=9999-12-31` is every
    letter) and everything on the other (`since` after the end of time is none)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        if end and value == date.max:
            return None
        return datetime.combine(value + timedelta(days=1) if end else value, time(), UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Only a time within a day of either end of the calendar gets here.
        too_late = value.year == MAXYEAR
        if too_late:
            return None if end else datetime.max.replace(tzinfo=UTC)
        return datetime.min.replace(tzinfo=UTC) if end else None


def parse_bound(value: str | None, *, field: str, end: bool = False) -> datetime | None:
    """A time bound typed outside a query's own validation (a form, the command line):
    parse_time then time_bound, InvalidInput naming `field` (422) for what is not one."""
    try:
        moment = parse_time(value)
    except ValueError as exc:
        raise InvalidInput({field: str(exc)}) from exc
    return time_bound(moment, end=end)


# When a letter was signed, for every `since`/`until` filter and every list or bundle in
# the order of signing (the CSV, the organisers' list, the PDF bundle and ZIP): when the
# supporter sent the form. The model keeps no signed_at of its own, and the confirmation
# may come days later, or never.
SIGNED_AT = Letter.created_at


def signed_between(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """WHERE conditions for letters signed at or after `since` and before `until` (either
    may be None: no bound on that side)."""
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(SIGNED_AT >= since)
    if until is not None:
        conditions.append(SIGNED_AT < until)
    return conditions
