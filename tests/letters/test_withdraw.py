"""Withdrawing and erasing through the API and the letter page, with the letter's key."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core import i18n
from app.core.config import Settings
from app.models import Appeal, Letter, LetterStatus
from tests.appeals.factories import make_appeal
from tests.conftest import drain
from tests.letters.factories import signature

RU = i18n.translations("ru")
HTML = {"Accept": "text/html"}


@pytest.fixture
def appeal(session: Session) -> Appeal:
    appeal = make_appeal(session, require_confirmation=False)
    session.commit()
    return appeal


def sign(client: TestClient, **fields: object) -> str:
    """Sign through the API; the letter's API path with its key."""
    response = client.post("/api/v1/appeals/free-them/letters", json=signature(**fields))
    assert response.status_code == 202, response.text
    status_url: str = response.json()["status_url"]
    return urlsplit(status_url).path + "?" + urlsplit(status_url).query


def test_api_withdraw_and_erase(client: TestClient, settings: Settings, appeal: Appeal) -> None:
    path = sign(client)
    letter_id, key = re.findall(r"/letters/([^?]+)\?key=(.+)", path)[0]
    assert client.post(f"/api/v1/letters/{letter_id}/withdraw?key=wrong").status_code == 404
    assert client.delete(f"/api/v1/letters/{letter_id}?key=wrong").status_code == 404
    assert client.get(path).json()["withdrawable"] is True

    withdrawn = client.post(f"/api/v1/letters/{letter_id}/withdraw?key={key}")
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert body["status"] == "withdrawn"
    assert body["withdrawable"] is False
    assert {d["status"] for d in body["deliveries"]} == {"cancelled"}

    erased = client.delete(f"/api/v1/letters/{letter_id}?key={key}")
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["erased_at"] is not None
    assert body["signer"] == {"name": "", "organisation": "", "country": "GB", "city": ""}
    assert body["body"] == ""
    pdf = client.get(f"/api/v1/letters/{letter_id}.pdf?key={key}")
    assert pdf.status_code == 410
    assert pdf.json()["error"] == "letter_erased"


def test_api_refuses_to_withdraw_a_sent_letter(
    client: TestClient, settings: Settings, appeal: Appeal
) -> None:
    path = sign(client)
    drain(settings)
    letter_id, key = re.findall(r"/letters/([^?]+)\?key=(.+)", path)[0]
    refused = client.post(f"/api/v1/letters/{letter_id}/withdraw?key={key}")
    assert refused.status_code == 409
    assert refused.json()["error"] == "not_withdrawable"
    assert client.get(path).json()["status"] == "sent"


def page_path(path: str) -> str:
    return path.replace("/api/v1/letters/", "/letters/")


def test_letter_page_withdraws_with_a_button(
    client: TestClient, settings: Settings, appeal: Appeal
) -> None:
    page = page_path(sign(client))
    html = client.get(page, headers=HTML).text
    action = re.search(r'<form method="post" action="([^"]+/withdraw[^"]+)"', html)
    assert action, html
    assert "<script" not in html
    done = client.post(action.group(1).replace("&amp;", "&"), follow_redirects=False)
    assert done.status_code == 303
    after = client.get(done.headers["location"], headers=HTML).text
    assert "Your letter is withdrawn. It will not be sent." in after
    assert 'id="withdraw"' not in after  # nothing left to withdraw
    drain(settings)
    assert not list(settings.outbox_dir.glob("*.eml"))


def test_erasing_asks_first_and_says_a_sent_copy_stays(
    client: TestClient, settings: Settings, appeal: Appeal
) -> None:
    page = page_path(sign(client, message="Hands off the strikers"))
    drain(settings)
    html = client.get(page, headers=HTML).text
    assert 'id="withdraw"' not in html  # sent: only erasing is offered
    assert "cannot be recalled" in html
    link = re.search(r'<a class="button secondary" id="erase" href="([^"]+)"', html)
    assert link, html
    ask = client.get(link.group(1).replace("&amp;", "&"), headers=HTML)
    assert ask.status_code == 200
    assert "The copy the targets received cannot be recalled" in ask.text
    # Asking changed nothing.
    assert "Hands off the strikers" in client.get(page, headers=HTML).text
    action = re.search(r'<form method="post" action="([^"]+/erase[^"]+)"', ask.text)
    assert action, ask.text
    done = client.post(action.group(1).replace("&amp;", "&"), follow_redirects=False)
    assert done.status_code == 303
    after = client.get(done.headers["location"], headers=HTML).text
    assert "Your details are erased." in after
    assert "Hands off the strikers" not in after
    assert "Ada Example" not in after
    assert 'id="erase"' not in after


def test_letter_page_in_russian(client: TestClient, appeal: Appeal) -> None:
    page = page_path(sign(client, language="ru"))
    html = client.get(page, headers={**HTML, "Accept-Language": "ru"}).text
    assert RU.gettext("Withdraw my letter") in html
    assert RU.gettext("Erase my details…") in html


def test_an_expired_letter_has_nothing_to_withdraw(
    client: TestClient, session: Session, settings: Settings
) -> None:
    make_appeal(session)
    session.commit()
    path = sign(client)
    session.execute(update(Letter).values(status=LetterStatus.expired))
    session.commit()
    letter_id, key = re.findall(r"/letters/([^?]+)\?key=(.+)", path)[0]
    refused = client.post(f"/api/v1/letters/{letter_id}/withdraw?key={key}")
    assert refused.status_code == 409
    assert "nothing to withdraw" in refused.json()["detail"]
