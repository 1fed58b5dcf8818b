"""The page catalogs: every template string translated, negotiation, rendering in each language."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.core import i18n
from app.delivery import mailtexts
from app.web import environment

CYRILLIC = re.compile("[\u0400-\u04ff]")
KAZAKH_LETTERS = re.compile("[әғқңөұүһі]")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# The same mapping as babel.cfg at the repository root, relative to app/web.
METHOD_MAP = [
    ("**.py", "python"),
    ("templates/**.html", "jinja2"),
]
# silent=false: a template with a syntax error fails the test instead of yielding nothing.
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "silent": "false"}


DOCUMENTS_DIR = environment.WEB_DIR.parent / "documents"
Msgid = str | tuple[str, ...]


def catalog_messages() -> dict[tuple[str | None, Msgid], str]:
    """Every (context, msgid) the code uses (templates, app/web/*.py, and the PDF labels
    in app/documents/*.py) -> where it was found."""
    found: dict[tuple[str | None, Msgid], str] = {}
    sources = [
        (
            environment.WEB_DIR,
            METHOD_MAP,
            {"templates/**.html": JINJA_OPTIONS},
        ),
        (
            mailtexts.TEMPLATES_DIR,
            [("**.txt", "jinja2")],
            {"**.txt": JINJA_OPTIONS},
        ),
        (DOCUMENTS_DIR, [("**.py", "python")], {}),
    ]
    for directory, method_map, options_map in sources:
        for filename, lineno, message, _comments, context in extract_from_dir(
            directory, method_map=method_map, options_map=options_map
        ):
            found.setdefault((context, message), f"{directory.name}/{filename}:{lineno}")
    return found


def ui_messages() -> dict[Msgid, str]:
    """Every msgid of the pages and e-mails (no context) -> where it was found."""
    return {msgid: where for (ctx, msgid), where in catalog_messages().items() if ctx is None}


def read_catalog(lang: str) -> Catalog:
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as po_file:
        return read_po(po_file, locale=lang)


def untranslated(lang: str, *, only_context: str | None = None) -> list[str]:
    """What the `lang` catalog lacks of what the code uses, said per message."""
    catalog = read_catalog(lang)
    problems = []
    for (context, msgid), where in catalog_messages().items():
        if only_context is not None and context != only_context:
            continue
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = catalog.get(key, context=context)
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
        placeholders = set(PLACEHOLDER.findall(key))
        if any(set(PLACEHOLDER.findall(str(string))) != placeholders for string in strings):
            problems.append(f"{where}: {msgid!r} must keep exactly {sorted(placeholders)}")
    return problems


def test_templates_use_translatable_strings() -> None:
    messages = ui_messages()
    assert "Sign the letter" in messages
    assert ("%(num)s letter signed", "%(num)s letters signed") in messages
    assert len(messages) > 50


def test_the_pdf_labels_are_in_the_catalogs() -> None:
    labels = {msgid for (ctx, msgid) in catalog_messages() if ctx == "pdf"}
    assert {"Page %(n)s of %(m)s", "Hand-over of letters", "Pages in this bundle"} <= labels


@pytest.mark.parametrize("lang", [lang for lang in i18n.SUPPORTED if lang != "en"])
def test_every_msgid_has_a_translation(lang: str) -> None:
    # English is the source language: its texts are the msgids themselves.
    problems = untranslated(lang)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", sorted(i18n.catalog_languages() - set(i18n.SUPPORTED)))
def test_pdf_only_catalogs_translate_every_label(lang: str) -> None:
    problems = untranslated(lang, only_context="pdf")
    assert not problems, "\n".join(problems)


def test_every_page_language_has_a_catalog_and_a_name() -> None:
    assert set(i18n.SUPPORTED) - {"en"} <= i18n.catalog_languages()
    assert i18n.language_name("kk", "kk") == "қазақ тілі"
    assert i18n.language_name("kk", "ru") == "казахский"
    assert i18n.language_name("xx-nonsense", "en") == "xx-nonsense"


def test_kazakh_catalog_translates() -> None:
    kk = i18n.translations("kk")
    assert kk.gettext("Sign the letter") == "Хатқа қол қою"
    assert kk.gettext("Check your e-mail") == "Поштаңызды тексеріңіз"
    # Kazakh keeps the noun singular after a number: one form reads right for every n.
    forms = [
        kk.ngettext("%(num)s letter signed", "%(num)s letters signed", n) % {"num": n}
        for n in (1, 5)
    ]
    assert forms == ["1 хатқа қол қойылды", "5 хатқа қол қойылды"]
    assert kk.pgettext("pdf", "Hand-over of letters") == "Хаттарды тапсыру"
    assert i18n.translations("kk-KZ") is kk


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
        ("kk-KZ,kk;q=0.9,ru;q=0.8,en;q=0.5", None, "kk"),
        ("kk", None, "kk"),
        ("ru-RU,ru;q=0.9", "kk", "kk"),
        ("kk", "ru", "ru"),
    ],
)
def test_negotiate(accept: str | None, query: str | None, expected: str) -> None:
    assert i18n.negotiate(accept, query, i18n.SUPPORTED) == expected


def test_negotiate_falls_back_to_the_first_available() -> None:
    assert i18n.negotiate("fr", None, ["ru", "en"]) == "ru"


def test_environment_is_cached_per_language() -> None:
    assert environment.make_environment("ru") is environment.make_environment("ru")
    assert environment.make_environment("ru") is not environment.make_environment("en")


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
        "languages_nav": [("en", "English"), ("ru", "Русский"), ("kk", "Қазақ тілі")],
        "untranslated_note": "",
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
    html = environment.make_environment(lang).get_template(page).render(page_context(lang))
    assert html.startswith("<!doctype html>")
    assert f'<html lang="{lang}">' in html
    assert "<script>" not in html
    assert "key=secret%26key&amp;lang=" in html  # the language switch keeps the key
    if lang in ("ru", "kk") and page != "error.html":
        assert CYRILLIC.search(html.split("<main", 1)[1])
    if lang == "kk" and page != "error.html":
        assert KAZAKH_LETTERS.search(html.split("<main", 1)[1])


def test_appeal_form_keeps_values_and_describes_errors() -> None:
    html = environment.make_environment("en").get_template("appeal.html").render(page_context("en"))
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
    html = environment.make_environment("ru").get_template("appeal.html").render(context)
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
    text = mailtexts.make_environment("en").get_template(template).render(context)
    assert "Hello Jane & Co," in text
    assert "“Stop <the> threats”" in text
    assert "confirm/tok?a=1&b=2" in text
    assert "> Dear President,\n>\n> Free them.\n" in text
    assert "works for 3 days" in text
    ru = mailtexts.make_environment("ru").get_template(template).render(context)
    assert "Здравствуйте, Jane & Co!" in ru
    assert "Ссылка действительна 3 дня." in ru


def test_locale_files_are_text_only() -> None:
    assert not list(Path(i18n.LOCALE_DIR).rglob("*.mo"))


def test_error_page_renders_with_only_a_title_and_message() -> None:
    # Error handlers may have less context than the pages; the error page must still render.
    html = (
        environment.make_environment("ru")
        .get_template("error.html")
        .render(title="Not found", message="No such appeal.")
    )
    assert "<h1>Not found</h1>" in html
    assert i18n.translations("ru").gettext("Back to the list of appeals") in html
