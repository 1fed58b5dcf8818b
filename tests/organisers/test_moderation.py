"""Moderation: held letters, approving and rejecting, and the supporter's notice."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import Channel, Delivery, Letter, LetterStatus
from tests.conftest import drain
from tests.letters.factories import confirm, sign
from tests.organisers.factories import log_in, make_world, signed


def outbox(settings: Settings) -> dict[str, EmailMessage]:
    found = {}
    for path in Path(settings.outbox_dir).glob("*.eml"):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        found[path.name] = msg
    return found


def channels(session: Session, letter: Letter) -> list[Channel]:
    session.expire_all()
    return [
        d.channel for d in session.scalars(select(Delivery).where(Delivery.letter_id == letter.id))
    ]


def test_only_letters_with_own_words_wait(session: Session, settings: Settings) -> None:
    world = make_world(session, moderation=True)
    plain = signed(session, world.appeal, settings, email="plain@example.net")
    worded = signed(session, world.appeal, settings, email="words@example.net", message="Shame!")
    assert plain.status is LetterStatus.queued
    assert worded.status is LetterStatus.held
    assert Channel.email in channels(session, plain)
    assert channels(session, worded) == [Channel.confirmation]  # nothing for the targets


def test_moderation_is_off_by_default(session: Session, settings: Settings) -> None:
    world = make_world(session)
    letter = signed(session, world.appeal, settings, email="w@example.net", message="Shame!")
    assert letter.status is LetterStatus.queued


def test_without_confirmation_a_letter_is_held_at_once(
    client: TestClient, session: Session
) -> None:
    make_world(session, moderation=True, require_confirmation=False)
    response = client.post(
        "/api/v1/appeals/free-them/letters",
        json={"name": "Ada", "email": "ada@example.net", "country": "GB", "message": "Shame!"},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "held"


def test_approve_sends_to_the_targets(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, moderation=True)
    letter = signed(
        session,
        world.appeal,
        settings,
        org="unite",
        email="w@example.net",
        message="Free them now.",
    )
    queue = client.get("/api/v1/appeals/free-them/moderation", headers=world.auth("unite")).json()
    assert queue["total"] == 1
    assert queue["items"][0]["message"] == "Free them now."
    assert queue["items"][0]["email"] is None  # a union never sees the address
    drain(settings)
    assert not [n for n in outbox(settings) if ".letter." in n]  # held: nothing went out

    response = client.post(
        f"/api/v1/letters/{letter.public_id}/approve", headers=world.auth("unite")
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"id": letter.public_id, "status": "queued"}
    drain(settings)
    sent = [m for n, m in outbox(settings).items() if ".letter." in n]
    assert len(sent) == 1
    assert "Free them now." in sent[0].get_content()
    session.expire_all()
    assert session.get(Letter, letter.id).status is LetterStatus.sent  # type: ignore[union-attr]

    again = client.post(f"/api/v1/letters/{letter.public_id}/approve", headers=world.auth("admin"))
    assert again.status_code == 409
    assert again.json()["error"] == "not_held"
    queue = client.get("/api/v1/appeals/free-them/moderation", headers=world.auth("unite")).json()
    assert queue["total"] == 0


def test_reject_never_sends_and_tells_the_supporter(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, moderation=True)
    letter = signed(
        session,
        world.appeal,
        settings,
        email="w@example.net",
        language="ru",
        name="Айгуль",
        message="Слова, которые не пройдут.",
    )
    response = client.post(
        f"/api/v1/letters/{letter.public_id}/reject", headers=world.auth("admin")
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    drain(settings)

    mails = outbox(settings)
    assert not [n for n in mails if ".letter." in n]
    [notice] = [m for n, m in mails.items() if ".rejected." in n]
    assert notice["To"].addresses[0].addr_spec == "w@example.net"
    assert notice["Subject"].startswith("Ваше письмо не отправлено")
    text = notice.get_content()
    assert "Здравствуйте, Айгуль!" in text
    assert "> Слова, которые не пройдут." in text
    assert "http://testserver/a/free-them" in text
    session.expire_all()
    assert session.get(Letter, letter.id).status is LetterStatus.rejected  # type: ignore[union-attr]
    assert Channel.email not in channels(session, letter)

    # Nothing went out in their name: they may sign again, and the new letter waits too.
    again = sign(session, world.appeal, settings, email="w@example.net", message="Kinder words.")
    again = confirm(session, again, settings)
    assert again.status is LetterStatus.held


def test_moderation_page_approves_and_rejects_with_csrf(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, accounts=True, moderation=True)
    first = signed(
        session,
        world.appeal,
        settings,
        org="unite",
        email="1@example.net",
        message="First <b>words</b>",
    )
    second = signed(
        session, world.appeal, settings, org="unite", email="2@example.net", message="Second words"
    )
    signed(session, world.appeal, settings, org="gmb", email="3@example.net", message="GMB words")
    csrf = log_in(client, "unite@example.org")

    page = client.get("/dashboard/free-them/moderation")
    assert page.status_code == 200
    assert "2 letters waiting" in page.text
    assert "First &lt;b&gt;words&lt;/b&gt;" in page.text
    assert "GMB words" not in page.text  # another union's supporter

    url = f"/dashboard/letters/{first.public_id}/approve"
    assert client.post(url).status_code == 403  # no CSRF token
    done = client.post(url, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/free-them/moderation?done=approved"
    done = client.post(
        f"/dashboard/letters/{second.public_id}/reject?lang=ru",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/dashboard/free-them/moderation?lang=ru&done=rejected"
    page = client.get(done.headers["location"])
    assert "Письмо отклонено" in page.text
    assert "Писем, ждущих модерации, нет." in page.text
    session.expire_all()
    assert session.get(Letter, first.id).status is LetterStatus.queued  # type: ignore[union-attr]
    assert session.get(Letter, second.id).status is LetterStatus.rejected  # type: ignore[union-attr]


def test_a_reason_for_rejecting_reaches_the_supporter(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, accounts=True, moderation=True)
    by_api = signed(
        session, world.appeal, settings, email="a@example.net", language="ru", message="Грубо."
    )
    on_page = signed(session, world.appeal, settings, email="b@example.net", message="Rude.")
    url = f"/api/v1/letters/{by_api.public_id}/reject"
    too_long = client.post(url, json={"reason": "x" * 1001}, headers=world.auth("admin"))
    assert too_long.status_code == 422
    assert "reason" in too_long.json()["fields"]
    reason = "Пожалуйста, без оскорблений.\r\nПодпишите ещё раз <b>без</b> них.\x00"
    response = client.post(url, json={"reason": reason}, headers=world.auth("admin"))
    assert response.status_code == 200, response.text

    csrf = log_in(client, "admin@example.org")
    done = client.post(
        f"/dashboard/letters/{on_page.public_id}/reject",
        data={"csrf_token": csrf, "reason": "Please leave out the insult."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    drain(settings)

    notices = {
        m["To"].addresses[0].addr_spec: m for n, m in outbox(settings).items() if ".rejected." in n
    }
    # (A 7-bit body comes back with the CRLF line ends it had on the wire.)
    russian = notices["a@example.net"].get_content().replace("\r\n", "\n")
    assert "Организаторы написали:\n\n    Пожалуйста, без оскорблений.\n" in russian
    assert "    Подпишите ещё раз <b>без</b> них.\n" in russian  # plain text, as written
    assert "\x00" not in russian
    english = notices["b@example.net"].get_content().replace("\r\n", "\n")
    assert "The organisers wrote:\n\n    Please leave out the insult.\n" in english

    # The supporter's own page says it too, escaped; the letter's JSON carries it.
    session.expire_all()
    letter = session.get(Letter, by_api.id)
    assert letter is not None
    status = client.get(f"/api/v1/letters/{letter.public_id}", params={"key": letter.key})
    assert status.json()["rejection_reason"].startswith("Пожалуйста, без оскорблений.\n")
    page = client.get(f"/letters/{letter.public_id}", params={"key": letter.key, "lang": "ru"})
    assert "Организаторы написали:" in page.text
    assert "ещё раз &lt;b&gt;без&lt;/b&gt; них." in page.text


def test_rejecting_without_a_reason_says_nothing_more(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, moderation=True)
    letter = signed(session, world.appeal, settings, email="c@example.net", message="Words.")
    url = f"/api/v1/letters/{letter.public_id}/reject"
    assert client.post(url, headers=world.auth("admin")).status_code == 200
    drain(settings)
    [notice] = [m for n, m in outbox(settings).items() if ".rejected." in n]
    assert "The organisers wrote:" not in notice.get_content()


def test_held_letters_count_as_signed(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """Three confirmed letters, one approved: the dashboard and the public count say 3
    signed (it said 1: held letters, confirmed signatures, were left out)."""
    world = make_world(session, moderation=True, goal=10)
    held = [
        signed(session, world.appeal, settings, email=f"{n}@example.net", message="Words")
        for n in range(3)
    ]
    approved = client.post(
        f"/api/v1/letters/{held[0].public_id}/approve", headers=world.auth("admin")
    )
    assert approved.status_code == 200
    html = client.get("/dashboard/free-them", headers=world.auth("admin")).text
    assert "<strong>3 letters signed</strong>" in html
    assert '<progress value="3" max="10"' in html
    assert "Moderation: 2 letters waiting" in html
    assert client.get("/api/v1/appeals/free-them").json()["signed"] == 3
    overview = client.get("/dashboard", headers=world.auth("admin")).text
    assert "3 letters signed" in overview

    # A rejected letter is no signature: the supporter is asked to sign again.
    rejected = client.post(
        f"/api/v1/letters/{held[1].public_id}/reject", headers=world.auth("admin")
    )
    assert rejected.status_code == 200
    assert client.get("/api/v1/appeals/free-them").json()["signed"] == 2


def test_moderation_page_says_who_in_which_language_and_through_whom(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, accounts=True, moderation=True)
    letter = signed(
        session,
        world.appeal,
        settings,
        org="unite",
        email="r@example.net",
        language="ru",
        country="KZ",
        city="Алматы",
        message="Свободу!",
    )
    signed(session, world.appeal, settings, email="n@example.net", message="No link")
    log_in(client, "admin@example.org")
    html = client.get("/dashboard/free-them/moderation").text
    card = html.split(f'id="letter-{letter.public_id}"', 1)[1].split("</li>", 1)[0]
    assert '<dd class="letter-language" lang="ru">Русский</dd>' in card
    assert '<dd class="letter-organisation">Unite the Union</dd>' in card
    assert "Алматы, Kazakhstan" in card
    # The reason box sits inside Reject's own group, after Approve's form has closed.
    approve, reject = card.split('class="reject-form"', 1)
    assert "Approve and send" in approve
    assert "<textarea" not in approve
    assert "<legend>Or reject the letter</legend>" in reject
    assert reject.index("<fieldset>") < reject.index("<textarea") < reject.index("</fieldset>")
    assert "no organisation's link" in html  # the other letter came through no link


def test_the_sign_again_link_keeps_the_union_and_the_language(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, moderation=True)
    letter = signed(
        session,
        world.appeal,
        settings,
        org="unite",
        email="k@example.net",
        language="ru",
        message="Слова.",
    )
    url = f"/api/v1/letters/{letter.public_id}/reject"
    assert client.post(url, headers=world.auth("admin")).status_code == 200
    drain(settings)
    [notice] = [m for n, m in outbox(settings).items() if ".rejected." in n]
    text = notice.get_content()
    assert "http://testserver/a/free-them?org=unite&lang=ru\n" in text.replace("\r\n", "\n")

    # The letter's page: a notice that is not success-green, with the same link.
    page = client.get(f"/letters/{letter.public_id}", params={"key": letter.key}).text
    assert '<div class="notice warn" role="status">' in page
    assert 'href="http://testserver/a/free-them?org=unite&amp;lang=ru"' in page
