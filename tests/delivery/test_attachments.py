"""The letter PDF attached to the target's e-mail when the appeal asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.documents.helpers import page_texts
from tests.letters.factories import confirm, sign
from tests.support.smtp import SmtpSink

TARGET = "president@example.org"


@pytest.mark.parametrize("attach", [True, False])
def test_target_email_carries_the_letter_pdf_when_asked(
    session: Session, db_url: str, tmp_path: Path, smtp: SmtpSink, attach: bool
) -> None:
    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url)
    appeal = make_appeal(session, attach_pdf=attach)
    letter = sign(session, appeal, settings, name="Анна Петрова", language="ru", copy_to_me=True)
    session.commit()
    drain(settings)  # the confirmation
    confirm(session, letter, settings)
    session.commit()

    drain(settings)

    received = smtp.wait_for(3)
    [email] = [m for m in received if TARGET in m.rcpt_tos]
    msg = email.message
    assert msg["Content-Language"] == "ru"  # on the whole message, attachment or not
    body = msg.get_body(("plain",))
    assert body is not None
    assert "Анна Петрова" in body.get_content()
    attachments = list(msg.iter_attachments())
    if not attach:
        assert attachments == []
        return
    [part] = attachments
    assert part.get_content_type() == "application/pdf"
    assert part.get_filename() == f"letter-{letter.public_id}.pdf"
    [text] = page_texts(part.get_content())
    assert "Освободите их" in text
    assert "Анна Петрова" in text
    assert "Страница 1 из 1" in text
    # Only the target's letter carries it: the supporter's own mails stay plain.
    for other in received:
        if TARGET not in other.rcpt_tos:
            assert list(other.message.iter_attachments()) == []
