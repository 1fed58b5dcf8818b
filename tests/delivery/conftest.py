"""A scriptable SMTP server and settings that send through it, for delivery tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.config import Settings
from tests.conftest import make_settings
from tests.support.smtp import Handler, SmtpSink


@pytest.fixture
def handler() -> Handler:
    """The sink's behaviour: set on_rcpt/on_data to refuse with a reply."""
    return Handler()


@pytest.fixture
def sink(handler: Handler) -> Iterator[SmtpSink]:
    with SmtpSink(handler) as sink:
        yield sink


@pytest.fixture
def mail(db_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    """Settings that send through the sink."""
    return make_settings(db_url, tmp_path, smtp_url=sink.url)
