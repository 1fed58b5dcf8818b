"""Signing, confirming and following a letter through the HTTP API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import email_validator
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import Appeal
from tests.appeals.factories import make_appeal
from tests.conftest import drain, make_settings
from tests.letters.factories import signature
from tests.support.smtp import SmtpSink


@pytest.fixture
def appeal(session: Session) -> Appeal:
    appeal = make_appeal(session)
    session.commit()
    return appeal


def sign(client: TestClient, slug: str = "free-them", **fields: object) -> dict[str, object]:
    response = client.post(f"/api/v1/appeals/{slug}/letters", json=signature(**fields))
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


def confirm_link(outbox: Path) -> str:
    [eml] = [p for p in outbox.glob("*.eml") if ".confirm." in p.name]
    match = re.search(r"http://testserver(/confirm/\S+)", eml.read_text())
    assert match, eml.read_text()
    return match.group(1)


def test_sign_confirm_and_deliver(client: TestClient, settings: Settings, appeal: Appeal) -> None:
    created = sign(client)
    assert created["status"] == "pending_confirmation"
    status_url = str(created["status_url"])
    assert status_url.startswith("http://testserver/api/v1/letters/")

    drain(settings)  # the confirmation e-mail goes out
    link = confirm_link(settings.outbox_dir)
    # Opening the link (as a mail scanner does) shows the letter and changes nothing.
    page = client.get(link)
    assert page.status_code == 200
    assert "Ada Example" in page.text
    assert f'action="{link}?lang=en"' in page.text
    letter = client.get(status_url.removeprefix("http://testserver")).json()
    assert letter["status"] == "pending_confirmation"
    assert client.post(link).status_code == 200
    letter = client.get(status_url.removeprefix("http://testserver")).json()
    assert letter["status"] == "queued"

    drain(settings)
    letter = client.get(status_url.removeprefix("http://testserver")).json()
    assert letter["status"] == "sent"
    [email] = [d for d in letter["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "sent"
    assert email["history"][0]["outcome"] == "sent"

    # Following the link and pressing the button again is harmless: nothing is planned twice.
    assert "already" in client.get(link).text
    assert client.post(link).status_code == 200
    drain(settings)
    deliveries = client.get(status_url.removeprefix("http://testserver")).json()["deliveries"]
    # The confirmation, the e-mail to the target, and a fax to the target's fax number.
    assert sorted(d["channel"] for d in deliveries) == ["confirmation", "email", "fax"]


def test_confirm_through_api(client: TestClient, settings: Settings, appeal: Appeal) -> None:
    created = sign(client)
    drain(settings)
    token = confirm_link(settings.outbox_dir).rsplit("/", 1)[1]
    response = client.post("/api/v1/letters/confirm", json={"token": token})
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response.json()["id"] == created["id"]


def test_forged_token_is_404(client: TestClient, appeal: Appeal) -> None:
    sign(client)
    response = client.post("/api/v1/letters/confirm", json={"token": "abc.def"})
    assert response.status_code == 404
    assert response.json()["error"] == "invalid_token"


def test_wrong_key_never_shows_a_letter(client: TestClient, appeal: Appeal) -> None:
    created = sign(client)
    letter_id = created["id"]
    for key in ("", "wrong", str(created["status_url"]).rsplit("=", 1)[1][:-1]):
        response = client.get(f"/api/v1/letters/{letter_id}", params={"key": key})
        assert response.status_code == 404
        assert "Ada" not in response.text
    page = client.get(f"/letters/{letter_id}", params={"key": "wrong"})
    assert page.status_code == 404
    assert "Ada" not in page.text


def test_same_email_twice_is_409(client: TestClient, settings: Settings, appeal: Appeal) -> None:
    sign(client)
    drain(settings)
    client.post(confirm_link(settings.outbox_dir))
    response = client.post(
        "/api/v1/appeals/free-them/letters", json=signature(email="ADA@Example.net")
    )
    assert response.status_code == 409
    assert response.json()["error"] == "duplicate_signature"


def test_unconfirmed_signature_is_replaced_not_doubled(
    client: TestClient, settings: Settings, appeal: Appeal
) -> None:
    first = sign(client, message="written by someone else")
    second = sign(client, message="mine")
    assert first["id"] != second["id"]
    old = client.get(str(first["status_url"]).removeprefix("http://testserver"))
    assert old.status_code == 404
    assert client.get("/api/v1/appeals/free-them").json()["signed"] == 0


def test_closed_appeal_is_409(client: TestClient, session: Session) -> None:
    make_appeal(session, status="closed")
    session.commit()
    response = client.post("/api/v1/appeals/free-them/letters", json=signature())
    assert response.status_code == 409
    assert response.json()["error"] == "appeal_closed"


def test_unknown_appeal_is_404(client: TestClient) -> None:
    response = client.post("/api/v1/appeals/nope/letters", json=signature())
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"country": "XX"}, "country"),
        ({"country": "Kazakhstan"}, "country"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Ada\r\nBcc: victim@example.com"}, "name"),
        ({"organisation": "Union\nX-Evil: 1"}, "organisation"),
        ({"city": "Leeds\x00"}, "city"),
        ({"message": "m" * 2001}, "message"),
        ({"language": "de"}, "language"),
        ({"language": "zz-not-a-language"}, "language"),
        ({"unexpected": "field"}, "unexpected"),
    ],
)
def test_invalid_field_is_422_naming_it(
    client: TestClient, appeal: Appeal, fields: dict[str, object], field: str
) -> None:
    response = client.post("/api/v1/appeals/free-them/letters", json=signature(**fields))
    assert response.status_code == 422, response.text
    assert field in response.json()["fields"]


def test_oversize_body_is_413(client: TestClient, appeal: Appeal) -> None:
    response = client.post(
        "/api/v1/appeals/free-them/letters", json=signature(message="x" * 100_000)
    )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/appeals/free-them/letters", "application/json"),
        ("/a/free-them", "application/x-www-form-urlencoded"),
    ],
)
def test_a_chunked_body_too_large_is_413_too(
    client: TestClient, appeal: Appeal, path: str, content_type: str
) -> None:
    """Without a Content-Length the limit is found while reading, not before."""

    def megabyte() -> Iterator[bytes]:
        for _ in range(16):
            yield b"x" * 65536

    response = client.post(path, content=megabyte(), headers={"Content-Type": content_type})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_an_overlong_city_is_counted_in_characters(client: TestClient, appeal: Appeal) -> None:
    response = client.post("/api/v1/appeals/free-them/letters", json=signature(city="x" * 101))
    assert response.status_code == 422
    assert response.json()["fields"] == {"city": "String should have at most 100 characters"}


def test_template_syntax_in_message_stays_literal(
    client: TestClient, settings: Settings, appeal: Appeal
) -> None:
    hostile = "{{ 7*7 }} {% for x in range(3) %}loop{% endfor %} {{ ''.__class__ }}"
    created = sign(client, message=hostile, name="{{ signer }}")
    letter = client.get(str(created["status_url"]).removeprefix("http://testserver")).json()
    assert hostile in letter["body"]
    assert "{{ signer }}" in letter["body"]
    assert "49" not in letter["body"]


def test_crlf_never_adds_a_header_or_recipient(
    session: Session, tmp_path: Path, db_url: str, smtp: SmtpSink
) -> None:
    """Even text that slipped past the form's checks cannot add a header."""
    from app.models import Letter

    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url)
    appeal = make_appeal(session, require_confirmation=False)
    from tests.letters.factories import sign as sign_letter

    letter = sign_letter(session, appeal, settings)
    # Write hostile values straight into the row, as if validation had a hole.
    session.get(Letter, letter.id).signer_name = "Ada\r\nBcc: victim@example.com\r\nX-Evil: 1"  # type: ignore[union-attr]
    session.get(Letter, letter.id).subject = "Hi\nBcc: victim2@example.com"  # type: ignore[union-attr]
    session.commit()
    # The letter was queued at signing: no confirmation needed.
    drain(settings)
    [received] = smtp.wait_for(1)
    assert sorted(received.rcpt_tos) == [
        "campaign@example.net",
        "copies@example.org",
        "president@example.org",
    ]
    msg = received.message
    assert msg["Bcc"] is None
    assert msg["X-Evil"] is None
    assert "victim" not in str(msg["To"]) + str(msg.get("Cc"))
    assert msg["From"].addresses[0].addr_spec == "letters@localhost"


