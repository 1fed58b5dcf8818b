"""POST /api/v1/deliveries/{id}/retry: organisers send a failed delivery again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from app.models import Appeal, Channel, Delivery
from app.organisers import service as organisers
from tests.appeals.factories import make_appeal
from tests.conftest import drain
from tests.letters.factories import sign
from tests.support.smtp import Handler, SmtpSink

REFUSED = "550 5.7.1 Refused by policy"


@pytest.fixture
def client(mail: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(mail, deliver_in_process=False)) as client:
        yield client


# The unions taking part: letters signed through their links are theirs.
UNIONS = [{"slug": "unite", "name": "Unite"}, {"slug": "other", "name": "Another Union"}]


@pytest.fixture
def appeal(session: Session) -> Appeal:
    appeal = make_appeal(session, require_confirmation=False, organisations=UNIONS)
    session.commit()
    return appeal


def bearer(session: Session, organisation: str | None = None) -> dict[str, str]:
    org = organisers.ensure_organisation(session, slug=organisation) if organisation else None
    _, raw = organisers.create_token(session, organisation=org, by="test")
    session.commit()
    return {"Authorization": f"Bearer {raw}"}


def delivery_of(
    session: Session,
    appeal: Appeal,
    mail: Settings,
    handler: Handler,
    *,
    email: str = "ada@example.net",
    org: str | None = None,
    fail: bool = True,
) -> int:
    """Sign, then deliver to a server that refuses (fail) or accepts; the e-mail delivery's id."""
    if org:
        organisers.ensure_organisation(session, slug=org)
    letter = sign(session, appeal, mail, email=email, org=org)
    session.commit()
    handler.on_data = (lambda _rcpts: REFUSED) if fail else (lambda _rcpts: None)
    drain(mail)
    handler.on_data = lambda _rcpts: None
    return session.scalars(
        select(Delivery.id).where(
            Delivery.letter_id == letter.id, Delivery.channel == Channel.email
        )
    ).one()


def test_admin_retries_a_failed_delivery_and_it_goes_out(
    client: TestClient,
    session: Session,
    appeal: Appeal,
    mail: Settings,
    handler: Handler,
    sink: SmtpSink,
) -> None:
    delivery_id = delivery_of(session, appeal, mail, handler)
    admin = bearer(session)

    response = client.post(f"/api/v1/deliveries/{delivery_id}/retry", headers=admin)

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["id"], body["status"], body["attempts"]) == (delivery_id, "queued", 1)
    assert body["max_attempts"] == 1 + appeal.max_attempts  # a fresh set of attempts
    drain(mail)
    session.expire_all()
    delivery = session.get(Delivery, delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert delivery.letter is not None
    assert delivery.letter.status == "sent"
    assert len(sink.messages) == 1


def test_a_union_retries_its_own_letters_only(
    client: TestClient, session: Session, appeal: Appeal, mail: Settings, handler: Handler
) -> None:
    own = delivery_of(session, appeal, mail, handler, email="a@example.net", org="unite")
    other = delivery_of(session, appeal, mail, handler, email="b@example.net", org="other")
    unattributed = delivery_of(session, appeal, mail, handler, email="c@example.net")
    union = bearer(session, "unite")

    forbidden = client.post(f"/api/v1/deliveries/{other}/retry", headers=union)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "forbidden"
    assert client.post(f"/api/v1/deliveries/{unattributed}/retry", headers=union).status_code == 403
    assert client.post(f"/api/v1/deliveries/{own}/retry", headers=union).status_code == 202

    session.expire_all()
    statuses = dict(
        session.execute(
            select(Delivery.id, Delivery.status).where(Delivery.id.in_([own, other, unattributed]))
        ).all()
    )
    assert statuses == {own: "queued", other: "failed", unattributed: "failed"}


def test_retry_needs_a_valid_token(
    client: TestClient, session: Session, appeal: Appeal, mail: Settings, handler: Handler
) -> None:
    delivery_id = delivery_of(session, appeal, mail, handler)

    missing = client.post(f"/api/v1/deliveries/{delivery_id}/retry")
    wrong = client.post(
        f"/api/v1/deliveries/{delivery_id}/retry", headers={"Authorization": "Bearer oc_nope"}
    )

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    session.expire_all()
    assert session.get(Delivery, delivery_id).status == "failed"  # type: ignore[union-attr]


def test_an_unknown_delivery_is_404(client: TestClient, session: Session) -> None:
    admin = bearer(session)
    response = client.post("/api/v1/deliveries/999999/retry", headers=admin)
    assert response.status_code == 404
    assert response.json()["detail"] == "No such delivery."
    assert client.post("/api/v1/deliveries/nope/retry", headers=admin).status_code == 422


@pytest.mark.parametrize(
    "path", ["/api/v1/deliveries/{id}/retry", "/dashboard/deliveries/{id}/retry"]
)
def test_retrying_a_delivery_that_has_not_failed_is_409(
    client: TestClient,
    session: Session,
    appeal: Appeal,
    mail: Settings,
    handler: Handler,
    sink: SmtpSink,
    path: str,
) -> None:
    # The API and the dashboard's button are one service function: one answer.
    delivery_id = delivery_of(session, appeal, mail, handler, fail=False)
    admin = bearer(session)

    response = client.post(path.format(id=delivery_id), headers=admin)

    assert response.status_code == 409
    assert response.json()["error"] == "not_failed"
    assert "sent" in response.json()["detail"]
    drain(mail)
    assert len(sink.messages) == 1  # nothing was sent again
