"""A test send before an appeal opens: the target's e-mail, to the organiser alone."""

from __future__ import annotations

import io
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import utcnow
from tests.conftest import drain, make_settings
from tests.organisers.factories import log_in, make_world
from tests.support.smtp import SmtpSink

URL = "/dashboard/free-them/test-send"


def body_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def test_sample_goes_only_to_the_organiser_and_names_the_real_recipients(
    client: TestClient, session: Session, settings: Settings, smtp: SmtpSink, tmp_path: Path
) -> None:
    world = make_world(session, accounts=True, status="draft")
    csrf = log_in(client, "admin@example.org")
    done = client.post(URL, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/free-them?done=test-sent"

    drain(make_settings(settings.database_url, tmp_path, smtp_url=smtp.url))
    received = smtp.wait_for(2)
    assert len(received) == 2  # one per language of the appeal
    assert all(r.rcpt_tos == ["admin@example.org"] for r in received)
    by_subject = {str(r.message["Subject"]): r.message for r in received}
    assert set(by_subject) == {"[Test] Free them now", "[Проба] Освободите их"}

    en = by_subject["[Test] Free them now"]
    assert [a.addr_spec for a in en["To"].addresses] == ["admin@example.org"]
    assert en["Cc"] is None
    assert en["From"].addresses[0].display_name == "Ada Example via Solidarity Campaign"
    text = body_text(en)
    assert "It went only to you (admin@example.org)" in text
    assert 'To: "A. President" <president@example.org>' in text  # as the To header reads
    assert "Cc: copies@example.org, campaign@example.net" in text
    assert "Fax: A. President +77279000000" in text
    # Then the letter itself, as the targets will read it.
    assert "Dear President A. President,\n\nRelease them." in text
    assert "A personal message." in text

    ru = body_text(by_subject["[Проба] Освободите их"])
    assert 'Кому: "A. President" <president@example.org>' in ru
    assert "Уважаемый A. President!" in ru

    # The fax the target would get, cover sheet and all, is attached to read before it goes.
    [fax] = list(en.iter_attachments())
    assert str(fax.get_filename()).startswith("fax-77279000000-")
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(fax.get_content())).pages]
    assert "+7 727 900 0000" in pages[0]  # the cover sheet names the number
    assert any("Release them." in page for page in pages)

    # A test send is not a signature: it counts nowhere.
    admin = world.auth("admin")
    stats = client.get("/api/v1/appeals/free-them/stats", headers=admin).json()
    assert sum(stats["letters"].values()) == 0
    assert sum(stats["deliveries"].values()) == 0
    assert client.get("/api/v1/appeals/free-them/letters", headers=admin).json()["total"] == 0
    page = client.get("/dashboard/free-them").text
    section = page.split('id="test-send"', 1)[1].split("</section>", 1)[0]
    assert section.count('<td data-label="Status">Sent</td>') == 2
    # One row per language, each saying which.
    assert '<span lang="en">English</span>' in section
    assert '<span lang="ru">Русский</span>' in section


def test_allowed_while_scheduled_refused_once_open(client: TestClient, session: Session) -> None:
    later = (utcnow() + timedelta(days=2)).isoformat()
    make_world(session, accounts=True, status="open", opens_at=later)
    csrf = log_in(client, "admin@example.org")
    page = client.get("/dashboard/free-them").text
    assert "Send me a test letter" in page
    assert client.post(URL, data={"csrf_token": csrf}).status_code == 200  # after the redirect

    from sqlalchemy import update

    from app.models import Appeal

    session.execute(update(Appeal).values(opens_at=None))
    session.commit()
    response = client.post(URL, data={"csrf_token": csrf}, headers={"Accept": "application/json"})
    assert response.status_code == 409
    assert response.json()["error"] == "appeal_opened"
    assert "Send me a test letter" not in client.get("/dashboard/free-them").text


@pytest.mark.parametrize("who", ["admin", "unite"])
def test_tokens_have_no_address_to_send_to(client: TestClient, session: Session, who: str) -> None:
    world = make_world(session, status="draft")
    response = client.post(URL, headers=world.auth(who))
    assert response.status_code == 403
