"""Health, readiness (database and broker) and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.main import create_app
from app.organisers import service as organisers
from tests.appeals.factories import make_appeal
from tests.conftest import make_settings
from tests.letters.factories import sign


def test_healthz_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert "/api/v1/appeals/{slug}/letters" in client.get("/openapi.json").json()["paths"]


def test_readyz_embedded(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body == {"ready": True, "checks": {"database": "ok", "broker": "embedded"}}


def test_readyz_with_broker(db_url: str, tmp_path: Path, redis_url: str) -> None:
    up = make_settings(db_url, tmp_path, broker_url=redis_url)
    with TestClient(create_app(up)) as client:
        assert client.get("/readyz").json()["checks"]["broker"] == "ok"
    down = make_settings(db_url, tmp_path, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(down)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["broker"].startswith("error")


def test_readyz_without_database(tmp_path: Path) -> None:
    settings = make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path)
    with TestClient(create_app(settings, deliver_in_process=False)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("error")


def test_metrics_count_from_the_database(
    client: TestClient, session: Session, settings: object
) -> None:
    appeal = make_appeal(session)
    sign(session, appeal, settings)  # type: ignore[arg-type]
    _, admin = organisers.create_token(session, organisation=None, by="test")
    session.commit()
    text = client.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).text
    assert 'outcry_letters{status="pending_confirmation"} 1.0' in text
    assert 'outcry_letters{status="sent"} 0.0' in text
    assert 'outcry_deliveries{status="queued"} 1.0' in text


def test_metrics_are_not_public(db_url: str, tmp_path: Path, session: Session) -> None:
    """Counts of letters by status tell an adversary how a campaign goes: /metrics answers
    OUTCRY_METRICS_TOKEN or an admin token only."""
    unite = organisers.ensure_organisation(session, slug="unite", name="Unite")
    _, union = organisers.create_token(session, organisation=unite, by="test")
    _, admin = organisers.create_token(session, organisation=None, by="test")
    session.commit()
    settings = make_settings(db_url, tmp_path, metrics_token="scrape-me-please-0123456789")
    with TestClient(create_app(settings, deliver_in_process=False)) as client:

        def status(token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return client.get("/metrics", headers=headers).status_code

        assert status(None) == 401
        assert client.get("/metrics").json()["error"] == "unauthorized"
        assert status("scrape-me-please-wrong") == 401
        assert status(union) == 403
        assert status(admin) == 200
        assert status("scrape-me-please-0123456789") == 200
