"""Characters PT Serif and PT Sans lack never vanish from a PDF: they are drawn from a
fallback face (DejaVu Sans, Symbola, Droid Sans Fallback: Debian packages that
scripts/test and the Dockerfile install), and one no face has is drawn as a mark."""

from __future__ import annotations

from pathlib import Path

from app.documents import fonts, text
from app.documents.pdf import Signer, render_letter
from tests.documents.helpers import all_text, ink, make_letter, render_png, squash

# Greek, a star and a check mark (DejaVu), emoji (Symbola), Chinese and Japanese (Droid).
FALLBACK = "Ελευθερία ★ ✓ ✊ 😀 🌹 团结就是力量 連帯"
# U+1FAE0 (melting face, Unicode 14) is in none of the faces.
NOWHERE = "\U0001fae0"


def test_every_fallback_face_is_installed() -> None:
    missing = [str(path) for _, path in fonts.FALLBACK_FILES if not path.is_file()]
    assert not missing, f"install fonts-dejavu-core fonts-symbola fonts-droid-fallback: {missing}"


def test_characters_the_fonts_lack_are_drawn_and_read_back(tmp_path: Path) -> None:
    name = f"Ли Вэй {NOWHERE} 李伟"
    data = render_letter(make_letter(body=FALLBACK, signer=Signer(name=name)))

    found = squash(all_text(data))
    assert squash(FALLBACK) in found
    assert squash("Ли Вэй [U+1FAE0] 李伟") in found
    # And they are ink on the page, not empty boxes: the same letter with every one of
    # those characters taken out has clearly less of it.
    plain = render_letter(make_letter(body="", signer=Signer(name="Ли Вэй")))
    [with_them] = render_png(data, tmp_path, "with")
    [without] = render_png(plain, tmp_path, "without")
    assert ink(with_them) > ink(without) * 1.05


def test_a_character_no_face_has_is_marked_not_dropped() -> None:
    assert text.clean(f"a{NOWHERE}b") == "a[U+1FAE0]b"
    assert text.clean("a😀b") == "a😀b"  # Symbola has it
