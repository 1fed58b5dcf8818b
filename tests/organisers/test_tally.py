"""letter_tally, kept by database triggers, always equals counting the letters."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, delete, func, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.core.config import Settings
from app.core.db import engine_for, session_factory, session_scope
from app.delivery import service as delivery
from app.letters import moderation
from app.models import (
    Appeal,
    Delivery,
    DeliveryStatus,
    Letter,
    LetterStatus,
    LetterTally,
    Organisation,
    utcnow,
)
from tests.appeals.factories import make_appeal
from tests.conftest import _truncate, drain, make_settings
from tests.letters.factories import sign
from tests.organisers.factories import fail_deliveries, make_world, signed


def assert_tally_matches(session: Session) -> dict[tuple[int, int, str], int]:
    session.commit()
    counted = {
        (appeal_id, organisation_id or 0, status.value): n
        for appeal_id, organisation_id, status, n in session.execute(
            select(Letter.appeal_id, Letter.organisation_id, Letter.status, func.count()).group_by(
                Letter.appeal_id, Letter.organisation_id, Letter.status
            )
        )
    }
    # Summed over the shards, as every reader does.
    tallied = {
        (appeal_id, organisation_key, status.value): n
        for appeal_id, organisation_key, status, n in session.execute(
            select(
                LetterTally.appeal_id,
                LetterTally.organisation_key,
                LetterTally.status,
                func.sum(LetterTally.n),
            ).group_by(LetterTally.appeal_id, LetterTally.organisation_key, LetterTally.status)
        )
        if n != 0
    }
    assert tallied == counted
    return tallied


def test_tally_follows_every_change(session: Session, settings: Settings) -> None:
    world = make_world(session, moderation=True)
    appeal = world.appeal
    assert_tally_matches(session)

    # Signing, replacing an unconfirmed signature, confirming, holding.
    sign(session, appeal, settings, email="p@example.net", org="unite")
    sign(session, appeal, settings, email="p@example.net", org="gmb")  # replaces the first
    signed(session, appeal, settings, email="a@example.net", org="unite")
    signed(session, appeal, settings, email="b@example.net", org="gmb")
    held = [
        signed(session, appeal, settings, email=f"h{i}@example.net", org="unite", message="!")
        for i in range(3)
    ]
    unite = session.scalar(select(Organisation.id).where(Organisation.slug == "unite"))
    assert unite is not None
    assert assert_tally_matches(session)[(appeal.id, unite, "held")] == 3
    # Moderation both ways, sending, failing, retrying.
    moderation.approve(session, letter=held[0], settings=settings, now=utcnow(), by="t")
    moderation.reject(session, letter=held[1], settings=settings, now=utcnow(), by="t")
    assert_tally_matches(session)
    drain(settings)
    assert_tally_matches(session)
    signed(session, appeal, settings, email="f@example.net", org="unite")
    fail_deliveries(settings)
    assert_tally_matches(session)
    failed = session.scalars(
        select(Delivery).where(Delivery.status == DeliveryStatus.failed).limit(1)
    ).one()
    delivery.retry(session, failed, now=utcnow(), by="test")
    assert_tally_matches(session)

    # Expiry, and a statement that changes many letters at once.
    sign(session, appeal, settings, email="late1@example.net")
    sign(session, appeal, settings, email="late2@example.net", org="gmb")
    session.execute(update(Letter).values(created_at=utcnow() - timedelta(days=30)))
    assert delivery.expire_unconfirmed(session, now=utcnow(), days=7) >= 2
    assert_tally_matches(session)
    session.execute(
        update(Letter).where(Letter.status == LetterStatus.sent).values(status=LetterStatus.failed)
    )
    assert_tally_matches(session)

    # An organisation deleted: its letters become unattributed.
    session.execute(delete(Organisation).where(Organisation.slug == "gmb"))
    tallied = assert_tally_matches(session)
    assert all(key[1] != 0 or n > 0 for key, n in tallied.items())

    # A second appeal, then the first deleted with all its letters.
    other = make_appeal(session, slug="other", require_confirmation=False)
    sign(session, other, settings, email="o@example.net")
    session.execute(delete(Appeal).where(Appeal.id == appeal.id))
    tallied = assert_tally_matches(session)
    assert {key[0] for key in tallied} == {other.id}


@pytest.mark.postgres
def test_signatures_of_one_appeal_never_wait_for_each_other(pg_url: str, tmp_path: Path) -> None:
    """No hot row: a signature whose transaction is still open does not hold back another."""
    _truncate(pg_url)
    settings = make_settings(pg_url, tmp_path)
    with session_scope(session_factory(engine_for(pg_url))) as session:
        appeal_id = make_appeal(session).id
    engine = create_engine(pg_url, poolclass=NullPool)
    # Two connections whose counts go to different shards (backend pid % 64).
    connections: dict[int, Connection] = {}
    while len(connections) < 2:
        conn = engine.connect()
        shard = conn.execute(text("SELECT pg_backend_pid() % 64")).scalar_one()
        conn.commit()
        if shard in connections:
            conn.close()
        else:
            connections[shard] = conn
    first, second = connections.values()
    try:
        with Session(bind=first) as open_one, Session(bind=second) as other:
            sign(open_one, open_one.get_one(Appeal, appeal_id), settings, email="a@example.net")
            # The first transaction stays open, holding whatever it locked. The second
            # would wait for it on a shared tally row; it must not wait at all.
            other.execute(text("SET lock_timeout = '10s'"))
            sign(other, other.get_one(Appeal, appeal_id), settings, email="b@example.net")
            other.commit()
            open_one.commit()
    finally:
        for conn in connections.values():
            conn.close()
        engine.dispose()
    with session_scope(session_factory(engine_for(pg_url))) as session:
        tallied = assert_tally_matches(session)
        assert tallied[(appeal_id, 0, "pending_confirmation")] == 2
