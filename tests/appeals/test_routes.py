"""The appeals API: public reads, admin writes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import paths
from app.organisers import service as organisers
from tests.appeals.factories import appeal_data, make_appeal


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    _, raw = organisers.create_token(session, organisation=None, by="test")
    session.commit()
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def union(session: Session) -> dict[str, str]:
    org = organisers.ensure_organisation(session, slug="unite")
    _, raw = organisers.create_token(session, organisation=org, by="test")
    session.commit()
    return {"Authorization": f"Bearer {raw}"}


def test_public_list_hides_drafts_and_addresses(client: TestClient, session: Session) -> None:
    make_appeal(session)
    make_appeal(session, slug="secret-plan", status="draft")
    session.commit()
    listed = client.get("/api/v1/appeals").json()
    assert [a["slug"] for a in listed] == ["free-them"]
    assert listed[0]["signed"] == 0
    assert "president@example.org" not in client.get("/api/v1/appeals/free-them").text
    assert client.get("/api/v1/appeals/secret-plan").status_code == 404


def test_create_needs_a_token(client: TestClient) -> None:
    assert client.post("/api/v1/appeals", json=appeal_data()).status_code == 401
    bad = {"Authorization": "Bearer oc_not-a-token"}
    assert client.post("/api/v1/appeals", json=appeal_data(), headers=bad).status_code == 401


def test_union_token_cannot_create(client: TestClient, union: dict[str, str]) -> None:
    response = client.post("/api/v1/appeals", json=appeal_data(), headers=union)
    assert response.status_code == 403


def test_admin_creates_then_409(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/api/v1/appeals", json=appeal_data(), headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["url"] == "http://testserver/a/free-them"
    again = client.post("/api/v1/appeals", json=appeal_data(), headers=admin)
    assert again.status_code == 409


def test_put_creates_and_replaces(client: TestClient, admin: dict[str, str]) -> None:
    url = "/api/v1/appeals/free-them"
    assert client.put(url, json=appeal_data(), headers=admin).status_code == 201
    response = client.put(url, json=appeal_data(title="Renamed"), headers=admin)
    assert response.status_code == 200
    assert response.json()["title"] == "Renamed"


def test_put_slug_must_match(client: TestClient, admin: dict[str, str]) -> None:
    response = client.put("/api/v1/appeals/other", json=appeal_data(), headers=admin)
    assert response.status_code == 422
    assert "slug" in response.json()["fields"]


def test_invalid_appeal_names_field(client: TestClient, admin: dict[str, str]) -> None:
    data = appeal_data(targets=[{"name": "X", "email": "not-an-address"}])
    response = client.post("/api/v1/appeals", json=data, headers=admin)
    assert response.status_code == 422
    assert "targets.0.email" in response.json()["fields"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{% include "almaty-coach-factory/en.txt.j2" %}', "{% include %}"),
        ('{% import "x" as y %}', "{% import %}"),
        ('{% extends "almaty-coach-factory/en.txt.j2" %}', "{% extends %}"),
        ("{{ range(10**9)|length }}", "range()"),
        ("{{ lipsum(10**6)|length }}", "lipsum"),
    ],
)
def test_a_letter_using_what_letters_do_not_need_is_422_naming_it(
    client: TestClient, admin: dict[str, str], body: str, why: str
) -> None:
    letter = appeal_data()["letter"]
    letter["ru"]["body"] = body
    response = client.post("/api/v1/appeals", json=appeal_data(letter=letter), headers=admin)
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert list(fields) == ["letter.ru"]
    # The part of the letter (and the line, where there is one) and why.
    assert fields["letter.ru"].startswith("letter.ru.body")
    assert why in fields["letter.ru"]


def test_a_missing_template_is_422_without_the_servers_path(
    client: TestClient, admin: dict[str, str]
) -> None:
    data = appeal_data(template="no-such-letter", letter=None)
    response = client.post("/api/v1/appeals", json=data, headers=admin)
    assert response.status_code == 422
    assert response.json()["fields"] == {
        "template": "templates/letters/no-such-letter/en.txt.j2: there is no such file"
    }
    assert str(paths.letter_templates_dir()) not in response.text
