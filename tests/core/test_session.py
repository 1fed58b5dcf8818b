"""The request's session: committed before the answer, ids enqueued only once committed,
and a route that commits on its own thread (commit_now) spares the extra thread call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import db
from app.core.admission import Admission
from app.core.config import Settings
from app.core.db import SessionDep, commit_now, engine_for, session_factory
from app.delivery.service import enqueue_after_commit
from app.models import AuditEvent, Delivery, Letter
from tests.appeals.factories import make_appeal
from tests.letters.factories import form_data, signature


class Recorder:
    """A dispatcher that notes the ids handed to it, and whether that was in the event
    loop. `closed` as Batching's after close(), which hands ids to Redis itself."""

    def __init__(self, *, closed: bool = False) -> None:
        self.handed: list[int] = []
        self.in_loop: list[bool] = []
        self.closed = closed

    def enqueue(self, ids: Sequence[int]) -> None:
        self.handed += ids
        self.in_loop.append(in_event_loop())


def in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Calls:
    """Counts the thread calls get_session makes after the route: commit or roll back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commits = self.rollbacks = 0
        commit, roll_back = db._commit, db._roll_back

        def counted_commit(*args: object) -> None:
            self.commits += 1
            commit(*args)  # type: ignore[arg-type]

        def counted_roll_back(session: Session) -> None:
            self.rollbacks += 1
            roll_back(session)

        monkeypatch.setattr(db, "_commit", counted_commit)
        monkeypatch.setattr(db, "_roll_back", counted_roll_back)


def _audit(session: Session, action: str) -> None:
    session.add(AuditEvent(actor="test", action=action))


@pytest.fixture
def app(settings: Settings) -> tuple[FastAPI, Recorder]:
    app = FastAPI()
    app.state.sessions = session_factory(engine_for(settings.database_url))
    app.state.admission = Admission(4, wait=5)
    recorder = Recorder()
    app.state.dispatcher = recorder

    @app.post("/commits-itself")
    def commits_itself(session: SessionDep) -> dict[str, str]:
        _audit(session, "itself")
        enqueue_after_commit(session, [7])
        commit_now(session)
        return {}

    @app.post("/commits-itself-then-reads")
    def commits_itself_then_reads(session: SessionDep) -> dict[str, int]:
        _audit(session, "itself")
        enqueue_after_commit(session, [7])
        commit_now(session)
        # A new transaction, which the dependency commits (and closes) as usual.
        return {"n": session.scalar(select(func.count()).select_from(AuditEvent)) or 0}

    @app.post("/commits-itself-then-changes")
    def commits_itself_then_changes(session: SessionDep) -> dict[str, str]:
        event = AuditEvent(actor="test", action="before")
        session.add(event)
        commit_now(session)
        event.action = "after"  # no transaction yet: only the object knows
        return {}

    @app.post("/commits-itself-then-fails")
    def commits_itself_then_fails(session: SessionDep) -> dict[str, str]:
        _audit(session, "kept")
        enqueue_after_commit(session, [7])
        commit_now(session)
        _audit(session, "lost")
        enqueue_after_commit(session, [8])
        raise HTTPException(404)

    @app.post("/fails-before-commit-now")
    def fails_before_commit_now(session: SessionDep) -> dict[str, str]:
        _audit(session, "lost")
        enqueue_after_commit(session, [7])
        raise HTTPException(404)

    @app.post("/commits-itself-then-cannot-commit")
    def commits_itself_then_cannot_commit(session: SessionDep) -> dict[str, str]:
        _audit(session, "kept")
        enqueue_after_commit(session, [7])
        commit_now(session)
        session.add(AuditEvent(actor="test", action=None))  # NOT NULL: the commit fails
        enqueue_after_commit(session, [8])
        return {}

    @app.post("/leaves-it")
    def leaves_it(session: SessionDep) -> dict[str, str]:
        _audit(session, "left")
        enqueue_after_commit(session, [9])
        return {}

    return app, recorder


def _actions(settings: Settings) -> list[str]:
    with session_factory(engine_for(settings.database_url))() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_a_route_that_commits_itself_takes_no_thread_call_to_finish(
    app: tuple[FastAPI, Recorder], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, recorder = app
    calls = Calls(monkeypatch)
    with TestClient(web) as client:
        assert client.post("/commits-itself").status_code == 200
    assert (calls.commits, calls.rollbacks) == (0, 0)
    assert recorder.handed == [7]
    assert _actions(settings) == ["itself"]


def test_work_after_commit_now_is_committed_by_the_dependency(
    app: tuple[FastAPI, Recorder], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, recorder = app
    calls = Calls(monkeypatch)
    with TestClient(web) as client:
        answer = client.post("/commits-itself-then-reads")
    assert answer.json() == {"n": 1}
    assert (calls.commits, calls.rollbacks) == (1, 0)
    assert recorder.handed == [7]


def test_a_change_made_after_commit_now_is_committed_too(
    app: tuple[FastAPI, Recorder], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, _recorder = app
    calls = Calls(monkeypatch)
    with TestClient(web) as client:
        assert client.post("/commits-itself-then-changes").status_code == 200
    assert calls.commits == 1
    assert _actions(settings) == ["after"]


def test_a_failure_after_commit_now_keeps_and_enqueues_only_what_was_committed(
    app: tuple[FastAPI, Recorder], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, recorder = app
    calls = Calls(monkeypatch)
    with TestClient(web) as client:
        assert client.post("/commits-itself-then-fails").status_code == 404
    assert (calls.commits, calls.rollbacks) == (0, 1)
    assert recorder.handed == [7]
    assert _actions(settings) == ["kept"]


def test_a_route_that_leaves_the_commit_to_the_dependency_is_committed_then_enqueued(
    app: tuple[FastAPI, Recorder], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, recorder = app
    calls = Calls(monkeypatch)
    with TestClient(web) as client:
        assert client.post("/leaves-it").status_code == 200
    assert (calls.commits, calls.rollbacks) == (1, 0)
    assert recorder.handed == [9]
    assert _actions(settings) == ["left"]


def test_a_failure_before_commit_now_stores_and_enqueues_nothing(
    app: tuple[FastAPI, Recorder], settings: Settings
) -> None:
    web, recorder = app
    with TestClient(web) as client:
        assert client.post("/fails-before-commit-now").status_code == 404
    assert recorder.handed == []
    assert _actions(settings) == []


def test_a_commit_that_fails_after_commit_now_still_enqueues_what_was_committed(
    app: tuple[FastAPI, Recorder], settings: Settings
) -> None:
    web, recorder = app
    with TestClient(web, raise_server_exceptions=False) as client:
        assert client.post("/commits-itself-then-cannot-commit").status_code == 500
    assert recorder.handed == [7]
    assert _actions(settings) == ["kept"]


def test_ids_go_to_the_dispatcher_in_the_event_loop_unless_it_is_closed(
    app: tuple[FastAPI, Recorder],
) -> None:
    web, recorder = app
    with TestClient(web) as client:
        assert client.post("/commits-itself").status_code == 200
        # Closed (shutting down), the dispatcher calls Redis itself: off the event loop.
        web.state.dispatcher = closed = Recorder(closed=True)
        assert client.post("/commits-itself").status_code == 200
    assert recorder.in_loop == [True]
    assert (closed.handed, closed.in_loop) == ([7], [False])


@pytest.mark.parametrize("surface", ["api", "page"])
def test_signing_and_confirming_hand_each_delivery_over_once(
    session: Session, settings: Settings, surface: str
) -> None:
    from app.core import security
    from app.main import create_app

    make_appeal(session)
    session.commit()
    web = create_app(settings, deliver_in_process=False)
    with TestClient(web) as client:
        web.state.dispatcher = recorder = Recorder()
        if surface == "api":
            signed = client.post("/api/v1/appeals/free-them/letters", json=signature())
            assert signed.status_code == 202, signed.text
        else:
            signed = client.post(
                "/a/free-them", data=form_data(client), headers={"Accept": "text/html"}
            )
            assert signed.status_code == 201, signed.text
        [confirmation] = session.scalars(select(Delivery)).all()
        assert recorder.handed == [confirmation.id]
        letter = session.scalars(select(Letter)).one()
        token = security.sign(settings.resolved_secret_key(), "confirm", letter.public_id)
        if surface == "api":
            confirmed = client.post("/api/v1/letters/confirm", json={"token": token})
        else:
            confirmed = client.post(f"/confirm/{token}", headers={"Accept": "text/html"})
        assert confirmed.status_code == 200, confirmed.text
    session.expire_all()
    to_targets = [d.id for d in session.scalars(select(Delivery)) if d.id != confirmation.id]
    assert to_targets
    assert recorder.handed == [confirmation.id, *to_targets]
    assert all(recorder.in_loop)
