"""The dashboard pages fetched as an organiser would, their numbers checked."""

from __future__ import annotations

import os
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.delivery import faxes
from app.models import Delivery, DeliveryStatus, Letter, LetterStatus, utcnow
from tests.appeals.factories import make_appeal
from tests.conftest import drain
from tests.letters.factories import sign
from tests.organisers.factories import World, fail_deliveries, log_in, make_world, signed

HTML = {"Accept": "text/html"}


def table(html: str, table_id: str) -> dict[str, int]:
    """The rows of one table on the page: heading -> number."""
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, f"no table {table_id}"
    rows = re.findall(r'<th scope="row">(.*?)</th><td>([\d\s\xa0,]+)</td>', match.group(0))
    return {head: int(re.sub(r"\D", "", n)) for head, n in rows}


def populate(session: Session, settings: Settings, *, accounts: bool = False) -> World:
    world = make_world(session, accounts=accounts, moderation=True, goal=10)
    appeal = world.appeal
    signed(session, appeal, settings, org="unite", email="a@example.net", country="KZ")
    signed(session, appeal, settings, org="gmb", email="b@example.net", country="KZ")
    signed(session, appeal, settings, email="c@example.net", country="GB")
    drain(settings)
    signed(
        session,
        appeal,
        settings,
        org="unite",
        email="d@example.net",
        country="UA",
        name="Dmytro <Fail>",
    )
    fail_deliveries(settings, reply="550 5.1.1 <president@example.org>: mailbox unavailable")
    signed(session, appeal, settings, org="unite", email="e@example.net", message="Words")
    sign(session, appeal, settings, email="f@example.net")
    session.commit()
    return world


