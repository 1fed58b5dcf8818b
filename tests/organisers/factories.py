"""Organisations, tokens, logins and letters in every state, for the organisers' tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import Appeal, Letter
from app.organisers import service as organisers
from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import confirm, sign
from tests.support.smtp import Handler, SmtpSink

PASSWORD = "correct horse battery"
ORGANISATIONS = [
    {"slug": "unite", "name": "Unite the Union"},
    {"slug": "gmb", "name": "GMB"},
]


@dataclass
class World:
    """An appeal two unions take part in, a third union that does not, and who may ask."""

    appeal: Appeal
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return self.headers[who]


def make_world(session: Session, *, accounts: bool = False, **appeal_overrides: Any) -> World:
    """The appeal `free-them` with unite and gmb taking part; tokens for admin, unite, gmb
    and rmt (not taking part); with `accounts`, the organisers admin@… and unite@… (argon2
    takes most of a second a hash here, so only tests that log in ask for them)."""
    appeal = make_appeal(session, organisations=ORGANISATIONS, **appeal_overrides)
    rmt = organisers.ensure_organisation(session, slug="rmt", name="RMT")
    unite = organisers.get_organisation(session, "unite")
    gmb = organisers.get_organisation(session, "gmb")
    world = World(appeal=appeal)
    for name, org in (("admin", None), ("unite", unite), ("gmb", gmb), ("rmt", rmt)):
        _, raw = organisers.create_token(session, organisation=org, name=name, by="test")
        world.headers[name] = {"Authorization": f"Bearer {raw}"}
    world.headers["none"] = {}
    world.headers["bad"] = {"Authorization": "Bearer oc_not-a-real-token"}
    if accounts:
        organisers.add_organiser(session, email="admin@example.org", password=PASSWORD)
        organisers.add_organiser(
            session, email="unite@example.org", password=PASSWORD, organisation=unite
        )
    session.commit()
    return world


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log `client` in through the form; returns the session's CSRF token."""
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/dashboard")
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text
    return csrf.group(1)


def signed(
    session: Session, appeal: Appeal, settings: Settings, *, org: str | None = None, **fields: Any
) -> Letter:
    """A letter signed (through `org`'s link) and confirmed; held if the appeal moderates."""
    letter = sign(session, appeal, settings, org=org, **fields)
    if appeal.require_confirmation:
        letter = confirm(session, letter, settings)
    session.commit()
    return letter


def fail_deliveries(settings: Settings, reply: str = "554 5.7.1 Refused by policy") -> None:
    """Deliver what is due through an SMTP server that refuses every message."""
    handler = Handler(on_data=lambda _rcpts: reply)
    with SmtpSink(handler) as sink:
        drain(
            make_settings(
                settings.database_url,
                settings.outbox_dir.parent,
                smtp_url=sink.url,
            )
        )
