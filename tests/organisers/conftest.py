"""Fixtures for the organisers' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # One send at a time. These tests confirm letters at once, so a letter's confirmation
    # e-mail and its letter to the targets are due together, and on PostgreSQL recording
    # both at the same moment can deadlock in delivery.settle_letter (status_event's
    # foreign key takes KEY SHARE on the letter, then each transaction wants FOR UPDATE
    # on it). That belongs to the delivery service and is reported there; the figures
    # these tests check do not depend on sending in parallel.
    return make_settings(db_url, tmp_path, send_concurrency=1)
