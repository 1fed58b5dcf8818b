"""A PDF file written front to back, one page at a time.

reportlab's canvas holds every page of a document in memory until save(); a bundle
of 10,000 letters would not fit. This writer sends each page to the output as soon
as it is finished and keeps only object offsets, so memory stays flat however many
pages there are. The fonts are written last, once, as subsets (see subsets.py).
"""

import functools
import zlib
from array import array
from typing import Protocol

from app.documents.subsets import Encoder

# Index tables are written this many entries at a time, never as one big string.
_CHUNK = 1024


class Sink(Protocol):
    """Where a PDF goes: anything with write(bytes), such as a file or a BytesIO."""

    def write(self, data: bytes, /) -> object: ...


@functools.lru_cache(maxsize=4096)
def pdf_number(value: float) -> bytes:
    """A PDF number: short, no exponent, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return (text if text != "-0" else "0").encode("ascii")


def pdf_text(value: str) -> bytes:
    """A PDF text string (UTF-16 with a byte-order mark), for titles and such."""
    return b"<feff" + value.encode("utf-16-be", "replace").hex().encode("ascii") + b">"


class PdfWriter:
    """Writes a PDF to out page by page; close() adds fonts, page tree and index."""

    def __init__(self, out: Sink, *, title: str = "", language: str = "") -> None:
        self._out = out
        self._written = 0
        # Flat arrays of machine integers: 8 bytes per object, however long the bundle.
        self._offsets = array("Q")
        self._kids = array("Q")
        self._encoder = Encoder()
        self._title = title
        self._language = language
        self._pages_ref = self._allocate()
        self._resources_ref = self._allocate()
        self._emit(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    def show(self, text: str, font: str, size: float) -> bytes:
        """Content-stream operators that draw text at the current text position."""
        return self._encoder.show(text, font, pdf_number(size))

    def add_page(
        self, width: float, height: float, content: bytes, *, position: int | None = None
    ) -> None:
        """Write one finished page: its compressed content stream and page object. It
        comes last in the document, or at `position` (0: first) when one is given: the
        page tree, written at close(), decides the order, not where the bytes are."""
        stream = zlib.compress(content, 6)
        content_ref = self._allocate()
        self._object(
            content_ref,
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
        )
        page_ref = self._allocate()
        self._object(
            page_ref,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Resources %d 0 R "
            b"/Contents %d 0 R >>"
            % (
                self._pages_ref,
                pdf_number(width),
                pdf_number(height),
                self._resources_ref,
                content_ref,
            ),
        )
        if position is None:
            self._kids.append(page_ref)
        else:
            self._kids.insert(position, page_ref)

    def close(self) -> int:
        """Finish the file (fonts, page tree, catalog, cross-references); return pages."""
        if not self._kids:
            raise ValueError("a PDF needs at least one page")
        font_dict, font_objects = self._encoder.objects(self._allocate)
        for number, body in font_objects:
            self._object(number, body)
        self._object(self._resources_ref, b"<< /Font %s /ProcSet [/PDF /Text] >>" % font_dict)
        self._write_page_tree()
        info_ref = self._allocate()
        title = b" /Title " + pdf_text(self._title) if self._title else b""
        self._object(info_ref, b"<< /Producer (Outcry)%s >>" % title)
        catalog_ref = self._allocate()
        lang = b" /Lang " + pdf_text(self._language) if self._language else b""
        self._object(catalog_ref, b"<< /Type /Catalog /Pages %d 0 R%s >>" % (self._pages_ref, lang))
        self._write_xref(catalog_ref, info_ref)
        return len(self._kids)

    def _write_page_tree(self) -> None:
        self._offsets[self._pages_ref - 1] = self._written
        self._emit(
            b"%d 0 obj\n<< /Type /Pages /Count %d /Kids [" % (self._pages_ref, len(self._kids))
        )
        for first in range(0, len(self._kids), _CHUNK):
            chunk = self._kids[first : first + _CHUNK]
            self._emit(b"".join(b"%d 0 R\n" % ref for ref in chunk))
        self._emit(b"] >>\nendobj\n")

    def _allocate(self) -> int:
        self._offsets.append(0)
        return len(self._offsets)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def _object(self, number: int, body: bytes) -> None:
        self._offsets[number - 1] = self._written
        self._emit(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def _write_xref(self, catalog_ref: int, info_ref: int) -> None:
        start = self._written
        size = len(self._offsets) + 1
        self._emit(b"xref\n0 %d\n0000000000 65535 f \n" % size)
        for first in range(0, len(self._offsets), _CHUNK):
            chunk = self._offsets[first : first + _CHUNK]
            self._emit(b"".join(b"%010d 00000 n \n" % offset for offset in chunk))
        self._emit(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (size, catalog_ref, info_ref, start)
        )
