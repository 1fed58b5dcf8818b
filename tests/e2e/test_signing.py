"""Sign in a browser, confirm from the e-mail, and find the letter in the target's mailbox."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser
from sqlalchemy import select

from app.core import paths
from app.core.db import engine_for, session_factory, session_scope
from app.models import Letter
from tests.conftest import _truncate
from tests.support.browser import click_and_load
from tests.support.processes import outcry, outcry_env, run_outcry, serving, stop, wait_http
from tests.support.smtp import Received, SmtpSink, free_port

pytestmark = pytest.mark.e2e

DEMO = paths.demo_dir() / "almaty-coach-factory.yaml"


def confirm_url(received: Received) -> str:
    body = received.message.get_body(("plain",))
    assert body is not None
    match = re.search(r"(http://\S+/confirm/\S+)", body.get_content())
    assert match, body.get_content()
    return match.group(1)


def test_browser_sign_confirm_deliver(browser: Browser, tmp_path: Path) -> None:
    """`outcry serve` on embedded defaults with SMTP: the whole journey, no JavaScript needed."""
    port = free_port()
    with SmtpSink() as sink:
        env = outcry_env(
            database_url=f"sqlite:///{tmp_path / 'outcry.db'}",
            smtp_url=sink.url,
            base_url=f"http://127.0.0.1:{port}",
            secret_key="e2e-secret",
        )
        assert run_outcry("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        imported = run_outcry("appeal", "import", str(DEMO), env=env, cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        log = tmp_path / "serve.log"
        proc = outcry("serve", "--port", str(port), env=env, cwd=tmp_path, log=log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", proc, log)
            context = browser.new_context(java_script_enabled=False, locale="en-GB")
            page = context.new_page()
            page.goto(f"{base}/a/almaty-coach-factory")
            page.fill("#f-name", "Ada Example")
            page.fill("#f-email", "ada@example.net")
            page.select_option("#f-country", "GB")
            page.fill("#f-organisation", "Unite the Union")
            page.fill("#f-message", "Hands off the strike committee! {{ 7*7 }}")
            page.check("#f-notify_replies")
            click_and_load(page, "button[type=submit]")
            assert "ada@example.net" in page.content()
            page.screenshot(path=str(tmp_path / "signed.png"))

            [confirmation] = sink.wait_for(1)
            assert confirmation.rcpt_tos == ["ada@example.net"]
            page.goto(confirm_url(confirmation))
            assert "Hands off the strike committee!" in page.content()
            click_and_load(page, "button[type=submit]")
            assert page.locator("a.button[href^='/letters/']").count() == 1

            received = sink.wait_for(2)[1]
            assert sorted(received.rcpt_tos) == sorted(
                ["president@example.org", "solidarity@example.org", "strike-committee@example.org"]
            )
            msg = received.message
            assert msg["From"].addresses[0].display_name.startswith("Ada Example via ")
            assert msg["From"].addresses[0].addr_spec == "letters@localhost"
            assert msg["Reply-To"] is None  # share_email was not ticked
            assert [a.addr_spec for a in msg["To"].addresses] == ["president@example.org"]
            assert re.fullmatch(r"<outcry\.letter\.[\w-]+\.[\w-]+@localhost>", msg["Message-ID"])
            text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "Hands off the strike committee! {{ 7*7 }}" in text
            assert "Ada Example" in text
            with session_scope(session_factory(engine_for(env["OUTCRY_DATABASE_URL"]))) as db:
                assert db.scalar(select(Letter.notify_replies)) is True  # asked to hear back
            context.close()
        finally:
            stop(proc)


def test_form_errors_keep_what_was_typed(browser: Browser, tmp_path: Path) -> None:
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'outcry.db'}", secret_key="x")
    assert run_outcry("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    assert run_outcry("appeal", "import", str(DEMO), env=env, cwd=tmp_path).returncode == 0
    with serving(env, tmp_path) as base:
        page = browser.new_page(java_script_enabled=False)
        page.goto(f"{base}/a/almaty-coach-factory?lang=ru")
        page.fill("#f-name", "Анна Пример")
        # Valid to the browser's own check, refused by email-validator: the server decides.
        page.fill("#f-email", "anna@localhost")
        page.select_option("#f-country", "KZ")
        click_and_load(page, "button[type=submit]")
        assert page.locator("[role=alert]").count() >= 1
        assert page.input_value("#f-name") == "Анна Пример"
        assert page.input_value("#f-email") == "anna@localhost"
        assert page.locator("#f-email[aria-invalid=true]").count() == 1
        assert "Казахстан" in page.content()
        page.close()


def test_worker_delivers_through_redis(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    """`outcry serve` with a broker enqueues; a real `outcry worker` process delivers."""
    _truncate(pg_url)
    with SmtpSink() as sink:
        env = outcry_env(
            database_url=pg_url,
            broker_url=redis_url,
            smtp_url=sink.url,
            secret_key="e2e-secret",
        )
        imported = run_outcry("appeal", "import", str(DEMO), env=env, cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        worker = outcry(
            "worker", "--concurrency", "1", env=env, cwd=tmp_path, log=tmp_path / "worker.log"
        )
        try:
            with serving(env, tmp_path) as base:
                created = httpx.post(
                    f"{base}/api/v1/appeals/almaty-coach-factory/letters",
                    json={
                        "name": "Bo Example",
                        "email": "bo@example.net",
                        "country": "KZ",
                        "share_email": True,
                        "language": "ru",
                    },
                )
                assert created.status_code == 202, created.text
                [confirmation] = sink.wait_for(1, timeout=60)
                token = confirm_url(confirmation).rsplit("/", 1)[1]
                confirmed = httpx.post(f"{base}/api/v1/letters/confirm", json={"token": token})
                assert confirmed.status_code == 200
                letter_msg = sink.wait_for(2, timeout=60)[1].message
                assert letter_msg["Reply-To"].addresses[0].addr_spec == "bo@example.net"
                assert letter_msg["Content-Language"] == "ru"
                status = httpx.get(
                    created.json()["status_url"].replace("http://127.0.0.1:8000", base)
                )
                deadline_ok = status.json()["status"] in ("queued", "sent")
                assert deadline_ok
        finally:
            stop(worker)
        assert "delivery.send" in (tmp_path / "worker.log").read_text()
