"""Letters, blank letters, faxes and signature sheets, read back as text and pictures."""

from pathlib import Path

import pytest
from pypdf.generic import DictionaryObject

from app.documents.pdf import (
    FaxCover,
    SignatureSheet,
    Signer,
    render_blank_letter,
    render_fax,
    render_letter,
    render_signature_sheet,
)
from tests.documents.helpers import (
    KAZAKH,
    all_text,
    colours,
    ink,
    long_body,
    make_letter,
    operations,
    page_texts,
    reader,
    render_png,
    squash,
)

A4 = (595.28, 841.89)
US_LETTER = (612.0, 792.0)
COLOUR_OPERATORS = {b"rg", b"RG", b"g", b"G", b"k", b"K", b"sc", b"SC", b"scn", b"SCN"}


def cover() -> FaxCover:
    return FaxCover(
        to_name="Kassym-Jomart Tokayev",
        to_fax="+7 7172 74 56 31",
        from_name="Kazakhstan Solidarity Campaign",
        subject="Stop the persecution of trade unionists",
        from_contact="https://example.org/kz",
    )


def sheet(**overrides: object) -> SignatureSheet:
    fields: dict[str, object] = {
        "title": "Free Yerzhan Yelshibaev",
        "summary": "Sign to demand the release of the Zhanaozen union leader.",
        "recipient_lines": ("Kassym-Jomart Tokayev, President", "Prosecutor General"),
    }
    fields.update(overrides)
    return SignatureSheet(**fields)  # type: ignore[arg-type]


def test_english_letter_prints_every_part_of_the_letter() -> None:
    pages = page_texts(render_letter(make_letter()))

    assert len(pages) == 1
    text = pages[0]
    for expected in (
        "Kazakhstan Solidarity Campaign",
        "23 November 2026",
        "Kassym-Jomart Tokayev",
        "President of the Republic of Kazakhstan",
        "Akorda",
        "Astana 010000",
        "Fax: +7 7172 74 56 31",
        "Stop the persecution of trade unionists in Kazakhstan",
        "Dear President Tokayev,",
        "Yours sincerely,",
        "Maria Okonkwo",
        "Unite the Union",
        "Leeds, United Kingdom",
        "Page 1 of 1",
    ):
        assert expected in text


def test_russian_letter_has_russian_text_and_page_labels() -> None:
    doc = make_letter(
        language="ru",
        date="23 ноября 2026 г.",
        subject="Прекратите преследование профсоюзных активистов",
        body="Уважаемый господин Президент!\n\nПросим освободить Ержана Елшибаева.",
        signer=Signer("Анна Петрова", "Профсоюз «Защита труда»", "Россия", "Самара"),
    )

    text = all_text(render_letter(doc))

    for expected in (
        "23 ноября 2026 г.",
        "Прекратите преследование профсоюзных активистов",
        "Просим освободить Ержана Елшибаева.",
        "Анна Петрова",
        "Профсоюз «Защита труда»",
        "Самара, Россия",
        "Факс: +7 7172 74 56 31",
        "Страница 1 из 1",
    ):
        assert expected in text


def test_kazakh_letters_survive_in_every_face() -> None:
    doc = make_letter(
        language="kk",
        sender_name=f"Ынтымақ {KAZAKH}",
        subject=f"Тақырып {KAZAKH}",
        body=f"Құрметті Президент! {KAZAKH}",
        signer=Signer(f"Әлия Нұрланқызы {KAZAKH}", "Кәсіподақ", "Қазақстан", "Шымкент"),
    )

    text = all_text(render_letter(doc))

    assert text.count(KAZAKH) == 4  # heading, subject and signer in bold, body in regular
    assert "Шымкент, Қазақстан" in text
    assert "Бет 1 / 1" in text


def test_unknown_language_falls_back_to_english_labels() -> None:
    assert "Page 1 of 1" in all_text(render_letter(make_letter(language="tlh")))


def test_long_letter_flows_onto_numbered_pages() -> None:
    pages = page_texts(render_letter(make_letter(body=long_body(20))))

    assert len(pages) >= 2
    for n, text in enumerate(pages, start=1):
        assert f"Page {n} of {len(pages)}" in text
    assert "20. On October 17" in pages[-1] or "20. On October 17" in pages[-2]
    assert "Maria Okonkwo" in pages[-1]


@pytest.mark.parametrize(
    ("page_size", "box"), [("A4", A4), ("letter", US_LETTER), ("nonsense", A4)]
)
def test_page_size_sets_the_media_box(page_size: str, box: tuple[float, float]) -> None:
    data = render_letter(make_letter(page_size=page_size, body=long_body(20)))

    for page in reader(data).pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(box)


def test_fonts_are_embedded_subsets_with_unicode_maps() -> None:
    pdf = reader(render_letter(make_letter()))

    resources = pdf.pages[0]["/Resources"].get_object()
    assert isinstance(resources, DictionaryObject)
    fonts = resources["/Font"].get_object()
    assert isinstance(fonts, DictionaryObject)
    assert len(fonts) == 2  # PT Serif regular and bold
    for ref in fonts.values():
        font = ref.get_object()
        assert "+PTSerif-" in font["/BaseFont"]
        assert "/FontFile2" in font["/FontDescriptor"]
        assert "/ToUnicode" in font


