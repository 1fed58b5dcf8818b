"""The fax folder: faxes written there instead of sent are said at start and, once they
have waited too long, counted for the dashboard."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from app.core.config import Settings
from app.delivery import faxes
from app.models import utcnow
from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import sign


def test_a_fax_nobody_takes_from_the_folder_piles_up(session: Session, settings: Settings) -> None:
    appeal = make_appeal(session, require_confirmation=False)  # its target has a fax number
    sign(session, appeal, settings, email="ada@example.net")
    session.commit()
    drain(settings)
    folder = faxes.folder(settings)
    [pdf] = folder.glob("*.pdf")
    now = utcnow()

    # Just written: a spool that sends what it finds has not had its chance yet.
    assert faxes.backlog(folder, now=now) is None
    later = now + faxes.PILING_UP_AFTER + timedelta(minutes=1)
    waiting = faxes.backlog(folder, now=later)
    assert waiting is not None
    assert (waiting.folder, waiting.count) == (folder, 1)
    assert now - timedelta(minutes=5) < waiting.oldest <= now

    # A half-written file is not a fax; a fax sent and removed no longer waits.
    (folder / ".tmp-x.pdf").write_bytes(b"%PDF")
    assert faxes.backlog(folder, now=later).count == 1  # type: ignore[union-attr]
    pdf.unlink()
    assert faxes.backlog(folder, now=later) is None


def test_no_folder_no_backlog(tmp_path: Path) -> None:
    assert faxes.backlog(tmp_path / "never-written", now=utcnow()) is None


def test_the_warning_names_the_folder_unless_a_gateway_sends_faxes(
    db_url: str, tmp_path: Path
) -> None:
    without = make_settings(db_url, tmp_path)
    warning = faxes.unsent_warning(without)

    assert warning is not None
    assert "OUTCRY_FAX_GATEWAY" in warning
    assert str((tmp_path / "outbox" / "fax").resolve()) in warning
    gateway = make_settings(db_url, tmp_path, fax_gateway="{number}@fax.example.net")
    assert faxes.unsent_warning(gateway) is None
