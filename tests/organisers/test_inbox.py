"""Replies and bounces as organisers and unions see them, by API and on the dashboard:
a union sees what came back for its own members' letters only."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.delivery import returns
from app.delivery.inbound import service
from app.models import Channel, Delivery, utcnow
from tests.conftest import SECRET, drain, make_settings
from tests.organisers.factories import World, make_world, signed

HTML = {"Accept": "text/html"}
DOMAIN = "bounces.example.org"
DSN = (Path(__file__).parents[1] / "delivery" / "inbound" / "postfix-failed.eml").read_bytes()


def _deliveries(session: Session) -> dict[str, Delivery]:
    rows = session.scalars(select(Delivery).where(Delivery.channel == Channel.email)).all()
    return {d.letter.signer_email: d for d in rows if d.letter and d.letter.signer_email}


def _inbound(session: Session, settings: Settings, raw: bytes, kind: str, d: Delivery) -> None:
    address = returns.address(kind, SECRET, d.id, DOMAIN)  # type: ignore[arg-type]
    service.receive(
        session,
        raw=raw,
        address=address,
        mail_from="" if kind == "bounces" else "president@example.org",
        settings=settings,
        source="lmtp",
        now=utcnow(),
    )
    session.commit()


def populate(session: Session, settings: Settings) -> World:
    """Unite's letter bounced and answered by hand; GMB's answered automatically."""
    settings = make_settings(
        settings.database_url, settings.outbox_dir.parent, bounce_domain=DOMAIN
    )
    world = make_world(session, require_confirmation=False)
    signed(session, world.appeal, settings, org="unite", email="u@example.net")
    signed(session, world.appeal, settings, org="gmb", email="g@example.net")
    drain(settings)
    found = _deliveries(session)
    answer = b"From: president@example.org\r\nSubject: Re: Free them\r\nMessage-ID: <h@x>\r\n\r\n"
    _inbound(
        session, settings, answer + b"<b>We</b> read it.\r\n", "replies", found["u@example.net"]
    )
    away = b"From: president@example.org\r\nSubject: Out of office\r\nMessage-ID: <a@x>\r\n\r\n"
    _inbound(session, settings, away + b"Away.\r\n", "bounces", found["g@example.net"])
    dsn = DSN.replace(b"gone@example.org", b"president@example.org")
    _inbound(session, settings, dsn, "bounces", found["u@example.net"])
    return world


def test_replies_api_keeps_human_and_automatic_apart_and_scoped(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    url = "/api/v1/appeals/free-them/replies"
    admin = client.get(url, headers=world.auth("admin")).json()
    assert admin["counts"] == {"human": 1, "auto": 1}
    [reply] = admin["items"]
    assert reply["text"] == "<b>We</b> read it."  # kept as text; a page escapes it
    assert reply["sender"] == "president@example.org"
    auto = client.get(url + "?kind=auto", headers=world.auth("admin")).json()
    assert [r["subject"] for r in auto["items"]] == ["Out of office"]
    unite = client.get(url, headers=world.auth("unite")).json()
    assert unite["counts"] == {"human": 1, "auto": 0}
    gmb = client.get(url, headers=world.auth("gmb")).json()
    assert gmb["counts"] == {"human": 0, "auto": 1}
    assert gmb["items"] == []
    bad = client.get(url + "?kind=nonsense", headers=world.auth("admin"))
    assert bad.status_code == 422
    assert "kind" in bad.json()["fields"]


def test_bounces_api_flags_the_address_and_keeps_the_report(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    page = client.get("/api/v1/appeals/free-them/bounces", headers=world.auth("unite")).json()
    assert page["counts"] == {"hard": 1, "soft": 0, "complaint": 0}
    [address] = page["addresses"]
    assert (address["recipient"], address["current"], address["letters"]) == (
        "president@example.org",
        True,
        1,
    )
    [bounce] = page["items"]
    assert bounce["reply"].startswith("550 5.1.1 <president@example.org>")
    detail = client.get(f"/api/v1/bounces/{bounce['id']}", headers=world.auth("unite")).json()
    assert "Diagnostic-Code: smtp; 550 5.1.1" in detail["report"]
    assert client.get(f"/api/v1/bounces/{bounce['id']}", headers=world.auth("gmb")).status_code == (
        403
    )
    assert client.get("/api/v1/bounces/999999", headers=world.auth("admin")).status_code == 404
    gmb = client.get("/api/v1/appeals/free-them/bounces", headers=world.auth("gmb")).json()
    assert gmb["counts"] == {"hard": 0, "soft": 0, "complaint": 0}
    # The stats and the CSV say so too.
    figures = client.get("/api/v1/appeals/free-them/stats", headers=world.auth("admin")).json()
    assert figures["deliveries"]["bounced"] == 1
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    "/api/v1/appeals/free-them/letters.csv", headers=world.auth("admin")
                ).text.lstrip("\ufeff")
            )
        )
    )
    assert {r["email"]: r["bounced"] for r in rows} == {
        "u@example.net": "True",
        "g@example.net": "False",
    }


def test_dashboard_lists_bounces_and_replies_escaped(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    page = client.get("/dashboard/free-them", headers={**HTML, **world.auth("admin")}).text
    assert "The target address president@example.org refuses letters: 1 letter is waiting." in page
    assert "Replies: 1. Automatic answers (out of office and the like, not shown): 1." in page
    assert "&lt;b&gt;We&lt;/b&gt; read it." in page
    assert "Out of office" not in page  # counted, never shown as a reply
    bounce_id = page.split('href="/dashboard/bounces/')[1].split("?")[0]
    report = client.get(f"/dashboard/bounces/{bounce_id}", headers={**HTML, **world.auth("admin")})
    assert report.status_code == 200
    assert "Diagnostic-Code: smtp; 550 5.1.1" in report.text


def test_the_supporter_sees_the_bounce_on_their_letter(
    client: TestClient, session: Session, settings: Settings
) -> None:
    populate(session, settings)
    letter = _deliveries(session)["u@example.net"].letter
    assert letter is not None
    url = f"/api/v1/letters/{letter.public_id}?key={letter.key}"
    [email] = [d for d in client.get(url).json()["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "bounced"
    assert email["last_error"].startswith("president@example.org: 550 5.1.1")
    page = client.get(f"/letters/{letter.public_id}?key={letter.key}", headers=HTML).text
    assert "Returned by the target's mail server" in page
    assert "Recipient address rejected" in page
