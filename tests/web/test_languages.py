"""Pages in the reader's language: Kazakh as Russian is, and an appeal's own texts with them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from tests.appeals.factories import appeal_data, make_appeal
from tests.letters.factories import form_data, sign

KAZAKH_LETTERS = re.compile("[әғқңөұүһі]")
LETTER = {
    **appeal_data()["letter"],
    "kk": {
        "subject": "Оларды босатыңыз",
        "body": "Құрметті {{ target.name }}!\n\n{{ signer.name }}",
    },
}


def trilingual(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "languages": ["en", "ru", "kk"],
        "letter": LETTER,
        "title": {
            "en": "Free the jailed union leaders",
            "ru": "Свободу профсоюзным лидерам",
            "kk": "Кәсіподақ жетекшілерін босатыңыз",
        },
        "summary": {"en": "Two leaders are in prison.", "ru": "Двое лидеров в тюрьме."},
    }
    fields.update(overrides)
    return fields


def h1(html: str) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert match, html
    return match.group(1).strip()


def note(html: str) -> str | None:
    match = re.search(r'<p class="notice" id="untranslated">(.*?)</p>', html, re.S)
    return match.group(1) if match else None


@pytest.mark.parametrize(
    ("query", "accept", "lang", "title"),
    [
        ({"lang": "kk"}, None, "kk", "Кәсіподақ жетекшілерін босатыңыз"),
        ({}, "kk-KZ,kk;q=0.9,ru;q=0.8", "kk", "Кәсіподақ жетекшілерін босатыңыз"),
        ({}, "ru-RU,ru;q=0.9", "ru", "Свободу профсоюзным лидерам"),
        ({"lang": "en"}, "kk", "en", "Free the jailed union leaders"),
    ],
)
def test_the_appeal_page_speaks_the_readers_language(
    client: TestClient,
    session: Session,
    query: dict[str, str],
    accept: str | None,
    lang: str,
    title: str,
) -> None:
    make_appeal(session, **trilingual())
    session.commit()
    headers = {"Accept-Language": accept} if accept else {}

    html = client.get("/a/free-them", params=query, headers=headers).text

    assert f'<html lang="{lang}">' in html
    assert h1(html) == title
    if lang == "kk":
        assert "Хатқа қол қою" in html  # "Sign the letter", from the Kazakh catalog
        assert 'value="kk" lang="kk" selected' in html  # the letter in Kazakh too


def test_a_page_says_which_parts_are_not_translated(client: TestClient, session: Session) -> None:
    make_appeal(session, **trilingual())
    session.commit()

    kk = client.get("/a/free-them", params={"lang": "kk"}).text
    ru = client.get("/a/free-them", params={"lang": "ru"}).text
    en = client.get("/a/free-them", params={"lang": "en"}).text

    said = note(kk)
    assert said is not None
    assert said.startswith("Бұл үндеудің кейбір бөліктері әлі қазақ тіліне аударылмаған")
    assert "(ағылшын тілі)" in said
    for part in ("сипаттамасы", "хат алушылар"):
        assert part in said
    assert "тақырыбы" not in said  # the title is in Kazakh
    assert '<section class="summary" aria-label="Осы үндеу туралы" lang="en">' in kk
    assert "<p>Two leaders are in prison.</p>" in kk
    ru_note = note(ru)
    assert ru_note is not None
    assert ru_note.endswith("(английский): адресаты письма.")  # Russian title and summary
    assert note(en) is None


def test_a_reader_whose_language_the_appeal_lacks_is_told(
    client: TestClient, session: Session
) -> None:
    make_appeal(session)  # English and Russian, texts in English only
    session.commit()

    html = client.get("/a/free-them", params={"lang": "kk"}).text

    assert '<html lang="kk">' in html
    assert note(html) == (
        "Бұл үндеу әлі қазақ тіліне аударылмаған, сондықтан ол түпнұсқа тілінде "
        "(ағылшын тілі) көрсетілген."
    )
    assert '<h1 lang="en">Free the jailed union leaders</h1>' in html


def test_the_list_of_appeals_in_kazakh_keeps_the_language_in_its_links(
    client: TestClient, session: Session
) -> None:
    make_appeal(session, **trilingual())
    session.commit()

    html = client.get("/", params={"lang": "kk"}).text

    assert "Наразылық хаттары" in html
    assert '<a href="/a/free-them?lang=kk">Кәсіподақ жетекшілерін босатыңыз</a>' in html
    assert '<p lang="en">Two leaders are in prison.</p>' in html


def test_a_kazakh_letters_own_pages_are_kazakh(
    client: TestClient, session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session, **trilingual())
    letter = sign(session, appeal, settings, language="kk")
    session.commit()

    html = client.get(f"/letters/{letter.public_id}", params={"key": letter.key}).text

    assert '<html lang="kk">' in html
    assert KAZAKH_LETTERS.search(h1(html))
    assert "Кәсіподақ жетекшілерін босатыңыз" in html


def test_errors_are_said_in_kazakh(client: TestClient) -> None:
    html = client.get(
        "/a/no-such-appeal", params={"lang": "kk"}, headers={"Accept": "text/html"}
    ).text
    assert "Мұндай үндеу жоқ." in html


def test_form_errors_are_said_in_kazakh(client: TestClient, session: Session) -> None:
    make_appeal(session, **trilingual())
    session.commit()

    response = client.post(
        "/a/free-them?lang=kk",
        data=form_data(client, name="", email="not-an-address", country="KZ", language="kk"),
    )

    assert response.status_code == 422
    assert "Бұл өрісті толтырыңыз." in response.text
    assert "Бұл электрондық пошта мекенжайына ұқсамайды." in response.text
