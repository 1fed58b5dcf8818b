"""Which byte stands for which character in each embedded font subset.

A TrueType font is embedded in 8-bit subsets of at most 256 glyphs. Subset 0 of
every face holds one fixed repertoire (ASCII, the Russian and Kazakh alphabets,
West-European letters, common punctuation), the same in every document, so its
font program is built once per process and a line set only in it is encoded once
per process. Characters outside it get further subsets per document, built at close. Characters
the face lacks are drawn from a fallback face (fonts.fallbacks()), in subsets of its
own; text.clean() has already turned those no face has into a visible mark.
"""

import functools
import re
import zlib
from collections.abc import Callable

from app.documents import fonts, truetype
from app.documents.truetype import Face

_SPACE = 32
_BASE_SLOTS = [*range(1, 32), *range(127, 256)]
_PREFERRED = (
    "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопрстуфхцчшщъыьэюяЁё"
    "ӘәҒғҚқҢңӨөҰұҮүҺһІі"
    "–—‘’‚“”„«»…•№€£©°×·"
    "ÀÁÂÄÇÈÉÊËÍÎÏÑÓÔÖÙÚÛÜßàáâäçèéêëíîïñóôöùúûüÿŒœÆæØøÅåÃãÕõ"
    "ЄєЇїҐґЎўĄąĆćĘęŁłŃńŚśŹźŻżŞşĞğİıČčŠšŽž"
)
_ALL_FACES = (fonts.SERIF, fonts.SERIF_BOLD, fonts.SANS, fonts.SANS_BOLD)


class _Base:
    """Subset 0 of one face: its code points by byte, and a fast str -> bytes table."""

    def __init__(self, face: Face) -> None:
        covered = face.glyphs
        codes = [0] * 256
        for n in range(_SPACE, 127):
            codes[n] = n
        extra = [ord(c) for c in dict.fromkeys(_PREFERRED) if ord(c) in covered]
        for slot, code in zip(_BASE_SLOTS, extra, strict=False):
            codes[slot] = code
        self.codes = tuple(codes)
        self.table = {code: chr(n) for n, code in enumerate(codes) if code}
        self.table[0xA0] = " "  # a no-break space draws as a space; the break was decided earlier
        listed = "".join(re.escape(chr(code)) for code in self.table)
        self.outside = re.compile(f"[^{listed}]")


@functools.cache
def _base(font_name: str) -> _Base:
    return _Base(fonts.registered()[font_name])


@functools.lru_cache(maxsize=4096)
def _base_run(font_name: str, size: bytes, line: str) -> bytes:
    data = line.translate(_base(font_name).table).encode("latin-1")
    return b"/%s+0 %s Tf <%s> Tj" % (_resource(font_name), size, data.hex().encode())


@functools.lru_cache(maxsize=64)
def _program(font_name: str, codes: tuple[int, ...]) -> tuple[bytes, int, bytes]:
    """The compressed subset font file, its length, and its compressed ToUnicode map."""
    data = fonts.font(font_name).subset(codes)
    cmap = truetype.to_unicode_cmap("Outcry", codes)
    return zlib.compress(data, 6), len(data), zlib.compress(cmap, 6)


def _resource(font_name: str) -> bytes:
    if font_name in _ALL_FACES:
        return b"F%d" % (_ALL_FACES.index(font_name) + 1)
    names = [name for name, _ in fonts.FALLBACK_FILES]
    return b"F%d" % (len(_ALL_FACES) + names.index(font_name) + 1)


