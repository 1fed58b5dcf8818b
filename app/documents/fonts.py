"""The PT Serif and PT Sans faces every Outcry PDF is set in.

ParaType made them for the peoples of Russia and its neighbours, so one face covers
Latin, Cyrillic and the Kazakh letters (Ә Ғ Қ Ң Ө Ұ Ү Һ І) that many fonts lack.
"""

import functools
import json
import threading
from pathlib import Path
from types import ModuleType

import fontpkg_pt_sans
import fontpkg_pt_serif

from app.documents import truetype
from app.documents.truetype import Face

SERIF = "Outcry-Serif"
SERIF_BOLD = "Outcry-Serif-Bold"
SANS = "Outcry-Sans"
SANS_BOLD = "Outcry-Sans-Bold"

_FACES: dict[str, tuple[ModuleType, int]] = {
    SERIF: (fontpkg_pt_serif, 400),
    SERIF_BOLD: (fontpkg_pt_serif, 700),
    SANS: (fontpkg_pt_sans, 400),
    SANS_BOLD: (fontpkg_pt_sans, 700),
}

# Faces for what PT Serif and PT Sans lack, where the system has them (Debian's packages,
# which scripts/test and the Dockerfile install): DejaVu Sans (Greek, Hebrew, Arabic,
# Armenian, Georgian, many symbols), Symbola (emoji), Droid Sans Fallback (Chinese,
# Japanese, Korean). A character none of them has is drawn as a visible mark, `[U+1F600]`,
# never dropped.
FALLBACK_FILES = (
    ("Outcry-Fallback-DejaVu", Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")),
    ("Outcry-Fallback-Symbola", Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")),
    ("Outcry-Fallback-Droid", Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")),
)

_lock = threading.Lock()
_fonts: dict[str, Face] | None = None
_fallbacks: dict[str, Face] | None = None


def _face_path(package: ModuleType, weight: int) -> Path:
    # metadata.json is the package's own list of its faces, so no file name is guessed here.
    root = Path(package.ROOT)
    meta = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
    for entry in meta["files"]:
        if entry["weight"] == weight and entry["style"] == "normal":
            return root / str(entry["path"])
    raise LookupError(f"{meta['family']} has no upright face of weight {weight}")


def registered() -> dict[str, Face]:
    """Load and register the four faces once per process; return them by name."""
    global _fonts
    if _fonts is None:
        with _lock:
            if _fonts is None:
                loaded = {}
                for name, (package, weight) in _FACES.items():
                    loaded[name] = truetype.load(name, _face_path(package, weight))
                truetype.register_family(SERIF, bold=SERIF_BOLD)
                truetype.register_family(SANS, bold=SANS_BOLD)
                # Published whole, so the unlocked check above never sees a half-loaded set.
                _fonts = loaded
    return _fonts


def covers(char: str) -> bool:
    """True when the regular serif face has a glyph for this character."""
    return registered()[SERIF].covers(ord(char))


def fallbacks() -> dict[str, Face]:
    """The fallback faces this system has, loaded and registered once per process (only
    when a document first needs one)."""
    global _fallbacks
    if _fallbacks is None:
        with _lock:
            if _fallbacks is None:
                loaded = {}
                for name, path in FALLBACK_FILES:
                    if path.is_file():
                        loaded[name] = truetype.load(name, path)
                _fallbacks = loaded
    return _fallbacks


def font(name: str) -> Face:
    """A face by name: one of the four, or a fallback."""
    faces = registered()
    return faces[name] if name in faces else fallbacks()[name]


@functools.lru_cache(maxsize=4096)
def fallback_for(code: int) -> str | None:
    """The first fallback face with a glyph for this code point, or None."""
    for name, face in fallbacks().items():
        if face.covers(code):
            return name
    return None


def mark(char: str) -> str:
    """What is drawn for a character no face has: its code point, visibly."""
    return f"[U+{ord(char):04X}]"
