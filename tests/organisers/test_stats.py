"""GET /api/v1/appeals/{slug}/stats against letters made in the test, on both databases."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import Letter, utcnow
from tests.conftest import drain
from tests.letters.factories import sign
from tests.organisers.factories import World, fail_deliveries, make_world, signed

LETTER_KEYS = {
    "pending_confirmation",
    "held",
    "queued",
    "sent",
    "failed",
    "expired",
    "rejected",
    "withdrawn",
}
DELIVERY_KEYS = {"queued", "sending", "sent", "retrying", "failed", "cancelled", "bounced"}


def populate(session: Session, settings: Settings) -> World:
    """Three letters sent (two through unite, one through gmb), one failed (unite), one
    held for moderation (gmb), one never confirmed (no organisation)."""
    world = make_world(session, moderation=True)
    appeal = world.appeal
    a = signed(session, appeal, settings, org="unite", email="a@example.net", country="KZ")
    signed(session, appeal, settings, org="unite", email="b@example.net", country="KZ")
    signed(session, appeal, settings, org="gmb", email="c@example.net", country="GB")
    drain(settings)
    signed(session, appeal, settings, org="unite", email="d@example.net", country="UA")
    fail_deliveries(settings)
    signed(session, appeal, settings, org="gmb", email="e@example.net", message="Free them!")
    sign(session, appeal, settings, email="f@example.net", country="RU")
    # Letter a was confirmed three days ago and sent two days ago: the days between
    # must still be listed, with zeros.
    now = utcnow()
    session.execute(
        update(Letter)
        .where(Letter.id == a.id)
        .values(confirmed_at=now - timedelta(days=3), sent_at=now - timedelta(days=2))
    )
    session.commit()
    return world


def test_stats_count_every_status_and_group(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    response = client.get("/api/v1/appeals/free-them/stats", headers=world.auth("admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"letters", "deliveries", "by_country", "by_organisation", "by_day"}
    assert body["letters"] == {
        "pending_confirmation": 1,
        "held": 1,
        "queued": 0,
        "sent": 3,
        "failed": 1,
        "expired": 0,
        "rejected": 0,
        "withdrawn": 0,
    }
    # Deliveries to the targets only, an e-mail and a fax per letter: d's e-mail was
    # refused, its fax (to the outbox's fax folder) went.
    assert body["deliveries"] == {
        "queued": 0,
        "sending": 0,
        "sent": 7,
        "retrying": 0,
        "failed": 1,
        "cancelled": 0,
        "bounced": 0,
    }
    # Signed letters only: sent, failed and held (a confirmed signature waiting for a
    # moderator) count; unconfirmed ones do not.
    assert body["by_country"] == {"KZ": 2, "GB": 2, "UA": 1}
    assert body["by_organisation"] == {"Unite the Union": 3, "GMB": 2}
    today = utcnow().date()
    days = {d["date"]: (d["signed"], d["sent"]) for d in body["by_day"]}
    assert [d["date"] for d in body["by_day"]] == [
        (today - timedelta(days=n)).isoformat() for n in (3, 2, 1, 0)
    ]
    assert days[(today - timedelta(days=3)).isoformat()] == (1, 0)
    assert days[(today - timedelta(days=2)).isoformat()] == (0, 1)
    assert days[(today - timedelta(days=1)).isoformat()] == (0, 0)
    assert days[today.isoformat()] == (4, 2)


def test_a_union_counts_only_its_own_letters(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    unite = client.get("/api/v1/appeals/free-them/stats", headers=world.auth("unite")).json()
    assert unite["letters"] == {
        "pending_confirmation": 0,
        "held": 0,
        "queued": 0,
        "sent": 2,
        "failed": 1,
        "expired": 0,
        "rejected": 0,
        "withdrawn": 0,
    }
    assert unite["by_organisation"] == {"Unite the Union": 3}
    assert unite["by_country"] == {"KZ": 2, "UA": 1}
    assert unite["deliveries"]["failed"] == 1
    gmb = client.get("/api/v1/appeals/free-them/stats", headers=world.auth("gmb")).json()
    assert gmb["letters"]["held"] == 1
    assert gmb["letters"]["sent"] == 1
    assert gmb["by_organisation"] == {"GMB": 2}
    assert gmb["by_country"] == {"GB": 2}
    assert gmb["deliveries"]["failed"] == 0


def test_an_empty_appeal_has_every_key_at_zero(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session)
    body = client.get("/api/v1/appeals/free-them/stats", headers=world.auth("admin")).json()
    assert body == {
        "letters": dict.fromkeys(LETTER_KEYS, 0),
        "deliveries": dict.fromkeys(DELIVERY_KEYS, 0),
        "by_country": {},
        "by_organisation": {},
        "by_day": [],
    }


def test_unknown_appeal_is_404_after_authentication(client: TestClient, session: Session) -> None:
    world = make_world(session)
    assert client.get("/api/v1/appeals/nope/stats").status_code == 401
    assert client.get("/api/v1/appeals/nope/stats", headers=world.auth("admin")).status_code == 404
