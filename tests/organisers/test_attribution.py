"""Organisations take part in appeals; their links credit letters; appeals open and close."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Letter, Organisation, utcnow
from tests.appeals.factories import appeal_data, make_appeal
from tests.letters.factories import form_data
from tests.organisers.factories import make_world

FORM = {"name": "Ada", "email": "ada@example.net", "country": "GB"}


def organisation_of(session: Session, email: str) -> str | None:
    session.expire_all()
    letter = session.scalar(select(Letter).where(Letter.signer_email == email))
    assert letter is not None
    return letter.organisation.slug if letter.organisation else None


@pytest.mark.parametrize(
    ("org", "credited"),
    [("unite", "unite"), ("gmb", "gmb"), ("rmt", None), ("no-such-union", None), ("", None)],
)
def test_form_link_credits_only_a_taking_part_organisation(
    client: TestClient, session: Session, org: str, credited: str | None
) -> None:
    make_world(session)
    page = client.get("/a/free-them", params={"org": org})
    assert f'<input type="hidden" name="org" value="{org}">' in page.text
    response = client.post("/a/free-them", data=form_data(client, **FORM, org=org))
    assert response.status_code == 201, response.text
    assert organisation_of(session, "ada@example.net") == credited


def test_api_body_org_credits_too(client: TestClient, session: Session) -> None:
    make_world(session)
    response = client.post("/api/v1/appeals/free-them/letters", json={**FORM, "org": "gmb"})
    assert response.status_code == 202
    assert organisation_of(session, "ada@example.net") == "gmb"


def test_page_tells_the_supporter_whose_link_it_is(client: TestClient, session: Session) -> None:
    make_world(session)
    html = client.get("/a/free-them", params={"org": "unite"}).text
    assert "You are signing through the link of Unite the Union" in html
    assert "never your e-mail address" in html
    assert "signing through the link" not in client.get("/a/free-them?org=rmt").text


def test_appeal_file_lists_organisations(client: TestClient, session: Session) -> None:
    world = make_world(session)
    renamed = appeal_data(organisations=[{"slug": "unite", "name": "Unite"}])
    response = client.put("/api/v1/appeals/free-them", json=renamed, headers=world.auth("admin"))
    assert response.status_code == 200, response.text
    session.expire_all()
    unite = session.scalar(select(Organisation).where(Organisation.slug == "unite"))
    assert unite is not None
    assert unite.name == "Unite"
    # gmb no longer takes part: its token is out of scope now.
    gmb = client.get("/api/v1/appeals/free-them/stats", headers=world.auth("gmb"))
    assert gmb.status_code == 403

    twice = appeal_data(
        slug="other", organisations=[{"slug": "a", "name": "A"}, {"slug": "a", "name": "B"}]
    )
    response = client.post("/api/v1/appeals", json=twice, headers=world.auth("admin"))
    assert response.status_code == 422
    assert "organisations" in response.json()["fields"]
    bad_slug = appeal_data(slug="other", organisations=[{"slug": "Not A Slug", "name": "X"}])
    response = client.post("/api/v1/appeals", json=bad_slug, headers=world.auth("admin"))
    assert "organisations.0.slug" in response.json()["fields"]


def test_scheduled_and_closed_appeals_show_it(client: TestClient, session: Session) -> None:
    now = utcnow()
    make_appeal(session, slug="later", opens_at=(now + timedelta(days=3)).isoformat())
    make_appeal(
        session,
        slug="over",
        opens_at=(now - timedelta(days=9)).isoformat(),
        closes_at=(now - timedelta(days=1)).isoformat(),
    )
    make_appeal(session, slug="running", closes_at=(now + timedelta(days=5)).isoformat())
    session.commit()

    phases = {a["slug"]: (a["phase"], a["accepting"]) for a in client.get("/api/v1/appeals").json()}
    assert phases == {
        "later": ("scheduled", False),
        "over": ("closed", False),
        "running": ("open", True),
    }
    later = client.get("/a/later").text
    assert "This appeal is not open yet" in later
    assert "You can sign the letter from" in later
    assert '<form method="post"' not in later
    assert "This appeal is closed" in client.get("/a/over").text
    assert "Signatures close on" in client.get("/a/running").text
    assert "Not open yet" in client.get("/").text

    refused = client.post("/api/v1/appeals/later/letters", json=FORM)
    assert refused.status_code == 409
    assert refused.json()["error"] == "appeal_closed"
    assert client.post("/api/v1/appeals/running/letters", json=FORM).status_code == 202
