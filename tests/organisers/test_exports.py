"""The letter list and the CSV export: filters, pages, scope, Cyrillic, formulas."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import Letter, utcnow
from app.organisers.exports import safe_cell
from tests.conftest import drain
from tests.letters.factories import sign
from tests.organisers.factories import World, make_world, signed

URL = "/api/v1/appeals/free-them/letters"


def populate(session: Session, settings: Settings) -> World:
    world = make_world(session)
    appeal = world.appeal
    signed(
        session,
        appeal,
        settings,
        org="unite",
        email="aidar@example.net",
        name="Айдар Ахметов",
        country="KZ",
        city="Алматы",
        organisation="Профсоюз «Кузнец»",
    )
    signed(
        session,
        appeal,
        settings,
        org="gmb",
        email="hostile@example.net",
        name='=HYPERLINK("http://evil.example","x")',
        country="GB",
        organisation="@SUM(1+1)",
        city="-2+3",
    )
    drain(settings)
    old = signed(session, appeal, settings, org="unite", email="old@example.net", country="UA")
    sign(session, appeal, settings, email="pending@example.net", country="RU")
    session.execute(
        update(Letter).where(Letter.id == old.id).values(created_at=utcnow() - timedelta(days=10))
    )
    session.commit()
    return world


def rows(response_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response_text)))


def test_list_filters_and_pages(client: TestClient, session: Session, settings: Settings) -> None:
    world = populate(session, settings)
    admin = world.auth("admin")

    everything = client.get(URL, headers=admin).json()
    assert everything["total"] == 4
    assert [x["email"] for x in everything["items"]][:1] == ["pending@example.net"]  # newest

    def emails(**params: str) -> list[str]:
        response = client.get(URL, headers=admin, params=params)
        assert response.status_code == 200, response.text
        return sorted(x["email"] for x in response.json()["items"])

    assert emails(status="sent") == ["aidar@example.net", "hostile@example.net"]
    assert emails(status="queued") == ["old@example.net"]
    assert emails(organisation="unite") == ["aidar@example.net", "old@example.net"]
    assert emails(country="kz") == ["aidar@example.net"]
    week_ago = (utcnow() - timedelta(days=7)).date().isoformat()
    assert "old@example.net" not in emails(since=week_ago)
    assert emails(until=week_ago) == ["old@example.net"]
    assert emails(until=utcnow().date().isoformat()) == [  # a date includes its whole day
        "aidar@example.net",
        "hostile@example.net",
        "old@example.net",
        "pending@example.net",
    ]

    first = client.get(URL, headers=admin, params={"per_page": 3}).json()
    second = client.get(URL, headers=admin, params={"per_page": 3, "page": 2}).json()
    assert (first["total"], len(first["items"]), len(second["items"])) == (4, 3, 1)
    assert not {x["id"] for x in first["items"]} & {x["id"] for x in second["items"]}

    bad = client.get(URL, headers=admin, params={"status": "lost", "per_page": 0})
    assert bad.status_code == 422
    assert {"status", "per_page"} <= set(bad.json()["fields"])
    assert client.get(URL, headers=admin, params={"colour": "red"}).status_code == 422


def test_a_union_sees_only_its_letters_and_no_addresses(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    listed = client.get(URL, headers=world.auth("unite")).json()
    assert listed["total"] == 2
    assert {x["name"] for x in listed["items"]} == {"Айдар Ахметов", "Ada Example"}
    assert all(x["email"] is None for x in listed["items"])
    assert all(x["organisation"] == "unite" for x in listed["items"])
    csv_text = client.get(f"{URL}.csv", headers=world.auth("unite")).text
    assert "@example.net" not in csv_text
    assert "email" not in csv_text.splitlines()[0]
    assert "HYPERLINK" not in csv_text  # gmb's letter
    # Asking for another organisation's letters is out of scope, not an empty answer.
    for path in (URL, f"{URL}.csv"):
        response = client.get(path, headers=world.auth("unite"), params={"organisation": "gmb"})
        assert response.status_code == 403


def test_csv_has_a_bom_cyrillic_and_no_formulas(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    response = client.get(f"{URL}.csv", headers=world.auth("admin"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="free-them-letters.csv"'
    assert response.headers["cache-control"] == "no-store"
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    # What a spreadsheet does: read it as UTF-8 with the signature.
    with io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="") as text:
        table = list(csv.DictReader(text))
    assert [r["email"] for r in table] == [  # oldest first
        "old@example.net",
        "aidar@example.net",
        "hostile@example.net",
        "pending@example.net",
    ]
    aidar = table[1]
    assert aidar["name"] == "Айдар Ахметов"
    assert aidar["city"] == "Алматы"
    assert aidar["union"] == "Профсоюз «Кузнец»"
    assert aidar["organisation"] == "unite"
    assert aidar["status"] == "sent"
    hostile = table[2]
    assert hostile["name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert hostile["union"] == "'@SUM(1+1)"
    assert hostile["city"] == "'-2+3"
    assert table[3]["status"] == "pending_confirmation"
    assert table[3]["organisation"] == ""


def test_safe_cell() -> None:
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("+7 727 000") == "'+7 727 000"
    assert safe_cell("-x") == "'-x"
    assert safe_cell("@x") == "'@x"
    assert safe_cell("\t=x") == "'\t=x"
    assert safe_cell("Айдар") == "Айдар"
    assert safe_cell(None) == ""
    assert safe_cell("") == ""
