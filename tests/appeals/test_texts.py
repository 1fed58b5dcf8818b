"""An appeal's texts per language: the schema, what is refused, how they are kept and read."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appeals import letter as appeal_letter
from app.appeals import service, texts
from app.appeals.schemas import AppealIn
from app.core import paths
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.delivery.compose import outgoing
from app.models import Appeal, Delivery
from tests.appeals.factories import appeal_data, make_appeal
from tests.conftest import drain
from tests.letters.factories import sign

TITLE = {"en": "Free the jailed union leaders", "ru": "Свободу профсоюзным лидерам"}
TARGET = {
    "name": {"en": "A. President", "ru": "А. Президентов"},
    "title": {"en": "President", "ru": "Президент"},
    "organisation": "Presidential Office",
    "email": "president@example.org",
    "address": {"en": "1 Main Square\nAstana", "ru": "Главная площадь, 1\nАстана"},
}


def translated(**overrides: Any) -> dict[str, Any]:
    """The factory appeal with Russian texts for everything but the target's organisation."""
    fields: dict[str, Any] = {
        "title": TITLE,
        "summary": {"en": "Two leaders are in prison.", "ru": "Двое лидеров в тюрьме."},
        "sender_name": {"en": "Solidarity Campaign", "ru": "Кампания солидарности"},
        "targets": [TARGET],
    }
    fields.update(overrides)
    return appeal_data(**fields)


def errors(data: dict[str, Any]) -> dict[str, str]:
    try:
        texts.check(AppealIn.model_validate(data))
    except ValidationError as exc:
        return {".".join(map(str, e["loc"])): e["msg"] for e in exc.errors()}
    return texts.check(AppealIn.model_validate(data))


def test_a_text_is_a_string_or_one_per_language() -> None:
    data = AppealIn.model_validate(translated(title={"EN": " Free them ", "ru": "Свободу"}))
    assert data.title == {"en": "Free them", "ru": "Свободу"}
    assert AppealIn.model_validate(appeal_data()).title == "Free the jailed union leaders"


@pytest.mark.parametrize(
    ("title", "said"),
    [
        ({"en": "a" * 201}, "en: String should have at most 200 characters"),
        ({"en": "ok", "ru": "two\nlines"}, "ru: must be a single line"),
        ({"en": "ok", "xx-nonsense": "?"}, "unknown language"),
        ({"en": "ok", "ru": ["a list"]}, "ru: must be a text"),
        (["en", "ru"], "must be a text, or texts by language"),
        ({}, "at least 1 character"),
        ("", "at least 1 character"),
    ],
)
def test_bad_texts_are_refused_naming_the_field_and_language(title: object, said: str) -> None:
    assert said in errors(translated(title=title))["title"]


def test_a_required_text_needs_the_default_language() -> None:
    problems = errors(translated(title={"ru": "Только по-русски"}))
    assert problems == {"title": "needs a text in en, the appeal's default language"}
    # Russian as the default: the same title is enough.
    assert errors(translated(title={"ru": "Только по-русски"}, languages=["ru", "en"])) == {}


def test_texts_in_a_language_the_appeal_is_not_in_are_refused() -> None:
    target = {**TARGET, "address": {"en": "Astana", "kk": "Астана қаласы"}}
    problems = errors(translated(targets=[target]))
    assert problems == {
        "targets.0.address": "has text in kk, which is not one of the appeal's languages (en, ru)"
    }


def test_a_language_with_no_texts_of_its_own_is_accepted() -> None:
    # Nothing in Kazakh but the letter: readers get the English texts and are told so.
    letter = {**appeal_data()["letter"], "kk": {"subject": "Босатыңыз", "body": "Босатыңыз."}}
    assert errors(translated(languages=["en", "ru", "kk"], letter=letter)) == {}


def test_save_refuses_what_no_reader_could_be_shown(session: Session) -> None:
    with pytest.raises(InvalidInput) as info:
        make_appeal(session, **translated(sender_name={"ru": "Кампания"}))
    assert set(info.value.fields) == {"sender_name"}
    assert session.scalar(select(Appeal)) is None


def test_default_texts_in_columns_and_the_rest_beside_them(session: Session) -> None:
    appeal = make_appeal(session, **translated())
    session.expire_all()
    appeal = service.get_appeal(session, appeal.slug)

    assert appeal.title == TITLE["en"]
    assert appeal.translations == {
        "ru": {
            "title": TITLE["ru"],
            "summary": "Двое лидеров в тюрьме.",
            "sender_name": "Кампания солидарности",
        }
    }
    [target] = appeal.targets
    assert (target.name, target.organisation) == ("A. President", "Presidential Office")
    assert target.translations == {
        "ru": {
            "name": "А. Президентов",
            "title": "Президент",
            "address": "Главная площадь, 1\nАстана",
        }
    }
    # What came in is what an editor gets back.
    assert texts.as_input(appeal)["title"] == TITLE
    assert texts.target_as_input(target, "en")["organisation"] == "Presidential Office"


def test_an_update_replaces_the_translations(session: Session) -> None:
    make_appeal(session, **translated())
    appeal = make_appeal(session, **translated(summary="Only English now."))
    assert "summary" not in appeal.translations["ru"]
    assert service.in_language(appeal, "ru").summary == "Only English now."


