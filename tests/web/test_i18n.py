"""The page catalogs: every template string translated, negotiation, rendering in each language."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.web import i18n

CYRILLIC = re.compile("[\u0400-\u04ff]")
# The same mapping as babel.cfg at the repository root, relative to app/web.
METHOD_MAP = [
    ("**.py", "python"),
    ("templates/**.html", "jinja2"),
    ("templates/**.txt", "jinja2"),
]
# silent=false: a template with a syntax error fails the test instead of yielding nothing.
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "silent": "false"}


def ui_messages() -> dict[str | tuple[str, ...], str]:
    """Every msgid used by the pages (templates and app/web/*.py) -> where it was found."""
    found: dict[str | tuple[str, ...], str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        i18n.WEB_DIR,
        method_map=METHOD_MAP,
        options_map={"templates/**.html": JINJA_OPTIONS, "templates/**.txt": JINJA_OPTIONS},
    ):
        found.setdefault(message, f"{filename}:{lineno}")
    return found


def test_templates_use_translatable_strings() -> None:
    messages = ui_messages()
    assert "Sign the letter" in messages
    assert ("%(num)s letter signed", "%(num)s letters signed") in messages
    assert len(messages) > 50


def test_every_msgid_has_a_russian_translation() -> None:
    po_path = i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale="ru")
    problems = []
    for msgid, where in ui_messages().items():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = catalog.get(key)
        if entry is None:
            problems.append(f"{where}: {msgid!r} is missing")
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry.fuzzy or not all(strings):
            problems.append(f"{where}: {msgid!r} is fuzzy or empty")
        elif isinstance(msgid, tuple) and (
            not isinstance(entry.id, tuple) or len(strings) != catalog.num_plurals
        ):
            problems.append(f"{where}: {msgid!r} needs {catalog.num_plurals} plural forms")
    assert not problems, "\n".join(problems)


def test_russian_catalog_translates() -> None:
    ru = i18n.translations("ru")
    assert ru.gettext("Sign the letter") == "Подписать письмо"
    assert CYRILLIC.search(ru.gettext("Check your e-mail"))
    forms = [
        ru.ngettext("%(num)s letter signed", "%(num)s letters signed", n) % {"num": n}
        for n in (1, 3, 5, 21)
    ]
    assert forms == [
        "1 письмо подписано",
        "3 письма подписаны",
        "5 писем подписано",
        "21 письмо подписано",
    ]


def test_translations_are_cached_and_unknown_languages_fall_back() -> None:
    assert i18n.translations("ru") is i18n.translations("ru")
    unknown = i18n.translations("../../etc")
    assert unknown.gettext("Sign the letter") == "Sign the letter"
    assert i18n.translations("en").gettext("Sign the letter") == "Sign the letter"


@pytest.mark.parametrize(
    ("accept", "query", "expected"),
    [
        (None, None, "en"),
        ("", None, "en"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", None, "ru"),
        ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", None, "ru"),
        ("en;q=0.3, ru;q=0.8", None, "ru"),
        ("ru;q=0, en", None, "en"),
        ("fr, *;q=0.1", None, "en"),
        ("RU", None, "ru"),
        ("ru-RU,ru;q=0.9", "en", "en"),
        ("en", "ru", "ru"),
        ("en", "RU", "ru"),
        ("ru", "xx", "ru"),
        ("garbage;;q=abc,,", None, "en"),
    ],
)
def test_negotiate(accept: str | None, query: str | None, expected: str) -> None:
    assert i18n.negotiate(accept, query, i18n.SUPPORTED) == expected


def test_negotiate_falls_back_to_the_first_available() -> None:
    assert i18n.negotiate("fr", None, ["ru", "en"]) == "ru"


def test_environment_is_cached_per_language() -> None:
    assert i18n.make_environment("ru") is i18n.make_environment("ru")
    assert i18n.make_environment("ru") is not i18n.make_environment("en")


# --- every page renders in every language with the contexts the routes pass ---

NS = SimpleNamespace
HOSTILE = '<script>alert("x")</script>'
WHEN = datetime(2009, 7, 1, 9, 30, tzinfo=UTC)


def page_context(lang: str) -> dict[str, Any]:
    appeal = NS(
        slug="almaty-coach-factory",
        title=f"Almaty {HOSTILE}",
        summary="First paragraph.\n\nSecond paragraph.\n",
        status="open",
        phase="open",
        opens_at=None,
        closes_at=WHEN,
        goal=5000,
        signed=1234,
        sent=1200,
        targets=[NS(name="Adil Bisembaev", title="President", organisation="Factory")],
        languages=["en", "ru"],
    )
    letter = NS(
        id="L1",
        status="sent",
        signer_name=HOSTILE,
        subject="Stop the reprisals",
        body=f"Dear President,\n\n{HOSTILE}\n\nYours",
        language="ru",
        created_at=WHEN,
        confirmed_at=WHEN,
        withdrawable=True,
        erased_at=None,
    )
    return {
        "lang": lang,
        "base_url": "http://127.0.0.1:8000/",
        "request_path": "/letters/L1",
        "request_query": {"key": "secret&key", "lang": "en"},
        "languages_nav": [("en", "English"), ("ru", "Русский")],
        "appeals": [appeal, NS(**{**vars(appeal), "slug": "b", "goal": None})],
        "appeal": appeal,
        "form": {"name": HOSTILE, "country": "KZ", "share_email": True, "message": HOSTILE},
        "errors": {"email": "Not a valid e-mail address", "form": "Try again"},
        "countries": [("GB", "United Kingdom"), ("KZ", "Kazakhstan")],
        "letter_languages": [("en", "English"), ("ru", "Русский")],
        "org": "unite",
        "org_name": "Unite <the union>",
        "closed": False,
        "preview_subject": "Subject",
        "preview_body": "Dear [name]",
        "form_token": "tok",
        "honeypot": "website",
        "forget_days": 30,
        "reached": True,
        "actions": {"withdraw": "/letters/L1/withdraw?key=k", "erase": "/letters/L1/erase?key=k"},
        "done": None,
        "letter": letter,
        "status_url": "/letters/L1?key=k",
        "needs_confirmation": True,
        "email": "jane@example.org",
        "deliveries": [
            NS(
                channel="email",
                recipients="president@example.org",
                status="retrying",
                attempts=2,
                last_error=HOSTILE,
                sent_at=None,
            ),
            NS(
                channel="fax",
                recipients="+77172000000",
                status="sent",
                attempts=1,
                last_error=None,
                sent_at=WHEN,
            ),
        ],
        "pdf_url": "/api/v1/letters/L1.pdf?key=k",
        "letter_url": "/letters/L1?key=k",
        "already": False,
        "status_code": 404,
        "title": "Not found",
        "message": "There is no such appeal.",
    }


PAGES = ["index.html", "appeal.html", "signed.html", "letter.html", "confirmed.html", "error.html"]


@pytest.mark.parametrize("lang", i18n.SUPPORTED)
@pytest.mark.parametrize("page", PAGES)
def test_pages_render_and_escape_user_data(page: str, lang: str) -> None:
    html = i18n.make_environment(lang).get_template(page).render(page_context(lang))
    assert html.startswith("<!doctype html>")
    assert f'<html lang="{lang}">' in html
    assert "<script>" not in html
    assert "key=secret%26key&amp;lang=" in html  # the language switch keeps the key
    if lang == "ru" and page != "error.html":
        assert CYRILLIC.search(html.split("<main", 1)[1])


def test_appeal_form_keeps_values_and_describes_errors() -> None:
    html = i18n.make_environment("en").get_template("appeal.html").render(page_context("en"))
    assert 'role="alert"' in html
    assert '<form method="post" action="/a/almaty-coach-factory?lang=en"' in html
    assert 'aria-describedby="f-email-note f-email-error" aria-invalid="true"' in html
    assert 'id="f-email-error">Not a valid e-mail address<' in html
    assert '<option value="KZ" selected>' in html
    assert 'name="share_email" type="checkbox" value="1" checked' in html
    assert 'name="copy_to_me" type="checkbox" value="1">' in html
    assert '<input type="hidden" name="org" value="unite">' in html
    assert 'value="&lt;script&gt;' in html
    assert '<progress value="1234" max="5000"' in html


def test_closed_appeal_shows_a_notice_instead_of_the_form() -> None:
    context = page_context("ru") | {"closed": True, "errors": {}}
    html = i18n.make_environment("ru").get_template("appeal.html").render(context)
    assert "<form" not in html
    assert i18n.translations("ru").gettext("This appeal is closed") in html


def test_confirmation_email_is_plain_text_and_translated() -> None:
    context = {
        "appeal_title": "Stop <the> threats",
        "signer_name": "Jane & Co",
        "confirm_url": "http://127.0.0.1:8000/confirm/tok?a=1&b=2",
        "letter_url": "http://127.0.0.1:8000/letters/L1?key=k",
        "subject": "Stop the reprisals",
        "body": "Dear President,\n\nFree them.",
        "expires_days": 3,
        "forget_days": 30,
    }
    template = "email/confirmation.txt"
    text = i18n.make_environment("en").get_template(template).render(context)
    assert "Hello Jane & Co," in text
    assert "“Stop <the> threats”" in text
    assert "confirm/tok?a=1&b=2" in text
    assert "> Dear President,\n>\n> Free them.\n" in text
    assert "works for 3 days" in text
    ru = i18n.make_environment("ru").get_template(template).render(context)
    assert "Здравствуйте, Jane & Co!" in ru
    assert "Ссылка действительна 3 дня." in ru


def test_locale_files_are_text_only() -> None:
    assert not list(Path(i18n.LOCALE_DIR).rglob("*.mo"))


def test_error_page_renders_with_only_a_title_and_message() -> None:
    # Error handlers may have less context than the pages; the error page must still render.
    html = (
        i18n.make_environment("ru")
        .get_template("error.html")
        .render(title="Not found", message="No such appeal.")
    )
    assert "<h1>Not found</h1>" in html
    assert i18n.translations("ru").gettext("Back to the list of appeals") in html