class Encoder:
    """One document's glyph encoding: turns lines into text-showing operators."""

    def __init__(self) -> None:
        self._extra: dict[str, dict[int, tuple[int, int]]] = {}
        self._subsets: dict[str, list[list[int]]] = {}
        self._used: set[tuple[str, int]] = set()

    def show(self, line: str, font_name: str, size: bytes) -> bytes:
        """Operators that draw line in the font at size (a PDF number) from the text position."""
        base = _base(font_name)
        if base.outside.search(line) is None:
            self._used.add((font_name, 0))
            return _base_run(font_name, size, line)
        runs = []
        for face, subset, data in self._split(line, font_name, base):
            self._used.add((face, subset))
            runs.append(
                b"/%s+%d %s Tf <%s> Tj" % (_resource(face), subset, size, data.hex().encode())
            )
        return b" ".join(runs)

    def _split(self, line: str, font_name: str, base: _Base) -> list[tuple[str, int, bytes]]:
        covered = fonts.registered()[font_name].glyphs
        out: list[tuple[str, int, bytearray]] = []
        for char in line:
            code = ord(char)
            face = font_name
            mapped = base.table.get(code)
            if mapped is not None:
                where = (0, ord(mapped))
            elif code in covered:
                where = self._where(font_name, code, base.codes)
            elif (fallback := fonts.fallback_for(code)) is not None:
                face, where = fallback, self._where(fallback, code, ())
            else:
                where = (0, 0)  # (text.clean() marks these) the missing-glyph box
            if not out or out[-1][:2] != (face, where[0]):
                out.append((face, where[0], bytearray()))
            out[-1][2].append(where[1])
        return [(face, subset, bytes(data)) for face, subset, data in out]

    def _where(self, face: str, code: int, base_codes: tuple[int, ...]) -> tuple[int, int]:
        """(subset, byte) of a code point outside subset 0 of `face`, assigned on first use.
        A fallback face has no subset 0 of its own: its subsets start at 1."""
        extra = self._extra.setdefault(face, {})
        subsets = self._subsets.setdefault(face, [list(base_codes)])
        return extra.get(code) or self._assign(code, extra, subsets)

    @staticmethod
    def _assign(
        code: int, extra: dict[int, tuple[int, int]], subsets: list[list[int]]
    ) -> tuple[int, int]:
        if len(subsets) == 1 or len(subsets[-1]) == 256:
            # Byte 0 is the missing glyph and byte 32 a space in every subset, as
            # reportlab lays them out, so word spacing and gaps behave the same.
            subsets.append([0] * _SPACE + [_SPACE])
        subsets[-1].append(code)
        extra[code] = (len(subsets) - 1, len(subsets[-1]) - 1)
        return extra[code]

    def objects(self, allocate: Callable[[], int]) -> tuple[bytes, list[tuple[int, bytes]]]:
        """The font resource dictionary and the numbered font objects for the used subsets."""
        entries, bodies = [], []
        for font_name, subset in sorted(self._used):
            codes = tuple(self._subsets[font_name][subset]) if subset else _base(font_name).codes
            face = fonts.font(font_name)
            base_font = truetype.subset_tag(subset) + b"+" + face.postscript_name
            program, length, cmap = _program(font_name, codes)
            file_ref, cmap_ref, descriptor_ref, font_ref = (allocate() for _ in range(4))
            bodies.append((file_ref, _stream(program, b"/Length1 %d" % length)))
            bodies.append((cmap_ref, _stream(cmap, b"")))
            bodies.append((descriptor_ref, _descriptor(face, base_font, file_ref)))
            widths = b" ".join(b"%d" % round(face.width(code)) for code in codes)
            name = b"%s+%d" % (_resource(font_name), subset)
            bodies.append(
                (
                    font_ref,
                    b"<< /Type /Font /Subtype /TrueType /Name /%s /BaseFont /%s /FirstChar 0 "
                    b"/LastChar %d /Widths [%s] /FontDescriptor %d 0 R /ToUnicode %d 0 R >>"
                    % (name, base_font, len(codes) - 1, widths, descriptor_ref, cmap_ref),
                )
            )
            entries.append(b"/%s %d 0 R" % (name, font_ref))
        return b"<< " + b" ".join(entries) + b" >>", bodies


def _stream(data: bytes, extra: bytes) -> bytes:
    return b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n%s\nendstream" % (
        len(data),
        extra + b" " if extra else b"",
        data,
    )


def _descriptor(face: Face, base_font: bytes, file_ref: int) -> bytes:
    values = face.descriptor
    # Symbolic, not non-symbolic: glyphs are found by byte code through the subset's cmap.
    flags = (values.flags & ~32) | 4
    box = b" ".join(b"%d" % v for v in values.bbox)
    return (
        b"<< /Type /FontDescriptor /FontName /%s /Flags %d /FontBBox [%s] /ItalicAngle %d "
        b"/Ascent %d /Descent %d /CapHeight %d /StemV %d /MissingWidth %d /FontFile2 %d 0 R >>"
        % (
            base_font,
            flags,
            box,
            round(values.italic_angle),
            values.ascent,
            values.descent,
            values.cap_height,
            values.stem_v,
            face.missing_width,
            file_ref,
        )
    )
