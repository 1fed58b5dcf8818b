"""Logging in and out, the session cookie, CSRF on every form, and who is who."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.errors import InvalidInput
from app.main import create_app
from app.models import LoginSession, Organiser, utcnow
from app.organisers import pages
from app.organisers import service as organisers
from app.organisers.pages import safe_next
from tests.conftest import make_settings
from tests.organisers.factories import PASSWORD, log_in, make_world

HTML = {"Accept": "text/html"}


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"outcry_session={value}"}


def login_token(client: TestClient) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert match
    return match.group(1)


def test_accounts_are_argon2_and_scoped(session: Session) -> None:
    make_world(session, accounts=True)
    admin = session.scalar(select(Organiser).where(Organiser.email == "admin@example.org"))
    union = session.scalar(select(Organiser).where(Organiser.email == "unite@example.org"))
    assert admin is not None
    assert union is not None
    assert admin.password_hash.startswith("$argon2")
    assert PASSWORD not in admin.password_hash
    assert admin.organisation_id is None
    assert union.organisation is not None
    assert union.organisation.slug == "unite"
    with pytest.raises(InvalidInput) as info:
        organisers.add_organiser(session, email="x@example.org", password="short")
    assert "password" in info.value.fields


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(
    client: TestClient, session: Session
) -> None:
    make_world(session, accounts=True)
    response = client.post(
        "/login",
        data={
            "email": "Admin@Example.org",
            "password": PASSWORD,
            "csrf_token": login_token(client),
            "next": "/dashboard/free-them",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/free-them"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("outcry_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # base_url is http:// in tests
    stolen = client.cookies.get("outcry_session")
    assert stolen

    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "admin@example.org" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf

    out = client.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303
    assert session.scalar(select(LoginSession)) is None
    # The cookie is gone from the browser, and a copy of it no longer works anywhere.
    assert client.get("/dashboard").status_code == 401
    assert client.get("/dashboard", headers=cookie_header(stolen)).status_code == 401


def test_cookie_is_secure_on_https(db_url: str, tmp_path: Path, session: Session) -> None:
    make_world(session, accounts=True)
    settings = make_settings(db_url, tmp_path, base_url="https://outcry.example.org")
    app = create_app(settings, deliver_in_process=False)
    with TestClient(app, base_url="https://outcry.example.org") as client:
        response = client.post(
            "/login",
            data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": ""}
            | {"csrf_token": login_token(client)},
            follow_redirects=False,
        )
    assert response.status_code == 303
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("outcry_session=") and "Secure" in c for c in cookies)


@pytest.mark.parametrize(
    ("email", "password"),
    [("admin@example.org", "wrong password!"), ("nobody@example.org", PASSWORD), ("x", "y")],
)
def test_wrong_login_is_401_with_the_same_answer(
    client: TestClient, session: Session, email: str, password: str
) -> None:
    make_world(session, accounts=True)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": login_token(client)},
        headers=HTML,
    )
    assert response.status_code == 401
    assert "The e-mail address or the password is wrong." in response.text
    assert "outcry_session" not in client.cookies


def test_login_without_its_csrf_token_is_refused(client: TestClient, session: Session) -> None:
    make_world(session)
    login_token(client)  # the cookie is set, but the form field is missing or forged
    for token in ("", "forged"):
        response = client.post(
            "/login", data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 403
        assert response.json()["error"] == "csrf"
    assert "outcry_session" not in client.cookies


def test_forms_are_refused_without_the_session_csrf_token(
    client: TestClient, session: Session
) -> None:
    make_world(session, accounts=True, moderation=True, require_confirmation=False)
    csrf = log_in(client, "admin@example.org")
    for path in ("/logout", "/dashboard/free-them/test-send"):
        assert client.post(path).status_code == 403
        assert client.post(path, data={"csrf_token": "x" * 64}).status_code == 403
    # The JSON API on the login cookie takes the token in a header.
    assert client.post("/api/v1/letters/nope/approve").status_code == 403
    assert (
        client.post("/api/v1/letters/nope/approve", headers={"X-CSRF-Token": csrf}).status_code
        == 404
    )
    # Reading needs no token.
    assert client.get("/api/v1/appeals/free-them/stats").status_code == 200


def test_a_bearer_header_is_judged_alone(client: TestClient, session: Session) -> None:
    make_world(session, accounts=True)
    log_in(client, "admin@example.org")
    bad = {"Authorization": "Bearer oc_wrong"}
    assert client.get("/api/v1/appeals/free-them/stats", headers=bad).status_code == 401


def test_tampered_or_expired_cookie_is_401(client: TestClient, session: Session) -> None:
    make_world(session, accounts=True)
    log_in(client, "admin@example.org")
    cookie = client.cookies.get("outcry_session")
    assert cookie
    client.cookies.clear()
    forged = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    assert client.get("/dashboard", headers=cookie_header(forged)).status_code == 401
    assert client.get("/dashboard", headers=cookie_header(cookie)).status_code == 200
    session.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert client.get("/dashboard", headers=cookie_header(cookie)).status_code == 401


def test_a_page_without_login_shows_the_login_form(client: TestClient, session: Session) -> None:
    make_world(session)
    response = client.get("/dashboard/free-them?lang=ru", headers=HTML)
    assert response.status_code == 401
    assert '<form method="post" action="/login' in response.text
    assert 'name="next" value="/dashboard/free-them?lang=ru"' in response.text
    assert "Войти" in response.text
    assert response.headers["cache-control"] == "no-store"
    # An API client gets JSON.
    assert client.get("/api/v1/appeals/free-them/stats").json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/dashboard/free-them?lang=ru", "/dashboard/free-them?lang=ru"),
        ("//evil.example.com/dashboard", "/dashboard"),
        ("/dashboard//evil.example.com", "/dashboard"),
        ("https://evil.example.com/dashboard", "/dashboard"),
        ("/dashboard\\@evil.example.com", "/dashboard"),
        ("/api/v1/appeals", "/dashboard"),
        ("", "/dashboard"),
    ],
)
def test_after_login_only_our_own_pages(value: str, expected: str) -> None:
    assert safe_next(value) == expected


def test_a_union_organiser_sees_only_its_appeals(client: TestClient, session: Session) -> None:
    world = make_world(session, accounts=True)
    from tests.appeals.factories import make_appeal

    make_appeal(session, slug="other-appeal", title="Another union's appeal")
    session.commit()
    log_in(client, "unite@example.org")
    page = client.get("/dashboard")
    assert world.appeal.title in page.text
    assert "Another union&#39;s appeal" not in page.text
    assert "Unite the Union" in page.text
    assert client.get("/dashboard/other-appeal").status_code == 403


def test_guessing_passwords_is_limited(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fewer tries than in production, since every one costs a real argon2 check.
    monkeypatch.setattr(pages, "LOGIN_ATTEMPTS", 3)
    make_world(session)
    token = login_token(client)
    form = {"email": "nobody@example.org", "password": "guess", "csrf_token": token}
    assert [client.post("/login", data=form).status_code for _ in range(3)] == [401] * 3
    refused = client.post("/login", data=form)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
