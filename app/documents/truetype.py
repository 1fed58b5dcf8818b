"""TrueType faces, read with reportlab: the one module that touches reportlab's internals.

Outcry writes its own PDFs (writer.py, subsets.py) and uses reportlab for one thing it
does well: parsing a TrueType file and cutting subsets of it. reportlab documents a
`TTFont` only as something to register and draw with on its own canvas; what Outcry
reads from it is undocumented, so every such use is here and nowhere else, and a face
is checked for all of it when it is loaded, so a reportlab that changed says so at once
(FontLibraryChanged) instead of drawing a wrong PDF.

What this relies on (reportlab.pdfbase.ttfonts; the range in pyproject.toml is the one
tests/documents/test_reportlab_range.py renders a letter with, at both ends):
- `TTFont(name, path)` parses the file (public). Its `.face`, a `TTFontFace`, is not
  documented; from it:
  - `charToGlyph`: dict, code point -> glyph index: which characters the face has;
  - `charWidths`: dict, code point -> advance width in thousandths of an em, and
    `defaultWidth`, the missing glyph's;
  - `name`: the PostScript name (bytes); `flags`, `bbox`, `italicAngle`, `ascent`,
    `descent`, `capHeight`, `stemV`: a PDF font descriptor's values, in thousandths
    of an em (read once, when the face is loaded);
  - `makeSubset(codes)`: a TrueType font program holding the glyphs of `codes` (code
    points) whose built-in cmap maps byte n to codes[n]; a code the face lacks gets
    the missing glyph. The parser reads with a cursor kept on the face, so one face
    never cuts two subsets at once (Face.subset holds its lock).
- `pdfmetrics.registerFont` and `registerFontFamily` (public) make the faces usable by
  name in reportlab's own layout, which only benchmarks/pdf.py uses.
Elsewhere in app/documents only documented constants are imported: `mm`
(reportlab.lib.units) and the `A4` and `LETTER` page sizes (reportlab.lib.pagesizes).

Two helpers reportlab has but does not document, the subset tag (`SUBSETN`) and the
ToUnicode CMap (`makeToUnicodeCMap`), are written out here instead: they are a few lines
of the PDF specification, and reportlab's CMap writes a code point past U+FFFF in a
form readers reject.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont


class FontLibraryChanged(RuntimeError):
    """The installed reportlab lacks something this module relies on (see its docstring)."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A PDF font descriptor's values for a face, in thousandths of an em."""

    flags: int
    bbox: tuple[int, int, int, int]
    italic_angle: float
    ascent: int
    descent: int
    cap_height: int
    stem_v: int


def _read(face: object, attribute: str, kind: type | tuple[type, ...] | None) -> Any:
    """The face's attribute, if it is of `kind` (None: a method); else FontLibraryChanged."""
    value = getattr(face, attribute, None)
    if not (callable(value) if kind is None else isinstance(value, kind)):
        raise FontLibraryChanged(
            f"reportlab {reportlab.Version}: a TrueType face's {attribute} is "
            f"{type(value).__name__}, not what Outcry reads (see app/documents/truetype.py); "
            "install the reportlab version pyproject.toml names"
        )
    return value


class Face:
    """One TrueType face: the characters it has, their widths, its descriptor, subsets."""

    def __init__(self, name: str, path: Path) -> None:
        font = TTFont(name, str(path))
        face = font.face
        number = (int, float)
        self.name = name
        self.postscript_name = bytes(_read(face, "name", bytes))
        self.glyphs: Mapping[int, int] = _read(face, "charToGlyph", dict)
        self.widths: Mapping[int, float] = _read(face, "charWidths", dict)
        self.missing_width = float(_read(face, "defaultWidth", number))
        box = _read(face, "bbox", (list, tuple))
        self.descriptor = Descriptor(
            flags=_read(face, "flags", int),
            bbox=(int(box[0]), int(box[1]), int(box[2]), int(box[3])),
            italic_angle=float(_read(face, "italicAngle", number)),
            ascent=round(_read(face, "ascent", number)),
            descent=round(_read(face, "descent", number)),
            cap_height=round(_read(face, "capHeight", number)),
            stem_v=round(_read(face, "stemV", number)),
        )
        self._make_subset = _read(face, "makeSubset", None)
        self._lock = threading.Lock()
        self.font = font

    def covers(self, code: int) -> bool:
        """True when the face has a glyph for this code point."""
        return code in self.glyphs

    def width(self, code: int) -> float:
        """The advance width of a code point in thousandths of an em (the missing glyph's
        when the face lacks it)."""
        return float(self.widths.get(code, self.missing_width))

    def subset(self, codes: Sequence[int]) -> bytes:
        """A TrueType font program whose byte n draws codes[n] (at most 256 codes)."""
        with self._lock:
            return bytes(self._make_subset(list(codes)))


def load(name: str, path: Path) -> Face:
    """Parse a TrueType file and register it under `name` for reportlab's own layout."""
    face = Face(name, path)
    pdfmetrics.registerFont(face.font)
    return face


def register_family(normal: str, bold: str) -> None:
    """Tell reportlab's own layout which registered face is the bold of which."""
    pdfmetrics.registerFontFamily(normal, normal=normal, bold=bold)


def subset_tag(n: int) -> bytes:
    """The six capital letters before a subset's font name (PDF 1.7, 9.6.4): unique per
    subset in a document; 0 -> AAAAAA, 12 -> AAAABC."""
    return bytes(ord("A") + int(digit) for digit in f"{n:06d}")


def to_unicode_cmap(name: str, codes: Sequence[int]) -> bytes:
    """The ToUnicode CMap of a subset whose byte n draws codes[n], so its text can be
    searched and copied. A code point past U+FFFF (emoji, rare CJK) is written in UTF-16,
    as a surrogate pair, as PDF wants it."""
    pairs = "\n".join(
        f"<{n:02X}> <{chr(code).encode('utf-16-be').hex().upper()}>" for n, code in enumerate(codes)
    )
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        f"/CIDSystemInfo\n<< /Registry ({name})\n/Ordering ({name})\n/Supplement 0\n>> def\n"
        f"/CMapName /{name} def\n/CMapType 2 def\n"
        f"1 begincodespacerange\n<00> <{len(codes) - 1:02X}>\nendcodespacerange\n"
        f"{len(codes)} beginbfchar\n{pairs}\nendbfchar\n"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    ).encode("ascii")
