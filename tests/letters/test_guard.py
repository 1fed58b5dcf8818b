"""The flood guard holds letters for moderation; the confirmation quota spares inboxes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import TooManyConfirmations
from app.delivery import ratelimit
from app.letters import guard
from app.main import create_app
from app.models import Letter, LetterStatus
from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import confirm, sign, signature
from tests.organisers.factories import log_in, make_world


@pytest.mark.parametrize(
    ("host", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:aa:1::5", "2001:db8:aa::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("testclient", None),
        (None, None),
    ],
)
def test_networks(host: str | None, network: str | None) -> None:
    assert guard.network_of(host) == network


def test_a_flood_from_one_network_is_held(session: Session, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, flood_network_per_hour=2)
    appeal = make_appeal(session, require_confirmation=False)
    other = make_appeal(session, slug="other", require_confirmation=False)
    letters = [
        sign(session, appeal, settings, email=f"p{n}@example.net", client=f"203.0.113.{n}")
        for n in range(4)
    ]
    elsewhere = sign(session, appeal, settings, email="far@example.net", client="198.51.100.1")
    other_appeal = sign(session, other, settings, email="p9@example.net", client="203.0.113.9")
    session.commit()
    assert [x.status for x in letters] == [LetterStatus.queued] * 2 + [LetterStatus.held] * 2
    assert letters[2].hold_reason.startswith("network:")
    assert "203.0.113" not in letters[2].hold_reason  # a keyed tag, not the network
    assert elsewhere.status is LetterStatus.queued
    assert other_appeal.status is LetterStatus.queued  # counted per appeal
    drain(settings)
    # E-mails to the target: the two before the threshold, the far one, the other appeal's.
    assert len([x for x in settings.outbox_dir.glob("*.eml") if ".letter." in x.name]) == 4
    session.expire_all()
    held = session.scalars(select(Letter).where(Letter.status == LetterStatus.held)).all()
    assert len(held) == 2  # the targets never got the flood


def test_a_flood_from_one_domain_is_held_but_not_from_a_big_provider(
    session: Session, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        db_url, tmp_path, flood_domain_per_hour=1, flood_shared_domains="mail.example.org"
    )
    appeal = make_appeal(session)
    first = sign(session, appeal, settings, email="a@bots.example.net")
    second = sign(session, appeal, settings, email="b@bots.example.net")
    shared = [sign(session, appeal, settings, email=f"g{n}@gmail.com") for n in range(3)]
    mine = [sign(session, appeal, settings, email=f"m{n}@mail.example.org") for n in range(3)]
    assert first.hold_reason == ""
    assert second.hold_reason == "domain:bots.example.net"
    assert all(x.hold_reason == "" for x in shared + mine)
    # Held only once confirmed: the flood waits for a moderator, not for the supporter.
    assert second.status is LetterStatus.pending_confirmation
    assert confirm(session, second, settings).status is LetterStatus.held
    assert confirm(session, first, settings).status is LetterStatus.queued


@pytest.fixture
def office(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    """The app as reached from one office's network, with a low flood threshold."""
    settings = make_settings(db_url, tmp_path, flood_network_per_hour=1)
    app = create_app(settings, deliver_in_process=False)
    with TestClient(app, client=("192.0.2.10", 4000)) as client:
        yield client, settings


