"""The demo appeals' letters in every one of their languages, read back as a union would:
the closing and the signature on one page, one page where the text allows it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session

from app.appeals import letter as appeal_letter
from app.appeals import service as appeals
from app.appeals.schemas import AppealIn
from app.core import paths
from app.documents import build
from app.documents import service as documents
from app.documents.pdf import render_fax, render_letter, write_bundle
from app.models import Appeal, Letter, LetterStatus
from tests.documents.helpers import ink, page_texts, render_png, squash
from tests.documents.test_bundle import handover

WHEN = datetime(2026, 11, 29, 10, tzinfo=UTC)
# A long name, a long union and a city: the signature block at its biggest.
SIGNER = {
    "name": "Айгерім Нұрсұлтанқызы Жақсыбекова",
    "organisation": "Қазақстанның тау-кен металлургия саласы қызметкерлерінің кәсіподағы",
    "country": "KZ",
    "city": "Қарағанды",
}
SENTENCE = "Solidarity from our branch. "
# The renderers need no database: the appeals are stored once, on SQLite only.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def demo(session: Session) -> list[Appeal]:
    imported = []
    for path in sorted(paths.demo_dir().glob("*.yaml")):
        data = AppealIn.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        appeal, _ = appeals.save_appeal(
            session, data=data, directory=paths.letter_templates_dir(), by="test"
        )
        imported.append(appeal)
    return imported


def signed(appeal: Appeal, language: str, message: str = "") -> Letter:
    """The letter as sign_letter would write it (not stored: renderers need no database)."""
    variables = appeal_letter.letter_vars(
        appeal, **SIGNER, message=message, language=language, today=WHEN.date()
    )
    rendered = appeal_letter.render(appeal, language, variables)
    return Letter(
        public_id="demo",
        key="k",
        appeal=appeal,
        signer_name=SIGNER["name"],
        signer_email="aigerim@example.net",
        signer_country=SIGNER["country"],
        signer_city=SIGNER["city"],
        signer_organisation=SIGNER["organisation"],
        message=message,
        language=language,
        status=LetterStatus.sent,
        subject=rendered.subject,
        body=rendered.body,
        created_at=WHEN,
        confirmed_at=WHEN,
    )


def closing_of(letter: Letter) -> str:
    """The line above the signature: "Yours sincerely,", "С уважением,", "Құрметпен,"."""
    paragraphs = letter.body.split("\n\n")
    assert SIGNER["name"] in paragraphs[-1]
    return paragraphs[-2].splitlines()[-1]


def page_of(pages: list[str], text: str) -> int:
    found = [n for n, page in enumerate(pages) if squash(text) in squash(page)]
    assert found, f"{text!r} is on no page"
    return found[-1]


def every_letter(demo: list[Appeal]) -> Iterator[tuple[Appeal, str]]:
    for appeal in demo:
        for language in appeal.languages:
            yield appeal, language


def test_the_demo_appeals_are_in_english_russian_and_kazakh(demo: list[Appeal]) -> None:
    assert {(a.slug, lang) for a, lang in every_letter(demo)} == {
        ("almaty-coach-factory", "en"),
        ("almaty-coach-factory", "ru"),
        ("kazakhstan-union-activists", "en"),
        ("kazakhstan-union-activists", "ru"),
        ("kazakhstan-union-activists", "kk"),
    }


def test_each_letter_keeps_its_closing_with_the_signature(demo: list[Appeal]) -> None:
    for appeal, language in every_letter(demo):
        letter = signed(appeal, language)
        target = appeal.targets[0]
        for kind, data in (
            ("letter", render_letter(build.letter_doc(letter, appeal))),
            (
                "fax",
                render_fax(
                    build.letter_doc(letter, appeal, target=target, fax=target.fax or ""),
                    build.fax_cover(letter, appeal, target, fax=target.fax or "", contact="x"),
                ),
            ),
        ):
            pages = page_texts(data)
            where = (appeal.slug, language, kind)
            assert page_of(pages, closing_of(letter)) == page_of(pages, SIGNER["name"]), where
            assert page_of(pages, SIGNER["name"]) == page_of(pages, SIGNER["city"]), where
            # The demo letters fit one page: the fax is its cover and that page.
            assert len(pages) == (1 if kind == "letter" else 2), where


def test_wherever_the_page_breaks_the_closing_goes_with_the_signature(
    demo: list[Appeal],
) -> None:
    # Longer and longer personal messages move the end of the letter down the page and
    # over the break: at every step the closing and the name share a page.
    for appeal, language in every_letter(demo):
        page_counts = set()
        for sentences in range(0, 40, 3):
            letter = signed(appeal, language, message=SENTENCE * sentences)
            pages = page_texts(render_letter(build.letter_doc(letter, appeal)))
            page_counts.add(len(pages))
            where = (appeal.slug, language, sentences)
            assert page_of(pages, closing_of(letter)) == page_of(pages, SIGNER["name"]), where
            assert page_of(pages, SIGNER["name"]) == page_of(pages, SIGNER["city"]), where
        assert page_counts == {1, 2}, (appeal.slug, language)  # the break was crossed


def test_each_blank_letter_fits_one_page_signing_lines_and_all(demo: list[Appeal]) -> None:
    labels = {"en": "Signature:", "ru": "Подпись:", "kk": "Қолы:"}
    for appeal, language in every_letter(demo):
        document = documents.blank_letter_pdf(appeal, language=language, today=date(2026, 5, 1))
        pages = page_texts(document.content)
        assert len(pages) == 1, (appeal.slug, language)
        assert labels[language] in pages[0]


def test_the_target_organisation_is_printed_once(demo: list[Appeal]) -> None:
    almaty = demo[0]
    for language, organisation in (("en", "Yrtsty-AERVS"), ("ru", "Yrtsty-AERVS")):
        [page] = page_texts(render_letter(build.letter_doc(signed(almaty, language), almaty)))
        assert page.count(organisation) == 1, language
    # An organiser who writes the organisation into the address too still gets it once.
    almaty.targets[0].address = "JSC “Yrtsty-AERVS” (Almaty Coach Factory)\n050034 Almaty"
    [page] = page_texts(render_letter(build.letter_doc(signed(almaty, "en"), almaty)))
    assert page.count("Yrtsty-AERVS") == 1
    assert "050034 Almaty" in page


def test_a_bundle_of_demo_letters_in_three_languages(demo: list[Appeal], artifacts: Path) -> None:
    docs = [build.letter_doc(signed(a, lang), a) for a, lang in every_letter(demo)]
    out = io.BytesIO()
    count = write_bundle(out, handover(), iter(docs))

    pages = page_texts(out.getvalue())
    assert count == len(pages) == 1 + len(docs)
    assert f"Pages in this bundle: {count}" in pages[0]
    for page in pages[1:]:
        assert SIGNER["name"] in page
        assert SIGNER["city"] in page
    for png in render_png(out.getvalue(), artifacts, "demo-bundle"):
        assert ink(png) > 0.002, png.name


def test_signature_sheets_are_headed_in_their_own_language(demo: list[Appeal]) -> None:
    for appeal, language in every_letter(demo):
        document = documents.signature_sheet_pdf(appeal, language=language, pages=1)
        [page] = page_texts(document.content)
        shown = appeals.in_language(appeal, language)
        assert squash(shown.title) in squash(page), (appeal.slug, language)
        assert squash(shown.targets[0].name) in squash(page), (appeal.slug, language)
