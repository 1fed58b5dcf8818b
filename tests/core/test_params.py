"""Time bounds typed in a form or on the command line (the purge's `before`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.core import params
from app.core.errors import InvalidInput


def test_parse_bound() -> None:
    assert params.parse_bound(None, field="since") is None
    assert params.parse_bound("2026-05-01", field="since") == datetime(2026, 5, 1, tzinfo=UTC)
    # A date as the end takes in that whole day.
    end = params.parse_bound("2026-05-01", field="until", end=True)
    assert end == datetime(2026, 5, 2, tzinfo=UTC)
    moment = params.parse_bound("2026-05-01T12:30:00+02:00", field="since")
    assert moment == datetime(2026, 5, 1, 10, 30, tzinfo=UTC)
    assert params.parse_bound("2026-05-01T12:30", field="since") == datetime(
        2026, 5, 1, 12, 30, tzinfo=UTC
    )
    with pytest.raises(InvalidInput) as error:
        params.parse_bound("1 May", field="until")
    assert "until" in error.value.fields