def test_the_dashboard_shows_why_and_releases_a_group(
    office: tuple[TestClient, Settings], session: Session
) -> None:
    client, settings = office
    make_world(session, accounts=True, require_confirmation=False)
    for n in range(3):
        body = signature(email=f"member{n}@example.net")
        if n == 2:
            body["message"] = "My own words"
        assert client.post("/api/v1/appeals/free-them/letters", json=body).status_code == 202
    csrf = log_in(client, "admin@example.org")
    page = client.get("/dashboard/free-them")
    assert 'id="moderation-link"' in page.text  # the appeal does not moderate; floods still wait
    html = client.get("/dashboard/free-them/moderation").text
    assert "Many letters from one network within an hour" in html
    reason = re.search(r'name="reason" value="(network:[0-9a-f]+)"', html)
    assert reason, html
    done = client.post(
        "/dashboard/free-them/moderation/release",
        data={"csrf_token": csrf, "reason": reason.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "2 held letters were approved" in client.get(done.headers["location"]).text
    drain(settings)
    session.expire_all()
    statuses = session.scalars(select(Letter.status).order_by(Letter.id)).all()
    assert statuses == [LetterStatus.sent] * 3
    forged = client.post(
        "/dashboard/free-them/moderation/release", data={"reason": reason.group(1)}
    )
    assert forged.status_code == 403  # CSRF, like every organiser form


def test_confirmation_emails_per_address_are_limited(
    db_url: str, tmp_path: Path, session: Session
) -> None:
    settings = make_settings(db_url, tmp_path, confirmations_per_address_per_day=2)
    make_appeal(session)
    session.commit()
    with TestClient(create_app(settings, deliver_in_process=False)) as client:
        for _ in range(2):  # signing again replaces the unconfirmed letter, and mails again
            ok = client.post("/api/v1/appeals/free-them/letters", json=signature())
            assert ok.status_code == 202
            drain(settings)  # each confirmation goes out before the next replaces it
        refused = client.post("/api/v1/appeals/free-them/letters", json=signature())
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_confirmations"
        assert int(refused.headers["Retry-After"]) > 0
        other = client.post(
            "/api/v1/appeals/free-them/letters", json=signature(email="bo@example.net")
        )
        assert other.status_code == 202  # the limit is the inbox's, not the form's
    drain(settings)
    mails = [p for p in settings.outbox_dir.glob("*.eml") if ".confirm." in p.name]
    assert len(mails) == 3


def test_with_redis_each_limit_of_a_signature_holds_exactly_in_one_round_trip(
    session: Session, db_url: str, tmp_path: Path, redis_url: str
) -> None:
    settings = make_settings(
        db_url,
        tmp_path,
        broker_url=redis_url,
        flood_network_per_hour=2,
        flood_domain_per_hour=3,
        confirmations_per_address_per_day=2,
    )
    appeal = make_appeal(session)
    limiter = ratelimit.limiter_for(redis_url)
    assert isinstance(limiter, ratelimit.RedisRateLimiter)
    sign(session, appeal, settings, email="warm@warm.example.net")  # the script, loaded once
    sent: list[object] = []
    execute: Callable[..., Any] = limiter.client.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return execute(*args, **options)

    limiter.client.execute_command = counted  # type: ignore[method-assign]
    office = [
        sign(session, appeal, settings, email=f"p{n}@bots.example.net", client=f"203.0.113.{n}")
        for n in range(4)
    ]
    assert sent == ["EVALSHA"] * 4  # one round trip a signature, for all three limits
    # The network's third signature is over its 2; the domain's fourth is over its 3 too,
    # but the network is named first.
    assert [x.hold_reason for x in office[:2]] == ["", ""]
    assert all(x.hold_reason.startswith("network:") for x in office[2:])
    elsewhere = sign(session, appeal, settings, email="q@bots.example.net", client="198.51.100.1")
    assert elsewhere.hold_reason == "domain:bots.example.net"

    # The same address again: its unconfirmed letter is replaced, and a confirmation
    # e-mail counted each time; the third is refused and stores nothing.
    again = "p0@bots.example.net"
    replaced = sign(session, appeal, settings, email=again, client="192.0.2.1")
    session.commit()
    with pytest.raises(TooManyConfirmations):
        sign(session, appeal, settings, email=again, client="192.0.2.1")
    session.rollback()
    kept = session.scalars(select(Letter.public_id).where(Letter.signer_email == again)).all()
    assert kept == [replaced.public_id]
    assert session.scalar(select(func.count()).select_from(Letter)) == 6
