"""The request's session: committed before the answer, ids enqueued only once committed,
and a route that commits on its own thread (commit_now) spares the extra thread call."""

from __future__ import annotations

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
from app.models import AuditEvent


class Recorder:
    def __init__(self) -> None:
        self.handed: list[int] = []

    def enqueue(self, ids: Sequence[int]) -> None:
        self.handed += ids


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
