"""Purging a closed appeal: from the dashboard (admins, after a confirmation step, with
CSRF) and with `outcry purge`; every count stays, the supporters' details go."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.core.migrate import upgrade
from app.letters import privacy
from app.models import Appeal, AppealStatus, Letter, LetterStatus, utcnow
from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import sign
from tests.organisers.factories import PASSWORD, log_in, make_world
from tests.support.processes import outcry_env, run_outcry


def test_admins_purge_a_closed_appeal_from_the_dashboard(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, accounts=True, require_confirmation=False)
    for n, org in enumerate(["unite", "gmb", None]):
        sign(session, world.appeal, settings, email=f"s{n}@example.net", org=org, country="KZ")
    session.commit()
    drain(settings)
    stats = "/api/v1/appeals/free-them/stats"
    admin = world.auth("admin")

    csrf = log_in(client, "admin@example.org")
    assert 'id="purge"' not in client.get("/dashboard/free-them").text  # open: not yet
    assert client.post("/dashboard/free-them/purge", data={"csrf_token": csrf}).status_code == 409

    world.appeal.status = AppealStatus.closed
    session.commit()
    before = client.get(stats, headers=admin).json()
    assert 'id="purge"' in client.get("/dashboard/free-them").text
    ask = client.get("/dashboard/free-them/purge")
    assert ask.status_code == 200
    assert "of 3 letters will be erased" in ask.text
    assert client.post("/dashboard/free-them/purge").status_code == 403  # no CSRF token
    done = client.post(
        "/dashboard/free-them/purge", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert "erased from 3 letters" in client.get(done.headers["location"]).text
    assert client.get(stats, headers=admin).json() == before
    session.expire_all()
    assert set(session.scalars(select(Letter.signer_name))) == {""}
    csv = client.get("/api/v1/appeals/free-them/letters.csv", headers=admin).text
    assert "example.net" not in csv


def test_a_union_may_not_purge(client: TestClient, session: Session) -> None:
    make_world(session, accounts=True, status="closed")
    csrf = log_in(client, "unite@example.org", PASSWORD)
    assert client.get("/dashboard/free-them/purge").status_code == 403
    refused = client.post("/dashboard/free-them/purge", data={"csrf_token": csrf})
    assert refused.status_code == 403


def test_outcry_purge(tmp_path: Path) -> None:
    """The command itself, as a process (the purge is tested on both databases above and
    in tests/letters/test_privacy.py)."""
    url = f"sqlite:///{tmp_path / 'outcry.db'}"
    env = outcry_env(database_url=url, secret_key="cli-secret")
    upgrade(url)
    settings = make_settings(url, tmp_path, secret_key="cli-secret")
    sessions = session_factory(engine_for(url))
    with session_scope(sessions) as session:
        appeal = make_appeal(session, require_confirmation=False)
        for n in range(2):
            sign(session, appeal, settings, email=f"p{n}@example.net")
    refused = run_outcry("purge", "--appeal", "free-them", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "not closed" in refused.stderr
    with session_scope(sessions) as session:
        session.execute(update(Appeal).values(status=AppealStatus.closed))
        session.execute(update(Letter).values(status=LetterStatus.sent))

    asked = run_outcry("purge", "--appeal", "free-them", env=env, cwd=tmp_path, input="n\n")
    assert asked.returncode == 1
    assert "2 letters would lose their supporters' names" in asked.stdout
    purged = run_outcry("purge", "--appeal", "free-them", "--yes", env=env, cwd=tmp_path)
    assert purged.returncode == 0, purged.stderr
    assert "purged 2 letters of free-them" in purged.stdout
    with session_scope(sessions) as session:
        assert set(session.scalars(select(Letter.signer_email))) == {None}
    dispose_engine(url)


def test_exports_never_carry_erased_data(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, require_confirmation=False)
    erased = sign(session, world.appeal, settings, email="gone@example.net", name="Erased Person")
    sign(session, world.appeal, settings, email="kept@example.net", name="Kept Person")
    session.commit()
    drain(settings)
    privacy.erase(session, letter=erased, now=utcnow())
    later = utcnow() + timedelta(days=settings.forget_after_days + 1)
    privacy.forget_addresses(session, now=later, days=settings.forget_after_days)
    session.commit()
    admin = world.auth("admin")

    csv = client.get("/api/v1/appeals/free-them/letters.csv", headers=admin).text
    listed = client.get("/api/v1/appeals/free-them/letters", headers=admin).text
    for text in (csv, listed):
        assert "example.net" not in text
        assert "Erased Person" not in text
        assert "Kept Person" in text  # the letter as sent stays; only its address went
    archive = client.get("/api/v1/appeals/free-them/letters.zip", headers=admin)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as files:
        names = [n for n in files.namelist() if n.endswith(".pdf")]
    assert len(names) == 1  # nothing left to print of the erased letter