def test_an_unknown_appeal_is_a_404_and_costs_no_signature_of_the_limit(
    db_url: str, tmp_path: Path, session: Session
) -> None:
    from app.main import create_app

    make_appeal(session)
    session.commit()
    settings = make_settings(db_url, tmp_path, sign_limit_per_hour=1)
    with TestClient(create_app(settings, deliver_in_process=False)) as client:
        for _ in range(2):
            unknown = client.post("/api/v1/appeals/no-such-appeal/letters", json=signature())
            assert unknown.status_code == 404, unknown.text
        signed = client.post("/api/v1/appeals/free-them/letters", json=signature())
        assert signed.status_code == 202, signed.text
        # Over the limit now, an unknown appeal is still a 404 (it is looked up first).
        unknown = client.post(
            "/api/v1/appeals/no-such-appeal/letters", json=signature(email="b@example.net")
        )
        assert unknown.status_code == 404, unknown.text


def test_signing_is_rate_limited_per_client(db_url: str, tmp_path: Path, session: Session) -> None:
    from app.main import create_app

    make_appeal(session)
    session.commit()
    settings = make_settings(db_url, tmp_path, sign_limit_per_hour=3)
    with TestClient(create_app(settings, deliver_in_process=False)) as client:
        for n in range(3):
            response = client.post(
                "/api/v1/appeals/free-them/letters", json=signature(email=f"p{n}@example.net")
            )
            assert response.status_code == 202
        refused = client.post(
            "/api/v1/appeals/free-them/letters", json=signature(email="p9@example.net")
        )
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
        page = client.post(
            "/a/free-them", data=signature(email="p10@example.net"), headers={"Accept": "text/html"}
        )
        assert page.status_code == 429
        assert page.headers["Retry-After"]


def test_a_signature_checks_its_address_once(
    client: TestClient, appeal: Appeal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form's syntax check and the service's normalising check are one check: the
    service reads what the request's form found (schemas._CHECKED), and nothing else."""
    from app.letters import schemas

    checked: list[str] = []
    validate = email_validator.validate_email

    def counted(address: str, **options: Any) -> Any:
        checked.append(address)
        return validate(address, **options)

    monkeypatch.setattr(schemas, "validate_email", counted)
    sign(client, email="Ada.Once@Example.net")
    assert checked == ["Ada.Once@Example.net"]
    # Another request's address is checked afresh, and stored folded as before.
    created = sign(client, email="Bob.Twice@Example.net")
    assert checked == ["Ada.Once@Example.net", "Bob.Twice@Example.net"]
    assert created["status"] == "pending_confirmation"
    # Nothing of a request is left outside it: here, the address is checked afresh.
    assert schemas.normalised_address("Bob.Twice@Example.net") == "bob.twice@example.net"
    assert checked[2:] == ["Bob.Twice@Example.net"]
