"""Errors on the supporters' pages, said in the page's language; the API stays English."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import app.main  # noqa: F401  (every module that defines an error is imported by the app)
from app.core import i18n
from app.core.errors import InvalidInput, OutcryError
from app.models import Appeal
from app.web import explain
from tests.appeals.factories import make_appeal
from tests.letters.factories import form_data, signature
from tests.organisers.factories import make_world

RU = i18n.translations("ru")
LATIN_WORD = re.compile(r"\b[A-Za-z]{4,}\b")


@pytest.fixture
def appeal(session: Session) -> Appeal:
    appeal = make_appeal(session)
    session.commit()
    return appeal


def post_form(client: TestClient, lang: str, **fields: Any) -> tuple[int, dict[str, str]]:
    """Post the signing form as a browser reading `lang`; the status and the field errors shown."""
    response = client.post(
        f"/a/free-them?lang={lang}",
        data=form_data(client, **fields),
        headers={"Accept": "text/html", "Accept-Language": lang},
    )
    errors = re.findall(r'<p class="field-error" id="f-([a-z_]+)-error">([^<]*)</p>', response.text)
    return response.status_code, {field: html.unescape(text) for field, text in errors}


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"name": ""}, "name", RU.gettext("Please fill this in.")),
        ({"name": " \t "}, "name", RU.gettext("Please fill this in.")),
        (
            {"name": "Ada\r\nBcc: victim@example.com"},
            "name",
            RU.gettext("Please keep this to one line, without control characters."),
        ),
        ({"email": "not-an-address"}, "email", RU.gettext("This is not a valid e-mail address.")),
        ({"email": "a@"}, "email", "Нужно не меньше 3 символов."),
        ({"country": "XX"}, "country", RU.gettext("Please choose your country from the list.")),
        ({"city": "x" * 101}, "city", "Не больше 100 символов."),
        ({"message": "m" * 2001}, "message", "Не больше 2\xa0000 символов."),
        (
            {"language": "zz-nonsense"},
            "language",
            RU.gettext("Please choose a language from the list."),
        ),
        (
            {"language": "de"},
            "language",
            RU.gettext("Please choose one of the languages this letter is written in."),
        ),
    ],
)
def test_russian_page_says_what_is_wrong_in_russian(
    client: TestClient, appeal: Appeal, fields: dict[str, object], field: str, expected: str
) -> None:
    status, errors = post_form(client, "ru", **fields)
    assert status == 422
    assert errors == {field: expected}
    assert not LATIN_WORD.search(expected), "the catalog has no translation"


def test_english_page_keeps_the_address_checkers_own_reason(
    client: TestClient, appeal: Appeal
) -> None:
    _, errors = post_form(client, "en", email="ada.example.net")
    assert "@-sign" in errors["email"]  # email-validator's sentence, which says what is wrong
    _, errors = post_form(client, "en", name="", city="x" * 101)
    assert errors == {
        "name": "Please fill this in.",
        "city": "Please use at most 100 characters.",
    }


def test_api_answers_in_english_whatever_the_browser_reads(
    client: TestClient, appeal: Appeal
) -> None:
    def fields(**headers: str) -> dict[str, str]:
        response = client.post(
            "/api/v1/appeals/free-them/letters",
            json=signature(name="", country="XX"),
            headers=headers,
        )
        assert response.status_code == 422
        found: dict[str, str] = response.json()["fields"]
        return found

    english = fields()
    assert english["country"] == "must be an ISO 3166-1 alpha-2 country code, like KZ"
    assert fields(**{"Accept-Language": "ru"}) == english


def test_error_pages_are_translated(client: TestClient, appeal: Appeal) -> None:
    ru = client.get("/a/no-such-appeal", headers={"Accept": "text/html", "Accept-Language": "ru"})
    assert ru.status_code == 404
    assert RU.gettext("No such appeal.") in ru.text
    assert "No such appeal." not in ru.text
    en = client.get("/a/no-such-appeal", headers={"Accept": "text/html", "Accept-Language": "en"})
    assert "No such appeal." in en.text


def test_a_second_signature_is_refused_in_the_pages_language(
    client: TestClient, session: Session
) -> None:
    make_appeal(session, require_confirmation=False)
    session.commit()
    assert post_form(client, "ru")[0] == 201
    again = client.post(
        "/a/free-them?lang=ru",
        data=form_data(client, email="ADA@example.net"),
        headers={"Accept": "text/html", "Accept-Language": "ru"},
    )
    assert again.status_code == 409
    assert RU.gettext("This e-mail address has already signed this appeal.") in again.text
    assert "already signed" not in again.text


def every_error_class() -> list[type[OutcryError]]:
    found: list[type[OutcryError]] = []
    todo: list[type[OutcryError]] = [OutcryError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_errors_default_text_can_be_translated() -> None:
    missing = {
        f"{cls.__module__}.{cls.__name__}: {cls.default_detail!r}"
        for cls in every_error_class()
        if cls.default_detail not in explain.PAGE_DETAILS
    }
    assert not missing, "add these to app/web/explain.py PAGE_DETAILS and the catalogs"


def fixed_details_raised() -> dict[str, str]:
    """Every `raise SomeOutcryError("a fixed text")` in app/: the text -> where."""
    errors = {cls.__name__ for cls in every_error_class()}
    found: dict[str, str] = {}
    root = Path(explain.__file__).parents[1]
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name)
                and node.exc.func.id in errors - {"InvalidInput", "RateLimited"}
                and node.exc.args
                and isinstance(node.exc.args[0], ast.Constant)
                and isinstance(node.exc.args[0].value, str)
            ):
                found[node.exc.args[0].value] = f"{path.relative_to(root)}:{node.lineno}"
    return found


def test_every_fixed_error_text_can_be_translated() -> None:
    raised = fixed_details_raised()
    assert "This needs an admin." in raised  # the scan finds them
    missing = {
        f"{where}: {text!r}" for text, where in raised.items() if text not in explain.PAGE_DETAILS
    }
    assert not missing, "add these to app/web/explain.py PAGE_DETAILS and the catalogs"


def test_an_organisers_refusal_is_translated_on_a_russian_page(
    client: TestClient, session: Session
) -> None:
    world = make_world(session)
    page = client.get(
        "/dashboard/account",
        headers={**world.auth("admin"), "Accept": "text/html", "Accept-Language": "ru"},
    )
    assert page.status_code == 403
    assert (
        RU.gettext("This page is for organisers who log in; a token has no account.") in page.text
    )


def test_a_detail_of_its_own_is_shown_as_it_is() -> None:
    error = OutcryError("Something only this error says.")
    assert explain.error_message(error, "ru") == "Something only this error says."
    assert explain.error_message(OutcryError(), "ru") == RU.gettext("Bad request.")


def test_a_services_refusal_is_said_by_its_code() -> None:
    refused = InvalidInput(
        {"email": "The domain name example.invalid does not exist.", "slug": "taken"},
        codes={"email": "email_undeliverable"},
    )
    assert explain.input_errors(refused, "ru") == {
        "email": RU.gettext("Mail cannot be delivered to this address. Please check it."),
        "slug": "taken",  # no code: the service's own words
    }
    assert explain.input_errors(refused, "en")["email"].startswith("The domain name")
