"""Files other processes read while we write them: the outbox's `.eml` files, fax PDFs."""

from __future__ import annotations

import os
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
