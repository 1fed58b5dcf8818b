"""Whose address a limit is keyed on: the peer's, unless the peer is a trusted proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.main import create_app
from tests.appeals.factories import make_appeal
from tests.conftest import make_settings
from tests.letters.factories import signature

URL = "/api/v1/appeals/free-them/letters"


@pytest.fixture
def appeal(session: Session) -> None:
    make_appeal(session)
    session.commit()


def client(db_url: str, tmp_path: Path, peer: str, **settings: object) -> Iterator[TestClient]:
    app = create_app(
        make_settings(db_url, tmp_path, sign_limit_per_hour=2, **settings),
        deliver_in_process=False,
    )
    with TestClient(app, client=(peer, 40000)) as c:
        yield c


def sign(c: TestClient, n: int, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = signature(email=f"p{n}@example.net")
    return c.post(URL, json=body, headers=headers).status_code


@pytest.mark.usefixtures("appeal")
def test_a_forged_header_from_an_untrusted_peer_is_ignored(db_url: str, tmp_path: Path) -> None:
    for c in client(db_url, tmp_path, "203.0.113.9"):
        codes = [sign(c, n, f"198.51.100.{n}") for n in range(3)]
    # Three "different" clients by the header, one by the peer: the third is limited.
    assert codes == [202, 202, 429]


@pytest.mark.usefixtures("appeal")
def test_loopback_is_not_trusted_unless_configured(db_url: str, tmp_path: Path) -> None:
    # uvicorn believes 127.0.0.1 by default; Outcry believes nobody by default.
    for c in client(db_url, tmp_path, "127.0.0.1"):
        codes = [sign(c, n, f"198.51.100.{n}") for n in range(3)]
    assert codes == [202, 202, 429]


@pytest.mark.usefixtures("appeal")
def test_a_trusted_proxy_names_the_client(db_url: str, tmp_path: Path) -> None:
    for c in client(db_url, tmp_path, "10.1.2.3", trusted_proxies=["10.0.0.0/8"]):
        same = [sign(c, n, "198.51.100.1") for n in range(3)]
        other = sign(c, 10, "198.51.100.2")
        # Behind a second trusted hop, the client is the nearest untrusted address; a
        # forged address the client put first is not believed.
        chained = [sign(c, 20 + n, "192.0.2.66, 198.51.100.7, 10.9.9.9") for n in range(3)]
    assert same == [202, 202, 429]
    assert other == 202
    assert chained == [202, 202, 429]
