"""The signing form's anti-bot checks: a honeypot and a signed minimum time. A bot gets the
page a person gets; nothing is stored, sent or counted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from app.models import Delivery, Letter, utcnow
from app.web import formtrap
from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import form_data, signature

HTML = {"Accept": "text/html"}


@pytest.fixture
def slow(db_url: str, tmp_path: Path, session: Session) -> Iterator[tuple[TestClient, Settings]]:
    """The app with a minimum time no test can beat by accident (a busy machine only makes
    a test slower, never faster)."""
    make_appeal(session)
    session.commit()
    settings = make_settings(db_url, tmp_path, form_min_seconds=60)
    with TestClient(create_app(settings, deliver_in_process=False)) as client:
        yield client, settings


def shown_token(client: TestClient) -> str:
    page = client.get("/a/free-them", headers=HTML).text
    token = re.search(r'name="form_token" value="([^"]+)"', page)
    assert token, page
    assert 'name="website"' in page  # the trap, in a block hidden from people
    return token.group(1)


def nothing_happened(session: Session, settings: Settings) -> None:
    drain(settings)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Letter)) == 0
    assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert not list(settings.outbox_dir.glob("*.eml"))


def post(client: TestClient, data: dict[str, Any]) -> str:
    response = client.post("/a/free-them", data=data, headers=HTML)
    assert response.status_code == 201, response.text
    return response.text


def page_shape(html: str) -> str:
    """The page without what differs between two letters (ids, keys)."""
    return re.sub(r"/letters/[^\"?]+\?key=[^\"]+", "/letters/ID?key=KEY", html)


def test_a_filled_honeypot_gets_the_same_page_and_nothing_happens(
    slow: tuple[TestClient, Settings], session: Session
) -> None:
    client, settings = slow
    old = formtrap.issue(settings, slug="free-them", now=utcnow() - timedelta(hours=1))
    bot = post(client, {**signature(), "form_token": old, "website": "http://spam.example"})
    assert "Check your e-mail" in bot
    assert "ada@example.net" in bot
    nothing_happened(session, settings)
    # A person's page for the same form looks the same.
    person = post(client, {**signature(), "form_token": old})
    assert page_shape(person) == page_shape(bot)


def test_a_form_sent_too_soon_or_never_shown_is_a_bots(
    slow: tuple[TestClient, Settings], session: Session
) -> None:
    client, settings = slow
    assert "Check your e-mail" in post(client, {**signature(), "form_token": shown_token(client)})
    assert "Check your e-mail" in post(client, signature())  # no token at all
    forged = {**signature(), "form_token": "free-them|0.000"}
    assert "Check your e-mail" in post(client, forged)
    other = formtrap.issue(settings, slug="other", now=utcnow() - timedelta(hours=1))
    assert "Check your e-mail" in post(client, {**signature(), "form_token": other})
    nothing_happened(session, settings)


def test_a_person_who_took_their_time_signs(
    slow: tuple[TestClient, Settings], session: Session
) -> None:
    client, _settings = slow
    post(client, form_data(client))
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Letter)) == 1


def test_a_mistake_keeps_the_first_token(slow: tuple[TestClient, Settings]) -> None:
    """Fixing a typo takes seconds: the time counts from when the form was first shown."""
    client, _settings = slow
    data = form_data(client, country="XX")
    again = client.post("/a/free-them", data=data, headers=HTML)
    assert again.status_code == 422
    assert f'name="form_token" value="{data["form_token"]}"' in again.text


def test_a_form_left_open_for_days_is_shown_again(
    slow: tuple[TestClient, Settings], session: Session
) -> None:
    client, settings = slow
    days_ago = formtrap.issue(settings, slug="free-them", now=utcnow() - timedelta(days=3))
    again = client.post("/a/free-them", data={**signature(), "form_token": days_ago}, headers=HTML)
    assert again.status_code == 422
    assert "This form was open for a long time" in again.text
    assert 'value="Ada Example"' in again.text  # what was typed is kept
    assert f'value="{days_ago}"' not in again.text  # with a fresh token
    nothing_happened(session, settings)


def test_the_api_takes_signatures_as_they_are(slow: tuple[TestClient, Settings]) -> None:
    client, _settings = slow
    assert client.post("/api/v1/appeals/free-them/letters", json=signature()).status_code == 202
