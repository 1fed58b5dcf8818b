"""Files: written whole for other processes to read (the outbox's `.eml` files, fax PDFs),
and named safely for a download."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

# Half-written files start with this (a dot: hidden, and skipped by whoever lists the
# folder for finished files, as the fax backlog does).
TEMP_PREFIX = ".tmp-"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename
    it: a reader never sees half a file, and writing the same path again replaces it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_filename(name: str) -> str:
    """An ASCII file name any browser and shell takes as it is."""
    # Only what is replaced is tidied: a letter's public id may itself hold "--" or end
    # in "-", and its file name must keep it exactly.
    cleaned = re.sub(r"-*[^A-Za-z0-9._-]+-*(?=\.|$)", "", name)  # no dash before the extension
    cleaned = re.sub(r"-*[^A-Za-z0-9._-]+-*", "-", cleaned).strip("-.")
    return cleaned[-150:] or "document"


def download_headers(filename: str) -> dict[str, str]:
    """The headers that make a response a download saved as `filename` (made safe)."""
    return {"Content-Disposition": f'attachment; filename="{safe_filename(filename)}"'}
