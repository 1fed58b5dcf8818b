"""The fax folder: where faxes wait when no gateway sends them, and what is waiting there.

Without OUTCRY_FAX_GATEWAY a fax is not sent: its PDF is written to the outbox's fax
folder (transports.FaxFolderTransport) for someone, or a fax modem's spool, to send
and then remove. Both demo targets have fax numbers, so an operator who never set a
gateway would otherwise learn of it only when a target says it never got a fax: the
processes say so when they start, and the dashboard when faxes are left waiting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.core.config import Settings

# A spool that sends what it finds takes a file within minutes; a fax still there after
# this long is one nobody is sending.
PILING_UP_AFTER = timedelta(hours=1)


def folder(settings: Settings) -> Path:
    """Where fax PDFs are written when there is no gateway (absolute: it is said to people)."""
    return (settings.outbox_dir / "fax").resolve()


def unsent_warning(settings: Settings) -> str | None:
    """What `outcry serve` and `outcry worker` say at start when faxes are written to a
    folder instead of sent; None with a gateway."""
    if settings.fax_gateway:
        return None
    return (
        f"OUTCRY_FAX_GATEWAY is not set: faxes are not sent but written as PDFs to "
        f"{folder(settings)}, where they wait for you to send them. Set it to "
        "your e-mail-to-fax gateway ({number}@fax.example.net) to send them."
    )


@dataclass(frozen=True, slots=True)
class Backlog:
    """Faxes waiting in the folder: how many, and since when the oldest has waited."""

    folder: Path
    count: int
    oldest: datetime


def backlog(directory: Path, *, now: datetime) -> Backlog | None:
    """The faxes waiting in `directory`, if the oldest has waited longer than
    PILING_UP_AFTER (a fax sent and removed in time is no one's concern); else None."""
    count, oldest = 0, None
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                # Skip write_atomic's temporaries (app.core.files) and anything else.
                if entry.name.startswith(".") or not entry.name.endswith(".pdf"):
                    continue
                try:
                    written = entry.stat().st_mtime
                except FileNotFoundError:  # sent and removed while we looked
                    continue
                count += 1
                oldest = written if oldest is None else min(oldest, written)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if oldest is None:
        return None
    since = datetime.fromtimestamp(oldest, UTC)
    if now - since <= PILING_UP_AFTER:
        return None
    return Backlog(folder=directory, count=count, oldest=since)