def test_reading_a_language_falls_back_to_the_default_and_says_what_did(
    session: Session,
) -> None:
    appeal = make_appeal(session, **translated(summary="English only."))

    ru = service.in_language(appeal, "ru")
    assert (ru.language, ru.title, ru.summary) == ("ru", TITLE["ru"], "English only.")
    assert ru.targets[0].name == "А. Президентов"
    assert ru.targets[0].organisation == "Presidential Office"
    assert ru.untranslated == ("summary", "targets.0.organisation")
    assert service.in_language(appeal, "ru-RU").language == "ru"

    kk = service.in_language(appeal, "kk")  # not one of the appeal's languages
    assert (kk.language, kk.title, kk.untranslated) == ("en", TITLE["en"], ())


def test_the_letter_template_sees_the_texts_in_its_language(session: Session) -> None:
    letter = {
        "en": {"subject": "To {{ target.name }}", "body": "{{ appeal.title }}"},
        "ru": {"subject": "{{ target.name }}", "body": "{{ appeal.title }}, {{ target.title }}"},
    }
    appeal = make_appeal(session, **translated(letter=letter))

    rendered = appeal_letter.preview(
        appeal,
        "ru",
        today=appeal.created_at.date(),
        placeholders=dict.fromkeys(("name", "organisation", "city"), ""),
    )
    assert (rendered.subject, rendered.body) == ("А. Президентов", f"{TITLE['ru']}, Президент")


def test_a_template_that_fails_on_a_translation_is_refused_at_import(session: Session) -> None:
    # The Russian letter splits the Russian name: checked with the Russian texts.
    letter = {**appeal_data()["letter"], "ru": {"subject": "s", "body": "{{ target.nmae }}"}}
    with pytest.raises(InvalidInput) as info:
        make_appeal(session, **translated(letter=letter))
    assert info.value.fields == {
        "letter.ru": "letter.ru.body, line 1: “target.nmae” does not exist; "
        "target has name, title, organisation"
    }


def test_the_api_gives_texts_in_the_language_asked_for(
    client: TestClient, session: Session
) -> None:
    make_appeal(session, **translated(summary="English only."))
    session.commit()

    plain = client.get("/api/v1/appeals/free-them").json()
    assert (plain["title"], plain["language"], plain["untranslated"]) == (TITLE["en"], "en", [])

    ru = client.get("/api/v1/appeals/free-them", params={"lang": "ru"}).json()
    assert (ru["title"], ru["summary"], ru["language"]) == (TITLE["ru"], "English only.", "ru")
    assert ru["untranslated"] == ["summary", "targets.0.organisation"]
    assert ru["targets"] == [
        {"name": "А. Президентов", "title": "Президент", "organisation": "Presidential Office"}
    ]
    [listed] = client.get("/api/v1/appeals", params={"lang": "ru"}).json()
    assert listed["title"] == TITLE["ru"]
    assert client.get("/api/v1/appeals/free-them", params={"lang": "kk"}).json()["language"] == "en"


def test_the_api_takes_texts_per_language(client: TestClient, session: Session) -> None:
    from tests.documents.factories import admin_token

    token = admin_token(session)
    session.commit()
    response = client.put(
        "/api/v1/appeals/free-them",
        json=translated(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == TITLE["en"]

    bad = client.put(
        "/api/v1/appeals/free-them",
        json=translated(title={"ru": "Без английского"}),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bad.status_code == 422
    assert bad.json()["fields"] == {"title": "needs a text in en, the appeal's default language"}


def _sent_text(path: Path) -> tuple[str, str, str]:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    return str(message["Subject"]), str(message["From"]), body.get_content()


def test_emails_use_the_texts_of_the_letters_language(session: Session, settings: Settings) -> None:
    appeal = make_appeal(session, **translated())
    sign(session, appeal, settings, language="ru")
    session.commit()
    drain(settings)

    [eml] = settings.outbox_dir.glob("*.confirm.*.eml")
    subject, sender, body = _sent_text(eml)
    assert subject == f"Подтвердите, пожалуйста, ваше письмо: {TITLE['ru']}"
    assert "Кампания солидарности" in sender
    assert f"«{TITLE['ru']}»" in body


def test_the_letter_to_the_targets_names_them_in_its_language(
    session: Session, settings: Settings
) -> None:
    appeal = make_appeal(session, **translated(require_confirmation=False))
    letter = sign(session, appeal, settings, language="ru")
    delivery = session.scalar(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == "email")
    )
    assert delivery is not None

    message = outgoing(delivery, letter, appeal, settings=settings).message

    assert message["To"].addresses[0].display_name == "А. Президентов"
    assert message["From"].addresses[0].display_name.endswith(" via Кампания солидарности")


def test_the_demo_appeals_carry_russian_and_kazakh_texts(session: Session) -> None:
    import yaml

    for path in sorted(paths.demo_dir().glob("*.yaml")):
        data = AppealIn.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        appeal, _ = service.save_appeal(
            session, data=data, directory=paths.letter_templates_dir(), by="test"
        )
        for language in appeal.languages:
            assert service.in_language(appeal, language).untranslated == (), (path, language)
    kazakh = service.in_language(service.get_appeal(session, "kazakhstan-union-activists"), "kk")
    assert kazakh.title.startswith("Қазақстан:")
    assert kazakh.targets[0].name == "Қасым-Жомарт Тоқаев"
