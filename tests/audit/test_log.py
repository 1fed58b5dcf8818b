"""The audit log: written with each change in its transaction, read by admins whole and by
a union for its own appeals and letters, never holding a supporter's address."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.config import Settings
from app.letters import moderation
from app.models import AuditEvent, utcnow
from app.organisers import service as organisers
from tests.appeals.factories import appeal_data, make_appeal
from tests.organisers.factories import ORGANISATIONS, make_world, signed


def entries(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_a_change_rolled_back_leaves_no_entry(session: Session, settings: Settings) -> None:
    world = make_world(session, moderation=True, require_confirmation=False)
    letter = signed(session, world.appeal, settings, org="unite", message="Free them!")
    before = entries(session)
    moderation.approve(session, letter=letter, settings=settings, now=utcnow(), by="admin")
    assert entries(session) == before + 1
    session.rollback()
    assert entries(session) == before


def test_a_union_reads_its_own_appeals_and_letters_only(
    client: TestClient, session: Session, settings: Settings
) -> None:
    world = make_world(session, moderation=True, require_confirmation=False)
    make_appeal(session, slug="elsewhere", organisations=[{"slug": "rmt", "name": "RMT"}])
    mine = signed(session, world.appeal, settings, org="unite", email="u@example.net", message="!")
    theirs = signed(session, world.appeal, settings, org="gmb", email="g@example.net", message="!")
    for letter in (mine, theirs):
        moderation.approve(session, letter=letter, settings=settings, now=utcnow(), by="admin")
    session.commit()
    # A change through the API with a token: who is the token.
    renamed = client.put(
        "/api/v1/appeals/free-them",
        json=appeal_data(
            title="Renamed",
            organisations=ORGANISATIONS,
            moderation=True,
            require_confirmation=False,
        ),
        headers=world.auth("admin"),
    )
    assert renamed.status_code == 200, renamed.text
    edit = session.scalars(select(AuditEvent).where(AuditEvent.action == "appeal.edited")).one()
    assert edit.actor.startswith("token ")
    assert edit.actor.endswith("(admin)")
    assert edit.changes == {"title": ["Free the jailed union leaders", "Renamed"]}

    unite = organisers.get_organisation(session, "unite")
    seen = audit.read(session, organisation_id=unite.id).events
    subjects = {(e.action, e.subject) for e in seen}
    assert ("letter.approved", mine.public_id) in subjects
    assert ("letter.approved", theirs.public_id) not in subjects
    assert ("appeal.edited", "free-them") in subjects
    assert ("appeal.created", "free-them") in subjects
    assert not any(e.subject == "elsewhere" for e in seen)
    assert not any(
        e.action == "token.created" and "admin" in e.changes.get("scope", "") for e in seen
    )
    assert {e.subject for e in seen if e.action == "token.created"} == {"token 2 (unite)"}
    everything = audit.read(session, organisation_id=None).total
    assert everything > len(seen)

    # No supporter's address anywhere in the log.
    text = " ".join(
        f"{e.subject} {e.changes}"
        for e in audit.read(session, organisation_id=None, size=500).events
    )
    assert "u@example.net" not in text
    assert "g@example.net" not in text

    with_token = client.get("/dashboard/audit", headers=world.auth("unite"))
    assert with_token.status_code == 200
    assert mine.public_id in with_token.text
    assert theirs.public_id not in with_token.text
    assert client.get("/dashboard/elsewhere/audit", headers=world.auth("unite")).status_code == 403
    per_appeal = client.get("/dashboard/free-them/audit", headers=world.auth("admin"))
    assert theirs.public_id in per_appeal.text


def test_the_log_is_paginated(client: TestClient, session: Session) -> None:
    world = make_world(session)
    for n in range(audit.PAGE_SIZE + 5):
        organisers.create_token(session, organisation=None, name=f"t{n}", by="admin")
    session.commit()
    first = audit.read(session, organisation_id=None)
    assert (first.page, first.pages, len(first.events)) == (1, 2, audit.PAGE_SIZE)
    second = audit.read(session, organisation_id=None, page=2)
    assert {e.id for e in first.events}.isdisjoint({e.id for e in second.events})
    assert audit.read(session, organisation_id=None, page=99).page == 2
    page = client.get("/dashboard/audit?page=2", headers=world.auth("admin"))
    assert page.status_code == 200
    assert 'rel="prev"' in page.text
    assert 'rel="next"' not in page.text
