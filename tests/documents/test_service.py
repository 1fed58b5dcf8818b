"""Building the PDFs' data from rows, and streaming bundles and archives."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from app.core.auth import Principal
from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.core.files import safe_filename
from app.documents import archive, build, service
from app.models import Appeal
from tests.documents.factories import MAY_1, add_letters, make_trilingual_appeal, sign_at
from tests.documents.helpers import page_texts, reader


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("letter-Ab_9-x.pdf", "letter-Ab_9-x.pdf"),
        ("letter-UFdb--tJP5-.pdf", "letter-UFdb--tJP5-.pdf"),  # public ids are kept exactly
        ("free-them-letters-кәсіподақ.zip", "free-them-letters.zip"),
        ('a"b\r\nContent-Type: x.pdf', "a-b-Content-Type-x.pdf"),
        ("../../etc/passwd", "etc-passwd"),
        ("", "document"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize(
    ("body", "signed"),
    [
        ("Release them.\n\nAda Example\nExample Union", True),
        ("Release them.\n\nYours sincerely,\nAda  Example", True),
        ("Release them.\n\nYours sincerely,", False),
        ("Ada Example wrote this.\n\nYours sincerely,", False),
        ("Release them, Ada Example", False),
        ("", False),
    ],
)
def test_signature_already_in_the_text(body: str, signed: bool) -> None:
    assert build.signed_in_body(body, "Ada Example") is signed


def test_letter_without_a_signature_gets_the_signer_block(
    session: Session, settings: Settings
) -> None:
    appeal = make_trilingual_appeal(session)
    letter = sign_at(session, appeal, settings, MAY_1, country="KZ", language="ru")
    letter.body = "Освободите их."  # as a template without the signer in it would write

    doc = build.letter_doc(letter, appeal)

    assert doc.signer.name == "Ada Example"
    assert doc.signer.country_name == "Казахстан"
    assert doc.date == "1 мая 2026\u202fг."  # Babel keeps "г." with the year
    assert doc.recipient.fax == ""  # only a fax prints the target's number
    faxed = build.letter_doc(letter, appeal, target=appeal.targets[0], fax="+77279000000")
    assert faxed.recipient.fax == "+7 727 900 0000"


def test_fax_numbers_for_gateways() -> None:
    assert build.fax_digits("+7 727 900 00 00") == "77279000000"
    assert build.fax_display("+77279000000") == "+7 727 900 0000"
    with pytest.raises(ValueError, match="fax number"):
        build.fax_digits("not a number")


def test_iter_zip_streams_one_file_at_a_time() -> None:
    files = [(f"{n}.pdf", MAY_1, bytes([n]) * 100_000) for n in range(5)]

    chunks = list(archive.iter_zip(iter(files)))

    assert len(chunks) == 6  # each file as it is added, then the directory
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zipped:
        assert zipped.testzip() is None
        assert zipped.namelist() == [name for name, _, _ in files]
        assert zipped.read("3.pdf") == bytes([3]) * 100_000
        assert zipped.getinfo("0.pdf").date_time == (2026, 5, 1, 9, 30, 0)


def test_bundle_reads_its_letters_while_streaming_in_a_session_of_its_own(
    session: Session, settings: Settings
) -> None:
    appeal = make_trilingual_appeal(session)
    add_letters(session, appeal, 250)
    admin = Principal(via="token", organisation_id=None)
    session.commit()
    sessions = session_factory(engine_for(settings.database_url))

    with sessions() as request:  # what the request's session does, then closes
        loaded = request.get(Appeal, appeal.id)
        assert loaded is not None
        selection = service.select_letters(
            request, appeal=loaded, who=admin, organisation=None, since=None, until=None
        )
        download = service.bundle_pdf(
            request, sessions, appeal=loaded, selection=selection, language="ru", today=MAY_1.date()
        )
    # Rows written after the request are in the stream: nothing was read beforehand.
    with sessions.begin() as later:
        add_letters(later, appeal, 1, when=datetime(2026, 5, 2, tzinfo=UTC), first=250)

    chunks = list(download.chunks)

    assert len(chunks) > 2  # produced a piece at a time, not as one block
    pdf = reader(b"".join(chunks))
    assert len(pdf.pages) == 1 + 250 + 1
    assert "Количество писем: 250" in page_texts(b"".join(chunks))[0]
    assert download.filename == "free-them-letters.pdf"
