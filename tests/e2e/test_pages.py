"""Every page, as supporters, an admin and a union see it, in each language that has a
catalog, on a desktop and on a phone: axe-core finds nothing critical or serious, and
nothing is wider than the screen.

One `outcry serve` and one browser serve the whole module; each kind of visitor keeps
one page per screen width, so a check is a navigation and an axe run.

A new page joins by one entry in SUPPORTER_PAGES or ORGANISER_PAGES: a path (formatted
with the ids in `Site.ids`), or a function that takes the visitor's page and the site
and brings the page to the state to check (filling a form, say), returning the HTTP
status it expects. Set OUTCRY_SCREENSHOTS=DIR to keep a full-page PNG of every check.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Browser, BrowserContext, Page

from app.appeals import service as appeals
from app.appeals.schemas import AppealIn
from app.core import i18n, paths
from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.delivery.compose import confirm_token
from app.letters import moderation, samples
from app.models import utcnow
from app.organisers import accounts, invitations
from app.organisers import service as organisers
from tests.appeals.factories import make_appeal
from tests.conftest import SECRET, drain, make_settings
from tests.letters.factories import sign
from tests.organisers.factories import ORGANISATIONS, PASSWORD, fail_deliveries, signed
from tests.support.processes import outcry_env, serving

pytestmark = pytest.mark.e2e

# Every language the pages are offered in (the de, es and fr catalogs hold PDF labels only).
LANGUAGES = list(i18n.SUPPORTED)
WIDTHS = {"desktop": 1280, "phone": 390}
BLOCKING = ("critical", "serious")
SCREENSHOTS = os.environ.get("OUTCRY_SCREENSHOTS")

# A long union name and long addresses: what breaks narrow tables.
LONG_UNION = "Confederation of Independent Trade Unions of Kazakhstan, Almaty branch"


@dataclass
class Site:
    base: str
    ids: dict[str, Any] = field(default_factory=dict)


Visit = str | Callable[[Page, Site, str], int]


def _import_demo(session: Any, name: str, **overrides: Any) -> Any:
    raw = yaml.safe_load((paths.demo_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    raw.update(overrides)
    appeal, _ = appeals.save_appeal(
        session,
        data=AppealIn.model_validate(raw),
        directory=paths.letter_templates_dir(),
        by="test",
    )
    return appeal


def _seed(url: str, tmp: Path) -> dict[str, Any]:
    """Both demo appeals (the second moderated) and a draft, with letters in every state
    a page shows, two organisers and two API tokens."""
    settings = make_settings(url, tmp)
    ids: dict[str, Any] = {}
    sessions = session_factory(engine_for(url))
    with session_scope(sessions) as session:
        almaty = _import_demo(session, "almaty-coach-factory", organisations=ORGANISATIONS)
        kz = _import_demo(
            session, "kazakhstan-union-activists", organisations=ORGANISATIONS, moderation=True
        )
        plan = make_appeal(session, slug="plan", title="Free them: a draft", status="draft")
        session.commit()
        sent = signed(
            session,
            almaty,
            settings,
            org="unite",
            email="ada@example.net",
            organisation=LONG_UNION,
            copy_to_me=True,
        )
        signed(
            session,
            almaty,
            settings,
            email="anna@example.net",
            name="Анна Пример",
            country="KZ",
            city="Алматы",
            language="ru",
        )
        held = [
            signed(
                session,
                kz,
                settings,
                org="unite" if i != 1 else "gmb",
                email=f"held{i}@example.net",
                name=f"Held Example {i}",
                organisation=LONG_UNION if i == 0 else "Example Union",
                language="ru" if i == 1 else "en",
                message=message,
            )
            for i, message in enumerate(
                [
                    "Hands off the strike committee!",
                    "Свободу профсоюзам! " * 12,
                    "We stand with Zhanartu.",
                ]
            )
        ]
        rejected = signed(
            session,
            kz,
            settings,
            org="unite",
            email="rejected@example.net",
            message="Something the organisers would not send",
        )
        moderation.reject(
            session,
            letter=rejected,
            settings=settings,
            now=utcnow(),
            by="admin",
            reason="Please sign again without the insult in the second sentence.",
        )
        samples.send_samples(
            session, appeal=plan, to="admin@example.org", settings=settings, now=utcnow()
        )
        session.commit()
        drain(settings)
        signed(session, almaty, settings, org="unite", email="fails@example.net")
        fail_deliveries(settings, reply="550 5.1.1 <president@example.org>: mailbox unavailable")
        pending = sign(session, almaty, settings, org="unite", email="pending@example.net")
        unite = organisers.get_organisation(session, "unite")
        organisers.add_organiser(session, email="admin@example.org", password=PASSWORD)
        organisers.add_organiser(
            session, email="unite@example.org", password=PASSWORD, organisation=unite
        )
        token, _ = organisers.create_token(
            session, organisation=None, name="Weekly report", by="test"
        )
        organisers.create_token(session, organisation=unite, name="Unite's spreadsheet", by="test")
        invitation = invitations.invite(
            session,
            email="new-officer@example.org",
            organisation=unite,
            language="en",
            settings=settings,
            now=utcnow(),
            by="admin@example.org",
        )
        session.commit()
        ids.update(
            sent=f"{sent.public_id}?key={sent.key}",
            rejected=f"{rejected.public_id}?key={rejected.key}",
            held=f"{held[1].public_id}?key={held[1].key}",
            pending=f"{pending.public_id}?key={pending.key}",
            confirm=confirm_token(settings, pending),
            confirmed=confirm_token(settings, sent),
            token=token.id,
            invitation=invitations.token_of(settings, invitation),
            unite_organiser=accounts.find_organiser(session, "unite@example.org").id,
        )
    dispose_engine(url)
    return ids


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("pages")
    path = tmp / "outcry.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    ids = _seed(url, tmp)
    env = outcry_env(database_url=url, secret_key=SECRET, outbox_dir=str(tmp / "outbox"))
    with serving(env, tmp) as base:
        yield Site(base=base, ids=ids)


Visitor = Callable[[str, str], Page]


@pytest.fixture(scope="module")
def visitor(browser: Browser, site: Site) -> Iterator[Visitor]:
    """visitor(who, width): one page per kind of visitor and screen width, made on first
    use (logging in once), then reused."""
    contexts: list[BrowserContext] = []
    pages: dict[tuple[str, str], Page] = {}

    def get(who: str, width: str) -> Page:
        if (who, width) not in pages:
            phone = width == "phone"
            context = browser.new_context(
                viewport={"width": WIDTHS[width], "height": 844 if phone else 900},
                is_mobile=phone,
                has_touch=phone,
                locale="en-GB",  # pages opened without ?lang= are in English
            )
            # axe-core (axe.min.js from axe-playwright-python) loads with every page.
            context.add_init_script(script=AXE_SCRIPT)
            contexts.append(context)
            page = context.new_page()
            if who != "supporter":
                page.goto(f"{site.base}/login")
                page.fill("#f-email", f"{who}@example.org")
                page.fill("#f-password", PASSWORD)
                page.click("form.sign-form button[type=submit]")
                page.wait_for_url("**/dashboard")
            pages[who, width] = page
        return pages[who, width]

    yield get
    for context in contexts:
        context.close()


def _submit(
    page: Page,
    url: str,
    fields: dict[str, str],
    form: str = "form.sign-form",
    button: str = "button[type=submit]",
) -> int:
    """Open `url`, fill in `fields` (selector: value; a <select> gets the option) and send
    the form with its `button`: the HTTP status of the page that answers."""
    page.goto(url)
    for selector, value in fields.items():
        if page.locator(selector).evaluate("e => e.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    with page.expect_navigation() as nav:
        page.click(f"{form} {button}")
    return nav.value.status if nav.value else 0


def _sign_with_error(page: Page, site: Site, lang: str) -> int:
    """The signing form sent back with an address the server refuses."""
    return _submit(
        page,
        f"{site.base}/a/almaty-coach-factory?lang={lang}",
        {"#f-name": "Анна Пример", "#f-email": "anna@localhost", "#f-country": "KZ"},
    )


def _sign(page: Page, site: Site, lang: str) -> int:
    """The page after signing: check your e-mail."""
    return _submit(
        page,
        f"{site.base}/a/kazakhstan-union-activists?org=gmb&lang={lang}",
        {
            "#f-name": "Bo Example",
            "#f-email": f"bo-{lang}@example.net",
            "#f-country": "GB",
            "#f-organisation": LONG_UNION,
        },
    )


def _new_token(page: Page, site: Site, lang: str) -> int:
    """The account page showing a token just made (once, in full)."""
    return _submit(
        page,
        f"{site.base}/dashboard/account?lang={lang}",
        {"#f-token-name": "Phone check"},
        form="#tokens form.sign-form",
    )


def _editor_with_errors(page: Page, site: Site, lang: str) -> int:
    """The editor sent back with an error by its field: a fax number that is not one."""
    return _submit(
        page,
        f"{site.base}/dashboard/almaty-coach-factory/edit?lang={lang}",
        {"#f-targets-0-fax": "727 000"},
        form="form.editor-form",
        button="#save-button",
    )


def _editor_preview(page: Page, site: Site, lang: str) -> int:
    """The editor showing the letter as each target receives it, in each language."""
    return _submit(
        page,
        f"{site.base}/dashboard/plan/edit?lang={lang}",
        {},
        form="form.editor-form",
        button="#preview-button",
    )


SUPPORTER_PAGES: dict[str, Visit] = {
    "appeals": "/",
    "appeal": "/a/almaty-coach-factory",
    "appeal-through-a-union": "/a/kazakhstan-union-activists?org=unite",
    "form-with-errors": _sign_with_error,
    "signed": _sign,
    "confirm": "/confirm/{confirm}",
    "confirmed-already": "/confirm/{confirmed}",
    "letter-sent": "/letters/{sent}",
    "letter-rejected": "/letters/{rejected}",
    "letter-pending": "/letters/{pending}",
    "letter-held": "/letters/{held}",
    "not-found": "/a/no-such-appeal",
    "login": "/login",
    "invitation": "/invitations/{invitation}",
}
ORGANISER_PAGES: dict[str, Visit] = {
    "dashboard": "/dashboard",
    "appeal-figures": "/dashboard/almaty-coach-factory",
    "moderated-figures": "/dashboard/kazakhstan-union-activists",
    "moderation": "/dashboard/kazakhstan-union-activists/moderation",
    "draft-test-sends": "/dashboard/plan",
    "account": "/dashboard/account",
    "new-token": _new_token,
    "revoke-token": "/dashboard/tokens/{token}/revoke",
    "new-appeal": "/dashboard/appeals/new",
    "editor-with-errors": _editor_with_errors,
    "editor-preview": _editor_preview,
    "close-appeal": "/dashboard/almaty-coach-factory/status?to=close",
    "audit": "/dashboard/audit",
    "organisers": "/dashboard/account/organisers",
    "remove-organiser": "/dashboard/account/organisers/{unite_organiser}/remove",
}
# What a union's login may not open (the admin's own pages).
ADMIN_ONLY = {
    "draft-test-sends",
    "new-token",
    "revoke-token",
    "new-appeal",
    "editor-with-errors",
    "editor-preview",
    "close-appeal",
    "organisers",
    "remove-organiser",
}
EXPECTED_STATUS = {
    "not-found": 404,
    "form-with-errors": 422,
    "signed": 201,
    "new-token": 201,
    "editor-with-errors": 422,
}


def check(page: Page, site: Site, label: str, name: str, lang: str, width: str) -> None:
    """Open one page and check it: the status expected, its language, its width, axe."""
    visit = {**SUPPORTER_PAGES, **ORGANISER_PAGES}[name]
    if callable(visit):
        status = visit(page, site, lang)
    else:
        target = visit.format(**site.ids)
        joiner = "&" if "?" in target else "?"
        response = page.goto(f"{site.base}{target}{joiner}lang={lang}")
        status = response.status if response else 0
    assert status == EXPECTED_STATUS.get(name, 200), f"{label}: HTTP {status}"
    assert page.locator("html").get_attribute("lang") == lang
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOTS}/{label}-{lang}-{width}.png", full_page=True)

    # What sticks out past the right edge, to name it when the page is too wide.
    overflow = page.evaluate(
        """(width) => ({
            width: document.documentElement.scrollWidth,
            culprits: [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > width + 1)
                .slice(-5)
                .map(e => `${e.tagName}.${e.className}: ${e.textContent.trim().slice(0, 40)}`),
        })""",
        WIDTHS[width],
    )
    assert overflow["width"] <= WIDTHS[width], f"{label} ({lang}, {width}) is too wide: {overflow}"

    violations = page.evaluate("() => axe.run({resultTypes: ['violations']})")["violations"]
    blocking = [
        f"{v['impact']} {v['id']}: {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in violations
        if v["impact"] in BLOCKING
    ]
    assert not blocking, f"{label} ({lang}, {width}):\n" + "\n".join(blocking)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", list(SUPPORTER_PAGES))
def test_supporters_pages(site: Site, visitor: Visitor, name: str, lang: str, width: str) -> None:
    check(visitor("supporter", width), site, name, name, lang, width)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    ("who", "name"),
    [("admin", name) for name in ORGANISER_PAGES]
    + [("unite", name) for name in ORGANISER_PAGES if name not in ADMIN_ONLY],
)
def test_organisers_pages(
    site: Site, visitor: Visitor, who: str, name: str, lang: str, width: str
) -> None:
    check(visitor(who, width), site, f"{who}-{name}", name, lang, width)


# What the checks above cannot see: each thing the issue found, measured in the browser.


@pytest.mark.parametrize("width", list(WIDTHS))
def test_addresses_stay_whole(site: Site, visitor: Visitor, width: str) -> None:
    """The deliveries on a supporter's letter page: each address on one line of its own
    (it was broken every few characters, and mid-word on a desktop)."""
    page = visitor("supporter", width)
    page.goto(f"{site.base}/letters/{site.ids['sent']}")
    lines = page.eval_on_selector_all(
        "td.recipients .address",
        """els => els.map(e => ({text: e.textContent,
            lines: Math.round(e.getBoundingClientRect().height
                              / parseFloat(getComputedStyle(e).lineHeight))}))""",
    )
    assert {x["text"] for x in lines} >= {"president@example.org", "strike-committee@example.org"}
    assert all(x["lines"] == 1 for x in lines), lines
    table = page.locator("table.stack").bounding_box()
    assert table is not None
    assert table["x"] + table["width"] <= WIDTHS[width]


def test_chart_words_are_readable_on_a_phone(site: Site, visitor: Visitor) -> None:
    page = visitor("admin", "phone")
    page.goto(f"{site.base}/dashboard/almaty-coach-factory")
    texts = page.eval_on_selector_all(
        "svg.chart text",
        "els => els.map(e => ({text: e.textContent, size: e.getBoundingClientRect().height}))",
    )
    assert len(texts) >= 5
    assert min(t["size"] for t in texts) >= 12, texts  # CSS pixels on a 390 px screen
    numbers = [t["text"] for t in texts if t["text"][0].isdigit() and "-" not in t["text"]]
    assert numbers
    assert all(n.isdigit() for n in numbers), numbers  # no 0.5 or 2.5 letters


def test_declined_letter_is_not_in_success_green(site: Site, visitor: Visitor) -> None:
    page = visitor("supporter", "desktop")
    page.goto(f"{site.base}/confirm/{site.ids['confirmed']}")  # good news: "confirmed"
    green = page.eval_on_selector(".notice", "e => getComputedStyle(e).backgroundColor")
    page.goto(f"{site.base}/letters/{site.ids['rejected']}")
    notice = page.locator(".notice", has_text="decided not to send")
    assert notice.evaluate("e => getComputedStyle(e).backgroundColor") != green


def test_moderation_cards_have_no_bullets(site: Site, visitor: Visitor) -> None:
    page = visitor("admin", "desktop")
    page.goto(f"{site.base}/dashboard/kazakhstan-union-activists/moderation")
    styles = page.eval_on_selector_all(
        ".moderation-list > li", "els => els.map(e => getComputedStyle(e).listStyleType)"
    )
    assert styles == ["none"] * 3


def test_revoke_on_a_phone_asks_first(site: Site, visitor: Visitor) -> None:
    """Without JavaScript: Revoke is on screen, leads to a page that asks, and only the
    button there revokes."""
    page = visitor("admin", "phone")
    account = f"{site.base}/dashboard/account"
    _submit(page, account, {"#f-token-name": "To be revoked"}, form="#tokens form.sign-form")
    page.goto(account)
    row = page.locator("tr", has_text="To be revoked")
    link = row.get_by_role("link", name=re.compile("^Revoke"))
    box = link.bounding_box()
    assert box is not None
    assert 0 <= box["x"]
    assert box["x"] + box["width"] <= WIDTHS["phone"]
    link.click()
    assert page.get_by_role("heading", name="Revoke this token?").is_visible()
    page.go_back()
    assert page.locator("tr", has_text="To be revoked").count() == 1  # asking revoked nothing
    page.locator("tr", has_text="To be revoked").get_by_role("link").click()
    page.get_by_role("button", name="Revoke the token").click()
    assert "done=token-revoked" in page.url
    assert page.locator("tr", has_text="To be revoked").count() == 0