def test_overview_shows_every_appeal_with_progress(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    make_appeal(
        session,
        slug="later",
        title="Opens next week",
        status="open",
        opens_at=(utcnow() + timedelta(days=7)).isoformat(),
    )
    make_appeal(session, slug="plan", title="A draft", status="draft")
    session.commit()

    page = client.get("/dashboard", headers=world.auth("admin"))
    assert page.status_code == 200
    html = page.text
    # Figures as of loading, refreshed when the organiser asks: never a reload by itself.
    assert 'http-equiv="refresh"' not in html
    assert "Figures as of " in html
    assert '<a href="/dashboard?lang=en">Refresh</a>' in html
    card = html.split('id="appeal-free-them"', 1)[1].split("</li>", 1)[0]
    assert "5 letters signed" in card  # three sent, one failed, one held for moderation
    assert "Goal: 10." in card
    assert "3 letters delivered." in card
    assert '<progress value="5" max="10"' in card
    assert '<dd class="failed">1</dd>' in card
    assert '<dd class="held">1</dd>' in card
    assert '<dd class="pending">1</dd>' in card
    assert "Opens next week" in html
    assert "Not open yet" in html
    assert "A draft" in html  # organisers see drafts

    union = client.get("/dashboard", headers=world.auth("unite")).text
    assert "Opens next week" not in union  # unite takes no part in it
    card = union.split('id="appeal-free-them"', 1)[1].split("</li>", 1)[0]
    assert "5 letters signed" in card  # the appeal's public total, toward its goal
    # a (sent), d (failed) and e (held) came through unite
    assert '<dd class="own-signed">3</dd>' in card
    assert '<dd class="held">1</dd>' in card
    assert '<dd class="pending">0</dd>' in card


def test_appeal_page_numbers_chart_and_failures(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    page = client.get("/dashboard/free-them", headers=world.auth("admin"))
    assert page.status_code == 200
    html = page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "<script" not in html
    assert 'http-equiv="refresh"' not in html
    assert '<a href="/dashboard/free-them?lang=en">Refresh</a>' in html
    assert "5 letters signed" in html  # the held letter is a confirmed signature

    assert table(html, "letter-counts") == {
        "Waiting for confirmation": 1,
        "Waiting for moderation": 1,
        "Queued": 0,
        "Sent": 3,
        "Failed": 1,
        "Expired": 0,
        "Rejected": 0,
        "Withdrawn by the supporter": 0,
    }
    assert table(html, "delivery-counts") == {  # an e-mail and a fax per letter
        "Queued": 0,
        "Sending": 0,
        "Sent": 7,
        "Will be retried": 0,
        "Failed": 1,
        "Cancelled": 0,
        "Bounced": 0,
    }
    assert table(html, "by-country") == {
        "Kazakhstan (KZ)": 2,
        "United Kingdom (GB)": 2,
        "Ukraine (UA)": 1,
    }
    assert table(html, "by-organisation") == {
        "Unite the Union": 3,
        "GMB": 1,
        "Through no organisation's link": 1,
    }
    svg = html.split('<figure class="chart-wrap">', 1)[1].split("</figure>", 1)[0]
    assert svg.startswith("<svg")
    assert f"{utcnow().date().isoformat()}: Signed 5" in svg
    assert f"{utcnow().date().isoformat()}: Sent 3" in svg
    assert "Moderation: 1 letter waiting" in html
    assert "http://testserver/a/free-them?org=unite" in html
    assert "http://testserver/a/free-them?org=gmb" in html

    failures = html.split('id="failures"', 1)[1].split("</section>", 1)[0]
    assert "550 5.1.1 &lt;president@example.org&gt;: mailbox unavailable" in failures
    assert "Dmytro &lt;Fail&gt;" in failures
    assert "president@example.org" in failures  # the target's address
    assert "d@example.net" not in failures  # never the supporter's
    assert failures.count(">Retry</button>") == 2  # the letter, and its confirmation mail


def test_an_admin_is_told_of_faxes_left_waiting_in_the_folder(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, require_confirmation=False)  # its target has a fax number
    signed(session, world.appeal, settings, email="a@example.net")
    drain(settings)  # no gateway: the fax is written to the folder
    [pdf] = faxes.folder(settings).glob("*.pdf")

    assert 'id="fax-backlog"' not in client.get("/dashboard", headers=world.auth("admin")).text
    two_hours_ago = (utcnow() - timedelta(hours=2)).timestamp()
    os.utime(pdf, (two_hours_ago, two_hours_ago))

    html = client.get("/dashboard", headers=world.auth("admin")).text
    notice = html.split('id="fax-backlog"', 1)[1].split("</div>", 1)[0]
    assert "1 fax has not been sent." in notice
    assert str(faxes.folder(settings)) in notice
    assert "OUTCRY_FAX_GATEWAY" in notice
    # A union cannot act on the server's folders: not its concern.
    assert 'id="fax-backlog"' not in client.get("/dashboard", headers=world.auth("unite")).text
    russian = client.get("/dashboard?lang=ru", headers=world.auth("admin")).text
    assert "1 факс не отправлен." in russian
    pdf.unlink()  # faxed by hand, and removed
    assert 'id="fax-backlog"' not in client.get("/dashboard", headers=world.auth("admin")).text


def test_a_union_sees_its_own_figures_only(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = populate(session, settings)
    html = client.get("/dashboard/free-them", headers=world.auth("gmb")).text
    assert "link of GMB" in html
    assert table(html, "letter-counts")["Sent"] == 1
    assert table(html, "letter-counts")["Failed"] == 0
    assert table(html, "by-organisation") == {"GMB": 1}
    assert "http://testserver/a/free-them?org=gmb" in html
    assert "org=unite" not in html
    assert "Dmytro" not in html  # unite's supporter, in unite's failure
    assert "Test send" not in html


def test_retry_button_requeues_and_the_letter_goes_out(
    client: TestClient, session: Session, settings: Settings
) -> None:
    populate(session, settings, accounts=True)
    csrf = log_in(client, "unite@example.org")
    failed = session.scalars(
        select(Delivery).where(Delivery.status == DeliveryStatus.failed).order_by(Delivery.id)
    ).all()
    target = next(d for d in failed if d.channel.value == "email")
    url = f"/dashboard/deliveries/{target.id}/retry"
    assert client.post(url).status_code == 403  # no CSRF token
    done = client.post(url, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/free-them?done=retried"
    assert "The delivery is queued again." in client.get(done.headers["location"]).text
    session.expire_all()
    assert session.get(Delivery, target.id).status is DeliveryStatus.queued  # type: ignore[union-attr]
    # A second click on a delivery that is no longer failed changes nothing.
    assert client.post(url, data={"csrf_token": csrf}).status_code == 409

    drain(settings)  # the outbox folder accepts it this time
    session.expire_all()
    letter = session.get(Letter, target.letter_id)
    assert letter is not None
    assert letter.status is LetterStatus.sent
    html = client.get("/dashboard/free-them").text
    assert table(html, "letter-counts")["Failed"] == 0
    assert table(html, "letter-counts")["Sent"] == 2  # unite's two


def test_pages_in_russian(client: TestClient, session: Session, settings: Settings) -> None:
    world = populate(session, settings)
    for path in ("/dashboard", "/dashboard/free-them", "/dashboard/free-them/moderation"):
        html = client.get(path, params={"lang": "ru"}, headers=world.auth("admin")).text
        assert '<html lang="ru">' in html
        assert "Панель организатора" in html
    html = client.get("/dashboard/free-them?lang=ru", headers=world.auth("admin")).text
    assert table(html, "letter-counts")["Отправлено"] == 3
    assert "Повторить" in html
