"""The union's bundle: hand-over page, then every letter, streamed in bounded memory."""

import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.documents import subsets, text
from app.documents.pdf import (
    Addressee,
    Handover,
    LetterDoc,
    Signer,
    iter_bundle,
    render_letter,
    write_bundle,
)
from tests.documents.helpers import (
    KAZAKH,
    ink,
    long_body,
    make_letter,
    page_texts,
    reader,
    render_png,
)


def handover(**overrides: object) -> Handover:
    fields: dict[str, object] = {
        "appeal_title": "Free Yerzhan Yelshibaev",
        "summary": "Letters from trade unionists to the President of Kazakhstan.",
        "targets": (
            Addressee(
                "Kassym-Jomart Tokayev",
                "President",
                "Akorda",
                "Mangilik El 6\nAstana 010000",
            ),
            Addressee("Berik Asylov", "Prosecutor General"),
        ),
        "letter_count": 3,
        "by_country": (("Kazakhstan", 2), ("United Kingdom", 1)),
        "by_organisation": (("Unite the Union", 2), ("Кәсіподақ", 1)),
        "first_date": "1 November 2026",
        "last_date": "23 November 2026",
        "date": "24 November 2026",
    }
    fields.update(overrides)
    return Handover(**fields)  # type: ignore[arg-type]


def three_letters() -> list[LetterDoc]:
    return [
        make_letter(signer=Signer("Maria Okonkwo", "Unite the Union", "United Kingdom")),
        make_letter(
            language="ru",
            body=long_body(20),
            signer=Signer("Анна Петрова", "Профсоюз", "Россия"),
        ),
        make_letter(language="kk", signer=Signer(f"Әлия {KAZAKH}", "Кәсіподақ", "Қазақстан")),
    ]


def bundle(letters: list[LetterDoc], **overrides: object) -> tuple[bytes, int]:
    out = io.BytesIO()
    pages = write_bundle(out, handover(**overrides), iter(letters))
    return out.getvalue(), pages


def test_bundle_is_handover_page_then_each_letter_from_a_new_page() -> None:
    letters = three_letters()
    sizes = [len(reader(render_letter(doc)).pages) for doc in letters]

    data, count = bundle(letters)

    pages = page_texts(data)
    assert sizes[1] >= 2
    assert count == len(pages) == 1 + sum(sizes)
    starts = [1 + sum(sizes[:n]) for n in range(len(sizes))]
    for start, size, label in zip(starts, sizes, ("Page", "Страница", "Бет"), strict=True):
        assert pages[start].startswith("Kazakhstan Solidarity Campaign")
        first = f"{label} 1 of {size}" if label == "Page" else None
        assert first is None or first in pages[start]
    assert "Страница 1 из" in pages[starts[1]]
    assert f"Страница {sizes[1]} из {sizes[1]}" in pages[starts[1] + sizes[1] - 1]
    assert "Бет 1 / 1" in pages[starts[2]]
    assert KAZAKH in pages[starts[2]]


def test_handover_page_says_what_is_handed_over() -> None:
    data, _ = bundle(three_letters())

    first = page_texts(data)[0]
    for expected in (
        "Hand-over of letters",
        "24 November 2026",
        "Free Yerzhan Yelshibaev",
        "Letters from trade unionists",
        "Addressed to",
        "Kassym-Jomart Tokayev",
        "Prosecutor General",
        "Number of letters: 3",
        "Signed between 1 November 2026 and 23 November 2026",
        "Letters by country",
        "United Kingdom",
        "Letters by union",
        "Кәсіподақ",
    ):
        assert expected in first


def test_handover_counts_the_pages_of_the_whole_bundle() -> None:
    data, count = bundle(three_letters())

    pages = page_texts(data)
    assert count == len(pages) > 3
    # What the union hands over says how many pages it hands over, on its first page,
    # though the letters were written before their total was known.
    assert f"Pages in this bundle: {count}" in pages[0]
    assert f"Page 1 of {count}" in pages[0]
    assert pages[1].startswith("Kazakhstan Solidarity Campaign")


def test_handover_of_letters_signed_on_one_day_gives_that_day() -> None:
    data, _ = bundle([], first_date="5 May 2026", last_date="5 May 2026")

    first = page_texts(data)[0]
    assert "Signed on 5 May 2026" in first
    assert "between" not in first


def test_handover_in_russian() -> None:
    data, _ = bundle([], language="ru")

    first = page_texts(data)[0]
    for expected in (
        "Передача писем",
        "Адресаты",
        "Количество писем: 3",
        "Всего страниц: 1",
        "Подписаны с 1 November 2026 по 23 November 2026",
        "Письма по странам",
        "Страница 1 из 1",
    ):
        assert expected in first


def test_long_handover_flows_and_letters_still_start_on_new_pages() -> None:
    countries = tuple((f"Country {n}", n) for n in range(150))
    letters = three_letters()[:1]

    data, count = bundle(letters, by_country=countries)

    pages = page_texts(data)
    assert count == len(pages) >= 3
    assert "Country 149" in pages[-2]
    assert pages[-1].startswith("Kazakhstan Solidarity Campaign")
    assert f"Pages in this bundle: {count}" in pages[0]
    assert all(f"Page {n} of {count}" in pages[n - 1] for n in range(1, count))


def test_empty_bundle_is_just_the_handover() -> None:
    data, count = bundle([])

    assert count == 1
    assert len(reader(data).pages) == 1


def test_each_letter_keeps_its_page_size() -> None:
    data, _ = bundle([make_letter(), make_letter(page_size="letter")])

    boxes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader(data).pages]
    assert boxes == [pytest.approx((595.28, 841.89))] * 2 + [pytest.approx((612, 792))]


def test_letters_are_written_while_they_are_read() -> None:
    out = io.BytesIO()
    seen: list[int] = []

    def letters() -> Iterator[LetterDoc]:
        for n in range(5):
            seen.append(out.tell())
            yield make_letter(signer=Signer(f"Signer {n}"))

    write_bundle(out, handover(), letters())

    assert seen == sorted(seen)
    assert len(set(seen)) == 5  # output grew before each next letter was asked for


def test_iter_bundle_streams_the_same_bytes_in_chunks() -> None:
    letters = [make_letter(signer=Signer(f"Signer {n}")) for n in range(40)]

    chunks = list(iter_bundle(handover(), iter(letters), chunk_size=4096))
    data, _ = bundle(letters)

    assert len(chunks) > 3
    assert b"".join(chunks) == data


def test_memory_stays_flat_however_many_letters() -> None:
    def letters(n: int) -> Iterator[LetterDoc]:
        for _ in range(n):
            yield make_letter(body=f"{long_body(3)}\n\n{KAZAKH}")

    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            write_bundle(_CountingSink(), handover(), letters(n))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # The same letter over and over: the per-process caches (bounded by their
    # maxsize) are filled once, so any growth left is the bundle holding on to pages.
    peak(10)
    small, large = peak(200), peak(2000)

    assert large < small + 256 * 1024
    assert large < 4 * 1024 * 1024


def test_caches_shared_between_documents_are_bounded() -> None:
    for cached in (text._em_width, text._wrap_cached, subsets._base_run, subsets._program):
        assert cached.cache_info().maxsize is not None


class _CountingSink:
    """Discards what it is given, like a socket would, counting the bytes."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_bundle_renders_to_visible_pages(artifacts: Path) -> None:
    data, _ = bundle(three_letters())

    pngs = render_png(data, artifacts, "bundle")

    assert len(pngs) == len(reader(data).pages)
    for png in pngs:
        assert ink(png) > 0.002, f"{png.name} looks blank"