def test_same_letter_renders_to_the_same_bytes() -> None:
    assert render_letter(make_letter()) == render_letter(make_letter())


def test_blank_letter_leaves_signer_fields_to_fill_in() -> None:
    doc = make_letter(language="ru", signer=Signer("Should Not Appear", "Nor This Union"))

    text = all_text(render_blank_letter(doc))

    for caption in ("Имя и фамилия:", "Профсоюз:", "Страна:", "Подпись:", "Дата:"):
        assert caption in text
    assert "Should Not Appear" not in text
    assert "Nor This Union" not in text
    assert "Stop the persecution of trade unionists in Kazakhstan" in text
    assert "23 November 2026" not in text  # the date is written by hand too


def test_fax_starts_with_a_cover_counting_every_page() -> None:
    doc = make_letter(body=long_body(20))
    letter_pages = len(page_texts(render_letter(doc)))

    pages = page_texts(render_fax(doc, cover()))

    assert len(pages) == 1 + letter_pages
    front = pages[0]
    for expected in (
        "Fax",
        "To:",
        "Kassym-Jomart Tokayev",
        "Fax number:",
        "+7 7172 74 56 31",
        "From:",
        "Kazakhstan Solidarity Campaign",
        "https://example.org/kz",
        f"Pages: {1 + letter_pages} (including this cover sheet)",
        "Subject:",
        "Stop the persecution of trade unionists",
    ):
        assert expected in front
    assert "Page 1 of" in pages[1]
    assert "Maria Okonkwo" in pages[-1]


def test_fax_cover_stays_one_page_whatever_it_is_given() -> None:
    huge = "word " * 5000
    data = render_fax(
        make_letter(),
        FaxCover(to_name=huge, to_fax=huge, from_name=huge, subject=huge, from_contact=huge),
    )

    pages = page_texts(data)
    assert len(pages) == 2
    assert "Pages: 2 (including this cover sheet)" in pages[0]


def test_fax_is_black_on_white_with_no_text_under_10_points(artifacts: Path) -> None:
    data = render_fax(make_letter(body=long_body(20)), cover())

    ops = operations(data)
    assert not [op for _, op in ops if op in COLOUR_OPERATORS]
    sizes = [float(operands[1]) for operands, op in ops if op == b"Tf"]  # type: ignore[arg-type]
    assert sizes
    assert min(sizes) >= 10
    for png in render_png(data, artifacts, "fax-colours"):
        # Anti-aliasing gives greys; anything with hue would be a colour.
        assert all(r == g == b for r, g, b in colours(png))


def test_fax_text_keeps_20mm_margins() -> None:
    data = render_fax(make_letter(body=long_body(20)), cover())
    margin = 20 * 72 / 25.4

    for operands, op in operations(data):
        if op == b"Tm":
            x, y = float(operands[4]), float(operands[5])  # type: ignore[arg-type]
            assert margin <= x <= A4[0] - margin
            assert margin <= y <= A4[1] - margin


def test_signature_sheet_numbers_rows_across_pages() -> None:
    data = render_signature_sheet(sheet(language="ru"), pages=3)

    pages = page_texts(data)
    assert len(pages) == 3
    assert "Free Yerzhan Yelshibaev" in pages[0]
    assert "Sign to demand the release" in pages[0]
    assert "Prosecutor General" in pages[0]
    for text in pages:
        for column in ("№", "Имя и фамилия", "Профсоюз", "Страна", "Подпись"):
            assert column in text
    numbers = [{int(word) for word in text.split() if word.isdigit()} for text in pages]
    last = 0
    for found in numbers:
        # Each page's rows continue from the previous page's last row.
        top = max(found)
        assert set(range(last + 1, top + 1)) <= found
        assert top - last > 10
        last = top
    assert "(продолжение)" in pages[1]


def test_signature_sheet_is_one_page_by_default() -> None:
    assert len(page_texts(render_signature_sheet(sheet()))) == 1


def test_signature_sheet_with_long_summary_still_gets_its_row_pages() -> None:
    data = render_signature_sheet(sheet(summary=long_body(14)), pages=2)

    pages = page_texts(data)
    assert len(pages) >= 3
    assert "Signature" in pages[-1]


def test_signature_sheet_refuses_zero_pages() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        render_signature_sheet(sheet(), pages=0)


@pytest.mark.parametrize("kind", ["letter", "blank", "fax", "sheet"])
def test_each_kind_renders_to_visible_pages(kind: str, artifacts: Path) -> None:
    doc = make_letter(language="kk", body=f"{long_body(3)}\n\n{KAZAKH}")
    data = {
        "letter": lambda: render_letter(doc),
        "blank": lambda: render_blank_letter(doc),
        "fax": lambda: render_fax(doc, cover()),
        "sheet": lambda: render_signature_sheet(sheet(), pages=2),
    }[kind]()

    pngs = render_png(data, artifacts, kind)

    assert len(pngs) == len(reader(data).pages)
    for png in pngs:
        assert ink(png) > 0.002, f"{png.name} looks blank"


def test_body_keeps_paragraphs_and_line_breaks() -> None:
    body = "First line\nsecond line\n\n\n\nNext paragraph"

    text = all_text(render_letter(make_letter(body=body)))

    assert "First line\nsecond line\nNext paragraph" in text
    assert squash("First line second line Next paragraph") in squash(text)
