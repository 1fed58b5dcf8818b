"""Plain-text handling for the renderers: cleaning, measuring and line breaking.

Supporter text is never parsed as markup anywhere in app/documents: it is cleaned
here and drawn as literal strings, so reportlab's Paragraph mini-language (and the
colour expressions behind CVE-2023-33733) is never in reach of it.
"""

import functools
import unicodedata

from app.documents import fonts

NBSP = "\u00a0"
_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")
# Longer strings are measured every time: caching them would let one hostile
# letter after another fill memory with single-use keys.
_CACHED_WORD = 64
_CACHED_PARAGRAPH = 2000


class _Cleaner(dict[int, str | None]):
    """A str.translate table that classifies each character once, on first sight."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        category = unicodedata.category(char)
        result: str | None = char
        if char == "\n":
            result = char
        elif char == "\t":
            result = " "
        elif category in ("Cc", "Cs", "Cf") or _is_variation_selector(code):
            # Controls, lone surrogates and invisible format characters (zero-width
            # spaces and joiners, bidi overrides, BOM, soft hyphen) have nothing to draw.
            result = None
        elif category in ("Zl", "Zp"):
            result = "\n"
        elif category == "Zs":
            result = NBSP if char in _NO_BREAK_SPACES else " "
        elif not fonts.covers(char) and fonts.fallback_for(code) is None:
            # No face has it: say so on the page rather than leave a silent gap.
            result = fonts.mark(char)
        self[code] = result
        return result


def _is_variation_selector(code: int) -> bool:
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


_CLEANER = _Cleaner()


def clean(text: str) -> str:
    """Normalise text for drawing: \\n line ends, no controls or invisible characters."""
    # NFC first: a letter typed as base + combining mark becomes the single
    # precomposed letter the fonts have a glyph for (й, ё, Kazakh ә...).
    text = unicodedata.normalize("NFC", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CLEANER)


def one_line(text: str) -> str:
    """Clean text and fold its lines into one, for fields that are a single line."""
    return " ".join(clean(text).split("\n")).strip()


def lines(text: str) -> str:
    """Clean text keeping its non-empty lines, for multi-line fields such as addresses."""
    return "\n".join(line.strip(" ") for line in clean(text).split("\n") if line.strip())


def paragraphs(text: str) -> list[str]:
    """Split cleaned text into paragraphs at blank lines; single newlines are kept."""
    out = []
    for block in clean(text).split("\n\n"):
        lines = [line.strip(" ") for line in block.split("\n")]
        joined = "\n".join(lines).strip("\n")
        if joined:
            out.append(joined)
    return out


def width(text: str, font: str, size: float) -> float:
    """Width of text in points when set in the named font at size."""
    if len(text) <= _CACHED_WORD:
        return _em_width(text, font) * size
    return _measure(text, font) * size


@functools.lru_cache(maxsize=1 << 14)
def _em_width(text: str, font: str) -> float:
    return _measure(text, font)


def _measure(text: str, font: str) -> float:
    face = fonts.registered()[font]
    widths = face.widths
    total = 0.0
    for char in text:
        wide = widths.get(ord(char))
        if wide is None:
            wide = _fallback_width(ord(char), face.missing_width)
        total += wide
    return total / 1000.0


@functools.lru_cache(maxsize=4096)
def _fallback_width(code: int, missing: float) -> float:
    """A character the face lacks is drawn in a fallback face, at that face's width."""
    name = fonts.fallback_for(code)
    if name is None:
        return missing
    return fonts.font(name).width(code)


def wrap(text: str, font: str, size: float, limit: float) -> tuple[str, ...]:
    """Break text into lines no wider than limit; newlines in text are hard breaks."""
    if len(text) <= _CACHED_PARAGRAPH:
        return _wrap_cached(text, font, size, limit)
    return _wrap(text, font, size, limit)


@functools.lru_cache(maxsize=512)
def _wrap_cached(text: str, font: str, size: float, limit: float) -> tuple[str, ...]:
    return _wrap(text, font, size, limit)


def _wrap(text: str, font: str, size: float, limit: float) -> tuple[str, ...]:
    lines: list[str] = []
    for hard_line in text.split("\n"):
        lines.extend(_wrap_line(hard_line, font, size, limit))
    return tuple(lines)


def _wrap_line(text: str, font: str, size: float, limit: float) -> list[str]:
    space = width(" ", font, size)
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    for word in text.split(" "):
        if not word:
            continue
        wide = width(word, font, size)
        if wide > limit:
            if current:
                lines.append(" ".join(current))
            *whole, last = _cut(word, font, size, limit)
            lines.extend(whole)
            current, used = [last], width(last, font, size)
        elif current and used + space + wide > limit:
            lines.append(" ".join(current))
            current, used = [word], wide
        else:
            used += (space if current else 0.0) + wide
            current.append(word)
    if current or not lines:
        lines.append(" ".join(current))
    return lines


def _cut(word: str, font: str, size: float, limit: float) -> list[str]:
    """Cut a word wider than the line into line-wide pieces (URLs, hostile input)."""
    pieces: list[str] = []
    start, used = 0, 0.0
    for i, char in enumerate(word):
        wide = width(char, font, size)
        # Every piece takes at least one character, so a column narrower than a
        # single glyph still terminates.
        if used + wide > limit and i > start:
            pieces.append(word[start:i])
            start, used = i, 0.0
        used += wide
    pieces.append(word[start:])
    return pieces


def fit(text: str, font: str, size: float, limit: float) -> str:
    """Shorten one line to fit within limit, ending with an ellipsis when cut."""
    if width(text, font, size) <= limit:
        return text
    ellipsis = "…"
    room = limit - width(ellipsis, font, size)
    used = 0.0
    for i, char in enumerate(text):
        used += width(char, font, size)
        if used > room:
            return text[:i].rstrip() + ellipsis
    return text
