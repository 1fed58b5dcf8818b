"""Cleaning, line breaking, labels and fonts: the parts every renderer stands on."""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.documents import fonts, labels, text
from app.documents.pdf import Signer, render_letter
from tests.documents.helpers import KAZAKH, all_text, make_letter


def test_clean_keeps_words_and_drops_what_cannot_be_drawn() -> None:
    assert text.clean("a\u200bb\u200dc\ufeffd\u202ee\u00adf") == "abcdef"
    assert text.clean("one\r\ntwo\rthree\u2028four") == "one\ntwo\nthree\nfour"
    assert text.clean("10\u202f000 and 23\u00a0Nov") == "10\u00a0000 and 23\u00a0Nov"
    assert text.clean("и\u0306 е\u0308") == "й ё"  # decomposed letters find their glyphs
    assert text.clean("❤\ufe0f") == "❤"


def test_paragraphs_split_at_blank_lines_and_keep_single_breaks() -> None:
    assert text.paragraphs("a\nb\n\n \n\nc  \n") == ["a\nb", "c"]
    assert text.paragraphs(" \n\t\n") == []


def test_wrap_fills_lines_up_to_the_limit() -> None:
    words = "solidarity forever " * 30
    limit = 300.0

    lines = text.wrap(words.strip(), fonts.SERIF, 11, limit)

    assert len(lines) > 3
    assert " ".join(lines) == words.strip()
    for line in lines:
        assert text.width(line, fonts.SERIF, 11) <= limit
    for line, following in itertools.pairwise(lines):
        # Greedy: the next line's first word would not have fitted.
        grown = f"{line} {following.split()[0]}"
        assert text.width(grown, fonts.SERIF, 11) > limit


def test_wrap_cuts_words_longer_than_a_line() -> None:
    lines = text.wrap("x" * 500 + " tail", fonts.SERIF, 11, 100.0)

    assert "".join(lines).replace(" ", "") == "x" * 500 + "tail"
    assert all(text.width(line, fonts.SERIF, 11) <= 100.0 for line in lines)


def test_wrap_never_loops_on_a_column_narrower_than_a_letter() -> None:
    assert text.wrap("Ж" * 5, fonts.SERIF, 11, 1.0) == ("Ж",) * 5


def test_no_break_space_holds_words_together() -> None:
    date = "23\u00a0ноября"
    limit = text.width(date, fonts.SERIF, 11) + 1  # "aaaa 23" would fit, were it a space

    lines = text.wrap(f"aaaa {date}", fonts.SERIF, 11, limit)

    assert lines == ("aaaa", date)


def test_fit_shortens_with_an_ellipsis() -> None:
    assert text.fit("short", fonts.SANS, 10, 100) == "short"
    cut = text.fit("a rather long organisation name " * 5, fonts.SANS, 10, 100)
    assert cut.endswith("…")
    assert text.width(cut, fonts.SANS, 10) <= 100


@pytest.mark.parametrize("language", ["en", "ru", "kk", "de", "fr", "es"])
def test_every_label_is_there_and_fills_its_fields(language: str) -> None:
    # The labels come from the gettext catalogs (context "pdf"); tests/web/test_i18n.py
    # checks that each catalog translates every one of them.
    table = labels.labels(language)
    assert set(table) == set(labels.labels("en"))
    assert all(table.values())
    assert "%" not in labels.label(language, "page", n=1, m=2)
    assert "%" not in labels.label(language, "dates", first="1", last="2")
    if language != "en":
        assert table["handover"] != labels.labels("en")["handover"]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("ru", "Страница 2 из 3"),
        ("ru-KZ", "Страница 2 из 3"),
        ("kk_KZ", "Бет 2 / 3"),
        ("de", "Seite 2 von 3"),
        ("pt", "Page 2 of 3"),
        ("", "Page 2 of 3"),
    ],
)
def test_page_label_by_language(language: str, expected: str) -> None:
    assert labels.label(language, "page", n=2, m=3) == expected


def test_fonts_cover_latin_cyrillic_and_kazakh() -> None:
    for char in "AZaz" + "АЯаяЁё" + KAZAKH.replace(" ", "") + "«»–—№€":
        assert fonts.covers(char), char
    assert not fonts.covers("😀")


def test_fonts_are_loaded_once_for_every_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "_fonts", None)  # as in a fresh process
    barrier = threading.Barrier(8)

    def load() -> int:
        barrier.wait()
        return id(fonts.registered())

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: load(), range(8)))

    assert len(ids) == 1


def test_threads_rendering_at_once_get_the_same_pdfs_as_one_at_a_time() -> None:
    # Letters outside the fixed first subset make each document build subsets of its own.
    rare = "ŐőŰűĂăȘșȚț"
    docs = [
        make_letter(
            body=f"{rare[n % len(rare) :]} {KAZAKH} message {n}",
            signer=Signer(f"Signer {n} {rare[: n % len(rare)]}"),
        )
        for n in range(16)
    ]
    alone = [render_letter(doc) for doc in docs]

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(render_letter, docs))

    assert together == alone
    assert rare in all_text(alone[0])
