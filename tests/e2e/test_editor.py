"""An admin runs a campaign from the browser alone (issue 16), with JavaScript off:
creates an appeal from nothing in English and Russian with two targets and a fax
number, previews the letter in both languages, fixes a template error from the message
shown, opens the appeal; a supporter signs it; the admin closes it. A union's account
then sees the audit entries of its own appeal only, and cannot open the editor.
(axe-core checks these pages, in these states, in tests/e2e/test_pages.py.)"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.organisers import service as organisers
from tests.appeals.factories import make_appeal
from tests.conftest import SECRET
from tests.organisers.factories import PASSWORD
from tests.support.processes import outcry_env, serving

pytestmark = pytest.mark.e2e

BROKEN = "Dear {{ target.title }} {{ target.name }},\n\nRelease the drivers.\n\n{{ signer.nmae }}"
RUSSIAN = "Уважаемый {{ target.name }}!\n\nОсвободите водителей.\n\n{{ signer.name }}"
FIXED = "Dear {{ target.title }} {{ target.name }},\n\nRelease the drivers.\n\n{{ signer.name }}"


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("editor")
    path = tmp / "outcry.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    with session_scope(session_factory(engine_for(url))) as session:
        # Another union's appeal: its entries are not unite's to read.
        make_appeal(session, slug="elsewhere", organisations=[{"slug": "gmb", "name": "GMB"}])
        unite = organisers.ensure_organisation(session, slug="unite", name="Unite the Union")
        organisers.add_organiser(session, email="admin@example.org", password=PASSWORD)
        organisers.add_organiser(
            session, email="unite@example.org", password=PASSWORD, organisation=unite
        )
    dispose_engine(url)
    env = outcry_env(database_url=url, secret_key=SECRET, outbox_dir=str(tmp / "outbox"))
    with serving(env, tmp) as base:
        yield base


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.click("form.sign-form button[type=submit]")
    page.wait_for_url("**/dashboard")


def press(page: Page, name: str) -> int:
    """Click the button named `name` and wait for the page that answers: its status."""
    with page.expect_navigation() as nav:
        page.get_by_role("button", name=name, exact=True).click()
    return nav.value.status if nav.value else 0


def test_an_admin_runs_a_campaign_in_the_browser(browser: Browser, site: str) -> None:
    admin = browser.new_context(java_script_enabled=False, locale="en-GB")
    page = admin.new_page()
    log_in(page, site, "admin@example.org")
    page.get_by_role("link", name="New appeal").click()

    page.fill("#f-slug", "free-the-drivers")
    page.fill("#f-languages", "en, ru")
    assert press(page, "Update the languages") == 200
    fields = {
        "#f-title-en": "Free the drivers",
        "#f-title-ru": "Свободу водителям",
        "#f-summary-en": "Two drivers are jailed for a strike.",
        "#f-sender_name-en": "Drivers' Solidarity",
        "#f-sender_name-ru": "Солидарность с водителями",
        "#f-letter-en-subject": "Free the drivers",
        "#f-letter-en-body": BROKEN,
        "#f-letter-ru-subject": "Освободите водителей",
        "#f-letter-ru-body": RUSSIAN,
        "#f-targets-0-name-en": "A. Minister",
        "#f-targets-0-name-ru": "А. Министр",
        "#f-targets-0-title-en": "Minister",
        "#f-targets-0-email": "minister@example.org",
        "#f-targets-1-name-en": "B. Governor",
        "#f-targets-1-fax": "+7 727 900 0001",
        "#f-copies": "campaign@example.net",
        "#f-organisations-0-slug": "unite",
        "#f-organisations-0-name": "Unite the Union",
    }
    for selector, value in fields.items():
        page.fill(selector, value)

    # The template error, named by its line and variable next to the English letter.
    assert press(page, "Preview the letter") == 422
    error = page.locator("#f-letter-en-body-error").inner_text()
    assert "line 5" in error
    assert "signer.nmae" in error
    assert "signer has name" in error
    assert page.input_value("#f-targets-1-fax") == "+7 727 900 0001"  # nothing typed is lost

    page.fill("#f-letter-en-body", FIXED)
    assert press(page, "Preview the letter") == 200
    english = page.locator("#preview-en").inner_text()
    assert "Ada Example via Drivers' Solidarity" in english
    assert "minister@example.org" in english
    assert "campaign@example.net" in english
    assert "B. Governor: +77279000001" in english
    assert "Dear Minister A. Minister" in english
    russian = page.locator("#preview-ru").inner_text()
    assert "Ada Example via Солидарность с водителями" in russian
    assert "Уважаемый А. Министр!" in russian

    assert press(page, "Save as a draft") == 200
    assert "done=created" in page.url
    page.goto(f"{site}/dashboard/free-the-drivers")
    page.get_by_role("link", name="Open the appeal…").click()
    assert "takes signatures" in page.content()
    assert press(page, "Open the appeal") == 200
    assert page.locator("#phase").inner_text().startswith("Open for signatures")

    supporter = browser.new_context(java_script_enabled=False, locale="ru-RU")
    signing = supporter.new_page()
    signing.goto(f"{site}/a/free-the-drivers?org=unite")
    assert "Свободу водителям" in signing.content()
    signing.fill("#f-name", "Анна Пример")
    signing.fill("#f-email", "anna@example.net")
    signing.select_option("#f-country", "KZ")
    with signing.expect_navigation() as signed:
        signing.click("form.sign-form button[type=submit]")
    assert signed.value is not None
    assert signed.value.status == 201
    supporter.close()

    page.goto(f"{site}/dashboard/free-the-drivers")
    page.get_by_role("link", name="Close the appeal…").click()
    assert "still delivered" in page.content()
    assert press(page, "Close the appeal") == 200
    assert page.locator("#phase").inner_text().startswith("Closed")
    admin.close()

    union = browser.new_context(java_script_enabled=False, locale="en-GB")
    unite = union.new_page()
    log_in(unite, site, "unite@example.org")
    assert unite.get_by_role("link", name="New appeal").count() == 0
    unite.goto(f"{site}/dashboard/audit")
    log = unite.locator("#audit-log").inner_text()
    assert "Appeal created" in log
    assert "Status changed" in log
    assert log.count("free-the-drivers") >= 3  # created, opened, closed
    assert "elsewhere" not in log
    refused = unite.goto(f"{site}/dashboard/appeals/new")
    assert refused is not None
    assert refused.status == 403
    refused = unite.goto(f"{site}/dashboard/free-the-drivers/edit")
    assert refused is not None
    assert refused.status == 403
    union.close()
