"""No log line carries a supporter's e-mail address or name, over a whole journey: sign
(form and API), confirm, deliver (one supporter's server refusing their address by
name), withdraw, erase, forget. Logged at INFO, as production runs, with the SQL too."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.db import engine_for, session_factory
from app.delivery import transports
from app.delivery.deliverer import Deliverer
from app.letters import privacy
from app.main import create_app
from app.models import utcnow
from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import form_data, signature
from tests.support.smtp import Handler, SmtpSink

SUPPORTERS = {
    "zhanna.form@example.net": "Zhanna Formova",
    "bolat.api@example.net": "Bolat Apiev",
    "refused.box@example.net": "Refusa Boxova",
    "dana.withdraws@example.net": "Dana Withdrawova",
}
# Our own test SMTP server's log is not Outcry's.
FOREIGN = ("mail.log",)


def refuse_one(address: str) -> str | None:
    if address == "refused.box@example.net":
        return "550 5.1.1 <refused.box@example.net>: Recipient address rejected (Refusa Boxova)"
    return None


def confirm_links(sink: SmtpSink) -> dict[str, str]:
    links = {}
    for received in sink.messages:
        found = re.search(r"http://testserver(/confirm/\S+)", received.data.decode())
        if found:
            links[received.rcpt_tos[0]] = found.group(1)
    return links


def test_no_log_line_names_a_supporter(
    caplog: pytest.LogCaptureFixture, session: Session, db_url: str, tmp_path: Path
) -> None:
    make_appeal(session)
    session.commit()
    handler = Handler(on_rcpt=refuse_one)
    with SmtpSink(handler) as sink:
        settings = make_settings(db_url, tmp_path, smtp_url=sink.url)
        caplog.set_level(logging.INFO)
        # SQLAlchemy keeps its own loggers at WARNING; an operator debugging turns them up.
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
        with TestClient(create_app(settings, deliver_in_process=False)) as client:
            emails = list(SUPPORTERS)
            form = form_data(client, email=emails[0], name=SUPPORTERS[emails[0]])
            assert client.post("/a/free-them", data=form).status_code == 201
            statuses = {}
            for email in emails[1:]:
                body = signature(email=email, name=SUPPORTERS[email], copy_to_me=True)
                created = client.post("/api/v1/appeals/free-them/letters", json=body)
                assert created.status_code == 202
                statuses[email] = created.json()["status_url"].removeprefix("http://testserver")
            drain(settings)
            links = confirm_links(sink)
            for email in emails[:2]:
                assert client.post(links[email]).status_code == 200
            drain(settings)
            withdraw = statuses["dana.withdraws@example.net"].replace("?key=", "/withdraw?key=")
            assert client.post(withdraw).status_code == 200
            erase = statuses["bolat.api@example.net"]
            assert client.delete(erase).status_code == 200
        # Weeks later the sweeper forgets.
        future = utcnow() + timedelta(days=settings.forget_after_days + 10)
        sessions = session_factory(engine_for(settings.database_url))
        Deliverer(
            sessions,
            transports.make_transport(settings),
            settings,
            clock=lambda: future,
            upkeep=privacy.upkeep,
        ).sweep()

    # The refusal was logged (by its status code), and so was the SQL.
    assert any(
        r.name == "app.delivery.deliverer" and "550" in r.getMessage() for r in caplog.records
    )
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)
    leaks = []
    for record in caplog.records:
        if record.name.startswith(FOREIGN):
            continue
        text = record.getMessage() + (record.exc_text or "")
        for email, name in SUPPORTERS.items():
            for secret in (email, email.split("@")[0], name, name.split()[1]):
                if secret in text:
                    leaks.append(f"{record.name}: {text[:200]}")
    assert not leaks, "\n".join(leaks)
