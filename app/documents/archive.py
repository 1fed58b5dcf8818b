"""A ZIP archive written as a stream: each file's bytes leave as soon as it is added."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime


class _Pipe:
    """A write-only file whose bytes are taken out as they arrive.

    It has no tell() or seek(), so zipfile writes each entry with a data descriptor
    after its data instead of seeking back to patch the header: nothing of an entry
    needs to stay in memory once it has been taken.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def iter_zip(files: Iterable[tuple[str, datetime, bytes]]) -> Iterator[bytes]:
    """The archive of (name, modified, content) files as chunks, one file at a time."""
    pipe = _Pipe()
    # Deflate rather than store: a stored entry followed by a data descriptor has no
    # length in its header, which some unzip tools cannot read front to back.
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, modified, content in files:
            info = zipfile.ZipInfo(name, date_time=_zip_time(modified))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
            chunk = pipe.take()
            if chunk:
                yield chunk
    yield pipe.take()


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    # ZIP dates start in 1980 and have no zone; letters are dated in UTC everywhere.
    moment = max(moment.replace(tzinfo=UTC), datetime(1980, 1, 1, tzinfo=UTC))
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
