"""A web process's copy of a published appeal (service.published_appeal): used while the
appeal's revision is the copy's, and loaded again once anything a supporter reads of it
changed, whoever changed it. The revision is drawn by triggers on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from copy import deepcopy

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.appeals import service
from app.core.config import Settings
from app.core.db import engine_for, session_factory, session_scope
from app.core.errors import AppealNotFound
from app.models import (
    Appeal,
    AppealStatus,
    Channel,
    Delivery,
    Letter,
    LetterStatus,
    Organisation,
    Target,
    appeal_organisation,
)
from tests.appeals.factories import make_appeal
from tests.letters.factories import sign, signature

SLUG = "free-them"


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    service._COPIES.clear()
    yield session_factory(engine_for(settings.database_url))
    service._COPIES.clear()


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The slugs of the appeals published_copy() loaded whole (not from its copy)."""
    loaded: list[str] = []
    load = service._load_copy

    def counted(session: Session, slug: str) -> Appeal:
        loaded.append(slug)
        return load(session, slug)

    monkeypatch.setattr(service, "_load_copy", counted)
    return loaded


def _published(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as session:
        appeal = make_appeal(session, organisations=[{"slug": "union", "name": "A Union"}])
        return appeal.id


def _revision(sessions: sessionmaker[Session], appeal_id: int) -> int:
    with session_scope(sessions) as session:
        revision = session.scalar(select(Appeal.revision).where(Appeal.id == appeal_id))
        assert revision is not None
        return revision


def _write(sessions: sessionmaker[Session], statement: object) -> None:
    with session_scope(sessions) as session:
        session.execute(statement)  # type: ignore[call-overload]


CHANGES: dict[str, Callable[[int], object]] = {
    "the appeal's own row": lambda a: update(Appeal).where(Appeal.id == a).values(title="New"),
    "a target's name": lambda a: update(Target).where(Target.appeal_id == a).values(name="B."),
    "a target added": lambda a: insert(Target).values(
        appeal_id=a, position=9, name="C.", email="c@example.org", translations={}
    ),
    "a target removed": lambda a: delete(Target).where(Target.appeal_id == a),
    "an organisation renamed": lambda a: update(Organisation).values(name="Renamed"),
    "an organisation leaving": lambda a: delete(appeal_organisation).where(
        appeal_organisation.c.appeal_id == a
    ),
    "an organisation removed": lambda a: delete(Organisation),
    "by hand, in SQL": lambda a: text(
        "UPDATE target SET title = 'Minister' WHERE appeal_id = :a"
    ).bindparams(a=a),
}


@pytest.mark.parametrize("change", CHANGES)
def test_any_change_a_reader_sees_draws_a_new_revision(
    sessions: sessionmaker[Session], change: str
) -> None:
    appeal_id = _published(sessions)
    before = _revision(sessions, appeal_id)
    _write(sessions, CHANGES[change](appeal_id))
    assert _revision(sessions, appeal_id) != before


def test_an_organisation_joining_draws_a_new_revision(sessions: sessionmaker[Session]) -> None:
    appeal_id = _published(sessions)
    with session_scope(sessions) as session:
        session.add(Organisation(slug="other", name="Other Union"))
    with session_scope(sessions) as session:
        other = session.scalar(select(Organisation.id).where(Organisation.slug == "other"))
    before = _revision(sessions, appeal_id)
    _write(sessions, insert(appeal_organisation).values(appeal_id=appeal_id, organisation_id=other))
    assert _revision(sessions, appeal_id) != before


def test_a_letter_signed_leaves_the_revision_alone(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Signing writes no row the triggers watch: the copy outlives any crowd."""
    appeal_id = _published(sessions)
    before = _revision(sessions, appeal_id)
    with session_scope(sessions) as session:
        sign(session, service.published_appeal(session, SLUG), settings)
    assert _revision(sessions, appeal_id) == before


def test_the_copy_is_used_until_the_appeal_changes(
    sessions: sessionmaker[Session], loads: list[str]
) -> None:
    appeal_id = _published(sessions)
    for _ in range(3):
        with session_scope(sessions) as session:
            appeal = service.published_appeal(session, SLUG)
            assert [t.name for t in appeal.targets] == ["A. President"]
            assert [o.slug for o in appeal.organisations] == ["union"]
    assert loads == [SLUG]
    # Changed behind the process's back, as another process or psql would.
    _write(sessions, update(Target).where(Target.appeal_id == appeal_id).values(name="B. Premier"))
    with session_scope(sessions) as session:
        assert [t.name for t in service.published_appeal(session, SLUG).targets] == ["B. Premier"]
    assert loads == [SLUG, SLUG]


def test_the_session_gets_its_own_object_never_the_copy(sessions: sessionmaker[Session]) -> None:
    _published(sessions)
    with session_scope(sessions) as session:
        first = service.published_appeal(session, SLUG)
        assert inspect(first).session is session
        assert first in session
    with session_scope(sessions) as session:
        second = service.published_appeal(session, SLUG)
        assert second is not first
        assert inspect(second).session is session
        assert all(inspect(t).session is session for t in second.targets)
        assert service.published_appeal(session, SLUG) is second
    (copy,) = service._COPIES.values()
    assert inspect(copy).detached
    assert all(inspect(t).detached for t in copy.targets)


def test_a_draft_or_no_appeal_is_not_found(sessions: sessionmaker[Session]) -> None:
    appeal_id = _published(sessions)
    with session_scope(sessions) as session:
        service.published_appeal(session, SLUG)  # a copy now exists
    _write(sessions, update(Appeal).where(Appeal.id == appeal_id).values(status=AppealStatus.draft))
    with session_scope(sessions) as session, pytest.raises(AppealNotFound):
        service.published_appeal(session, SLUG)
    with session_scope(sessions) as session, pytest.raises(AppealNotFound):
        service.published_appeal(session, "no-such-appeal")


def test_an_appeal_made_again_with_the_same_id_is_not_taken_for_the_copy(
    sessions: sessionmaker[Session],
) -> None:
    """A database emptied and filled again (a restore, a test) may give an appeal the same
    slug and id as the copy's: its revision, drawn at random, still tells them apart."""
    appeal_id = _published(sessions)
    with session_scope(sessions) as session:
        service.published_appeal(session, SLUG)
    _write(sessions, delete(Appeal))
    if sessions.kw["bind"].dialect.name == "postgresql":
        _write(sessions, text("ALTER SEQUENCE appeal_id_seq RESTART"))
    with session_scope(sessions) as session:
        again = make_appeal(
            session,
            targets=[{"name": "D. Judge", "email": "judge@example.org"}],
            organisations=[{"slug": "union", "name": "A Union"}],
        )
        assert again.id == appeal_id
    with session_scope(sessions) as session:
        assert [t.name for t in service.published_appeal(session, SLUG).targets] == ["D. Judge"]


def test_what_a_request_does_to_its_appeal_never_reaches_the_copy(
    sessions: sessionmaker[Session],
) -> None:
    """Changed in place, as no code does today: the session's lists and dicts are its own."""
    _published(sessions)
    with session_scope(sessions) as session:
        appeal = service.published_appeal(session, SLUG)
        appeal.languages.append("kk")
        appeal.letter["en"]["subject"] = "Changed"  # type: ignore[index]
        appeal.targets[0].translations["ru"] = {"name": "Changed"}
        session.expunge_all()  # nothing of it is written
    with session_scope(sessions) as session:
        again = service.published_appeal(session, SLUG)
        assert again.languages == ["en", "ru"]
        assert again.letter["en"]["subject"] == "Free them now"  # type: ignore[index]
        assert "ru" not in again.targets[0].translations


def test_an_edit_in_this_process_shows_on_the_next_public_read(
    sessions: sessionmaker[Session], client: TestClient
) -> None:
    _published(sessions)
    assert client.get(f"/api/v1/appeals/{SLUG}").json()["targets"][0]["name"] == "A. President"
    with session_scope(sessions) as session:
        make_appeal(
            session,
            targets=[{"name": "E. Minister", "email": "minister@example.org"}],
            organisations=[{"slug": "union", "name": "A Union"}],
        )
    assert client.get(f"/api/v1/appeals/{SLUG}").json()["targets"][0]["name"] == "E. Minister"


def _contents(appeal: Appeal) -> dict[str, object]:
    """What a signature reads of an appeal, as it is now (not a view of its lists)."""
    return deepcopy(
        {
            **{a: getattr(appeal, a) for a in ("languages", "letter", "translations", "copies")},
            "targets": [(t.name, t.email, t.translations) for t in appeal.targets],
            "organisations": [(o.slug, o.name) for o in appeal.organisations],
        }
    )


@pytest.mark.parametrize("confirm", [True, False], ids=["confirmation", "no confirmation"])
def test_signing_through_the_api_reads_the_copy_and_leaves_it_alone(
    sessions: sessionmaker[Session], client: TestClient, loads: list[str], confirm: bool
) -> None:
    """A signature waiting for confirmation is written from the copy itself, never merged
    into a session (letters.service.sign); one without is written with the session's own
    appeal. Either way the copy stays out of every session, and as it was."""
    with session_scope(sessions) as session:
        make_appeal(
            session,
            organisations=[{"slug": "union", "name": "A Union"}],
            require_confirmation=confirm,
        )
    path = f"/api/v1/appeals/{SLUG}/letters"
    first = client.post(path, json=signature(org="union"))
    assert first.status_code == 202
    (copy,) = service._COPIES.values()
    second = client.post(path, json=signature(email="bob@example.net", message="Free them"))
    assert second.status_code == 202
    assert loads == [SLUG]
    (still,) = service._COPIES.values()
    assert still is copy
    assert inspect(copy).detached
    assert all(inspect(t).detached for t in copy.targets)
    assert all(inspect(o).detached for o in copy.organisations)
    with session_scope(sessions) as session:
        stored = service.find_appeal(session, SLUG)
        assert stored is not None
        assert _contents(copy) == _contents(stored)
        letters = session.execute(
            select(Letter.public_id, Letter.status, Organisation.slug)
            .outerjoin(Organisation, Letter.organisation_id == Organisation.id)
            .order_by(Letter.id)
        ).all()
        channels = session.scalars(select(Delivery.channel).order_by(Delivery.id)).all()
    waiting = LetterStatus.pending_confirmation if confirm else LetterStatus.queued
    assert letters == [
        (first.json()["id"], waiting, "union"),
        (second.json()["id"], waiting, None),
    ]
    if confirm:
        assert channels == [Channel.confirmation, Channel.confirmation]
    else:
        assert Channel.confirmation not in channels
        assert Channel.email in channels
