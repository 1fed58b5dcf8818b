"""In a browser without JavaScript: withdraw a letter before it is sent, erase one's details
after it was; and the server's own log never names a supporter."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from app.core import paths
from tests.e2e.test_signing import confirm_url
from tests.support.browser import click_and_load
from tests.support.processes import outcry, outcry_env, run_outcry, stop, wait_http, wait_until
from tests.support.smtp import SmtpSink, free_port

pytestmark = pytest.mark.e2e

DEMO = paths.demo_dir() / "almaty-coach-factory.yaml"
SUPPORTERS = {
    "aigerim.withdraws@example.net": "Aigerim Withdrawova",
    "bota.erases@example.net": "Bota Erasova",
}


def sign(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/a/almaty-coach-factory")
    page.fill("#f-name", SUPPORTERS[email])
    page.fill("#f-email", email)
    page.select_option("#f-country", "KZ")
    click_and_load(page, "button[type=submit]")
    assert "Check your e-mail" in page.content()


def test_withdraw_and_erase_from_the_letter_page(browser: Browser, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with SmtpSink() as sink:
        env = outcry_env(
            database_url=f"sqlite:///{tmp_path / 'outcry.db'}",
            smtp_url=sink.url,
            base_url=base,
            secret_key="e2e-secret",
        )
        assert run_outcry("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        assert run_outcry("appeal", "import", str(DEMO), env=env, cwd=tmp_path).returncode == 0
        log = tmp_path / "serve.log"
        proc = outcry("serve", "--port", str(port), env=env, cwd=tmp_path, log=log)
        try:
            wait_http(f"{base}/healthz", proc, log)
            context = browser.new_context(java_script_enabled=False, locale="en-GB")
            page = context.new_page()

            # Withdraw before confirming: the letter never goes out.
            sign(page, base, "aigerim.withdraws@example.net")
            click_and_load(page, "a.button[href^='/letters/']")
            assert "Waiting for your confirmation" in page.content()
            click_and_load(page, "#withdraw")
            assert "Your letter is withdrawn. It will not be sent." in page.content()
            assert page.locator("#withdraw").count() == 0
            page.screenshot(path=str(tmp_path / "withdrawn.png"))

            # Sign, confirm, let it go out; then erase.
            sign(page, base, "bota.erases@example.net")
            wait_until(lambda: any("bota" in m.rcpt_tos[0] for m in sink.messages))
            [confirmation] = [m for m in sink.messages if m.rcpt_tos == ["bota.erases@example.net"]]
            text = confirmation.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "erased 30 days after your letter has been sent" in text
            page.goto(confirm_url(confirmation))
            click_and_load(page, "button[type=submit]")
            click_and_load(page, "a.button[href^='/letters/']")
            letter_page = page.url
            wait_until(lambda: any("president@example.org" in m.rcpt_tos for m in sink.messages))

            def sent() -> bool:
                page.goto(letter_page)
                return "cannot be recalled" in page.content()

            wait_until(sent)
            assert page.locator("#withdraw").count() == 0
            click_and_load(page, "#erase")
            assert "Erase your details?" in page.content()
            assert "The copy the targets received cannot be recalled" in page.content()
            click_and_load(page, "#erase-confirm")
            html = page.content()
            assert "Your details are erased." in html
            assert "Bota Erasova" not in html
            page.screenshot(path=str(tmp_path / "erased.png"))
            context.close()
        finally:
            stop(proc)

    # Nothing of the withdrawn letter reached the targets.
    targets = [m for m in sink.messages if "president@example.org" in m.rcpt_tos]
    assert len(targets) == 1
    assert "Bota Erasova" in targets[0].message["From"].addresses[0].display_name
    served = log.read_text()
    # The server logged its work (no request lines: they carry letters' keys), and
    # nobody's details.
    assert "Application startup complete" in served
    for email, name in SUPPORTERS.items():
        assert email not in served
        assert name not in served
