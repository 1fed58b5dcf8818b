"""Accounts after they are made: change and reset passwords, remove organisers, revoke tokens,
through the service, the account page and the command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import auth, i18n
from app.core.config import Settings
from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.core.errors import InvalidInput, InvalidLogin, NotFound, Unauthorized
from app.main import create_app
from app.models import ApiToken, LoginSession, Organiser, utcnow
from app.organisers import accounts
from app.organisers import service as organisers
from tests.organisers.factories import PASSWORD, log_in, make_world
from tests.support.processes import outcry_env, run_outcry

NEW_PASSWORD = "a different long password"


def organiser(session: Session, email: str) -> Organiser:
    return accounts.find_organiser(session, email)


def logins(session: Session, who: Organiser) -> int:
    count = select(func.count()).where(LoginSession.organiser_id == who.id)
    return int(session.scalar(count) or 0)


# --- the service -----------------------------------------------------------------------------


def test_change_password_checks_each_field_and_ends_other_sessions(session: Session) -> None:
    make_world(session, accounts=True)
    keep = organisers.log_in(session, email="unite@example.org", password=PASSWORD, now=utcnow())
    organisers.log_in(session, email="unite@example.org", password=PASSWORD, now=utcnow())
    unite = organiser(session, "unite@example.org")
    assert logins(session, unite) == 2

    def change(current: str, new: str, repeat: str) -> dict[str, str]:
        with pytest.raises(InvalidInput) as refused:
            accounts.change_password(
                session, unite, current=current, new=new, repeat=repeat, keep=keep
            )
        return refused.value.codes

    assert change("wrong password!", NEW_PASSWORD, NEW_PASSWORD) == {
        "current_password": "wrong_password"
    }
    assert change(PASSWORD, "short", "short") == {"new_password": "password_too_short"}
    assert change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x") == {
        "repeat_password": "password_mismatch"
    }
    assert change("wrong password!", "short", "other") == {
        "current_password": "wrong_password",
        "new_password": "password_too_short",
    }  # every problem at once, so the form is put right in one go
    assert logins(session, unite) == 2  # nothing changed by a refusal

    ended = accounts.change_password(
        session, unite, current=PASSWORD, new=NEW_PASSWORD, repeat=NEW_PASSWORD, keep=keep
    )
    assert ended == 1
    assert logins(session, unite) == 1
    with pytest.raises(InvalidLogin):
        organisers.log_in(session, email="unite@example.org", password=PASSWORD, now=utcnow())
    organisers.log_in(session, email="unite@example.org", password=NEW_PASSWORD, now=utcnow())


def test_reset_and_remove_end_every_session(session: Session) -> None:
    make_world(session, accounts=True)
    organisers.log_in(session, email="admin@example.org", password=PASSWORD, now=utcnow())
    admin = organiser(session, "ADMIN@example.org")  # found as stored: case-folded
    assert accounts.set_password(session, admin, NEW_PASSWORD) == 1
    assert logins(session, admin) == 0
    organisers.log_in(session, email="admin@example.org", password=NEW_PASSWORD, now=utcnow())

    accounts.remove_organiser(session, admin, by="test", last_admin_ok=True)
    assert session.scalar(select(func.count()).select_from(LoginSession)) == 0
    with pytest.raises(InvalidLogin):
        organisers.log_in(session, email="admin@example.org", password=NEW_PASSWORD, now=utcnow())
    with pytest.raises(NotFound):
        accounts.find_organiser(session, "admin@example.org")
    assert [o.email for o in accounts.list_organisers(session)] == ["unite@example.org"]


def test_a_revoked_token_is_refused(session: Session) -> None:
    make_world(session)
    token, raw = organisers.create_token(session, organisation=None, name="reporting", by="test")
    assert auth.authenticate(session, raw, now=utcnow()).id == token.id
    assert "reporting" in [t.name for t in accounts.list_tokens(session)]
    accounts.revoke_token(session, token.id, by="test")
    with pytest.raises(Unauthorized):
        auth.authenticate(session, raw, now=utcnow())
    with pytest.raises(NotFound):
        accounts.revoke_token(session, token.id, by="test")


# --- the account page ------------------------------------------------------------------------


def account_form(page: str) -> str:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf, page
    return csrf.group(1)


def test_changing_the_password_on_the_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    make_world(session, accounts=True)
    with TestClient(create_app(settings, deliver_in_process=False)) as elsewhere:
        log_in(elsewhere, "unite@example.org")
        csrf = log_in(client, "unite@example.org")
        page = client.get("/dashboard/account")
        assert page.status_code == 200
        assert "unite@example.org" in page.text
        assert 'id="tokens"' not in page.text  # a union's organiser manages no tokens

        wrong = client.post(
            "/dashboard/account/password?lang=ru",
            data={
                "csrf_token": csrf,
                "current_password": "not my password",
                "new_password": NEW_PASSWORD,
                "repeat_password": NEW_PASSWORD,
            },
        )
        assert wrong.status_code == 422
        ru = i18n.translations("ru")
        assert ru.gettext("This is not your current password.") in wrong.text
        assert 'id="f-current_password-error"' in wrong.text

        no_csrf = client.post(
            "/dashboard/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "repeat_password": NEW_PASSWORD,
            },
        )
        assert no_csrf.status_code == 403

        done = client.post(
            "/dashboard/account/password",
            data={
                "csrf_token": csrf,
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "repeat_password": NEW_PASSWORD,
            },
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/dashboard/account?done=password-changed"
        assert client.get("/dashboard").status_code == 200  # this browser stays logged in
        assert elsewhere.get("/dashboard").status_code == 401  # the other one is logged out
    log_in(client, "unite@example.org", NEW_PASSWORD)


def test_an_admin_creates_and_revokes_tokens_on_the_page(
    client: TestClient, session: Session
) -> None:
    make_world(session, accounts=True)
    csrf = log_in(client, "admin@example.org")
    made = client.post(
        "/dashboard/tokens",
        data={
            "csrf_token": csrf,
            "name": "Unite's reporting\r\nX-Evil: 1",
            "organisation": "unite",
        },
    )
    assert made.status_code == 201
    raw = re.search(
        r'<div class="notice ok" role="status" id="new-token">.*?'
        r'<code class="secret">([^<]+)</code>',
        made.text,
        re.S,
    )
    assert raw, made.text
    token = raw.group(1)
    # One line: the CR LF became a space.
    stored = session.scalar(select(ApiToken).where(ApiToken.name == "Unite's reporting X-Evil: 1"))
    assert stored is not None
    assert stored.organisation is not None
    assert stored.organisation.slug == "unite"
    assert token not in client.get("/dashboard/account").text  # shown that once only

    api = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/appeals/free-them/stats", headers=api).status_code == 200
    # Revoke on the account page is a link to a page that asks first; opening it
    # revokes nothing.
    account = client.get("/dashboard/account").text
    assert f'href="/dashboard/tokens/{stored.id}/revoke?lang=en"' in account
    assert f'action="/dashboard/tokens/{stored.id}/revoke' not in account
    asked = client.get(f"/dashboard/tokens/{stored.id}/revoke")
    assert asked.status_code == 200
    assert "Revoke this token?" in asked.text
    assert "Unite&#39;s reporting X-Evil: 1" in asked.text
    form = f'<form method="post" action="/dashboard/tokens/{stored.id}/revoke?lang=en"'
    assert form in asked.text
    assert client.get("/api/v1/appeals/free-them/stats", headers=api).status_code == 200
    assert client.get("/dashboard/tokens/99999/revoke").status_code == 404
    revoked = client.post(
        f"/dashboard/tokens/{stored.id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert client.get("/api/v1/appeals/free-them/stats", headers=api).status_code == 401

    unknown_union = client.post(
        "/dashboard/tokens", data={"csrf_token": csrf, "name": "x", "organisation": "nobody"}
    )
    assert unknown_union.status_code == 404


def test_the_account_page_is_for_people_who_log_in(client: TestClient, session: Session) -> None:
    world = make_world(session)
    assert client.get("/dashboard/account", headers=world.auth("admin")).status_code == 403
    assert client.get("/dashboard/account", headers=world.auth("none")).status_code == 401


# --- the command line ------------------------------------------------------------------------


def test_organiser_and_token_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outcry.db'}"
    env = outcry_env(database_url=url, secret_key="cli-secret")
    with_password = env | {"OUTCRY_ORGANISER_PASSWORD": PASSWORD}

    def outcry(*args: str, environment: dict[str, str] = env) -> str:
        done = run_outcry(*args, env=environment, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    outcry("db", "upgrade")
    outcry("organiser", "add", "boss@example.org", environment=with_password)
    outcry(
        "organiser", "add", "rep@example.org", "--organisation", "unite", environment=with_password
    )
    listed = outcry("organiser", "list").splitlines()
    assert [line.split("\t")[:2] for line in listed] == [
        ["boss@example.org", "admin"],
        ["rep@example.org", "unite"],
    ]
    raw = outcry("token", "create", "--organisation", "unite", "--name", "reports").strip()
    try:
        with session_scope(session_factory(engine_for(url))) as session:
            rep = accounts.find_organiser(session, "rep@example.org")
            organisers.log_in(session, email="rep@example.org", password=PASSWORD, now=utcnow())
            token_id = auth.authenticate(session, raw, now=utcnow()).id
            assert logins(session, rep) == 1
    finally:
        dispose_engine(url)
    [line] = outcry("token", "list").splitlines()
    assert line.startswith(f"{token_id}\tunite\treports\tcreated ")
    assert "last used 20" in line

    reset = outcry(
        "organiser", "password", "rep@example.org",
        environment=env | {"OUTCRY_ORGANISER_PASSWORD": NEW_PASSWORD},
    )  # fmt: skip
    assert reset.strip() == "password set for rep@example.org; 1 login session(s) ended"
    assert outcry("token", "revoke", str(token_id)).strip() == f"revoked token {token_id}"
    assert outcry("token", "list") == ""
    assert outcry("organiser", "remove", "rep@example.org").strip() == (
        "removed organiser rep@example.org"
    )
    try:
        with session_scope(session_factory(engine_for(url))) as session:
            with pytest.raises(Unauthorized):
                auth.authenticate(session, raw, now=utcnow())
            assert [o.email for o in accounts.list_organisers(session)] == ["boss@example.org"]
    finally:
        dispose_engine(url)

    missing = run_outcry("token", "revoke", "999", env=env, cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: no token 999"
    short = run_outcry(
        "organiser", "password", "boss@example.org",
        env=env | {"OUTCRY_ORGANISER_PASSWORD": "short"}, cwd=tmp_path,
    )  # fmt: skip
    assert short.returncode == 1
    assert "at least 12 characters" in short.stderr
