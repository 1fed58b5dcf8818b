"""The request's session: committed before the answer, ids enqueued only once committed,
and a route that commits on its own thread (commit_now) spares the extra thread call."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import db
from app.core.admission import Admission
from app.core.config import Settings
from app.core.db import (
    SessionDep,
    SessionsDep,
    commit_now,
    engine_for,
    in_session,
    session_factory,
    session_scope,
)
from app.delivery.service import enqueue_after_commit
from app.models import AuditEvent, Delivery, Letter
from tests.appeals.factories import make_appeal
from tests.letters.factories import form_data, signature
from tests.support.loops import in_event_loop

# Only bounds a wait for something that happens at once; never a measurement.
WAIT = 30.0


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

    @app.post("/commits-itself-then-waits")
    def commits_itself_then_waits(session: SessionDep) -> dict[str, str]:
        _audit(session, "first")
        commit_now(session)
        app.state.committed.set()
        assert app.state.go_on.wait(WAIT)
        return {}

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

    # in_session(): the route's work, its commit (or rollback) and close on one thread.
    @app.post("/in-session")
    async def in_session_route(request: Request) -> dict[str, int]:
        def work(session: Session) -> dict[str, int]:
            _audit(session, "in-session")
            enqueue_after_commit(session, [5])
            return {"busy": app.state.admission.busy}

        return await in_session(request, work)

    @app.post("/in-session-fails")
    async def in_session_fails(request: Request) -> dict[str, str]:
        def work(session: Session) -> dict[str, str]:
            _audit(session, "lost")
            enqueue_after_commit(session, [5])
            raise HTTPException(404)

        return await in_session(request, work)

    @app.post("/in-session-cannot-commit")
    async def in_session_cannot_commit(request: Request) -> dict[str, str]:
        def work(session: Session) -> dict[str, str]:
            session.add(AuditEvent(actor="test", action=None))  # NOT NULL: the commit fails
            enqueue_after_commit(session, [5])
            return {}

        return await in_session(request, work)

    return app, recorder


def _actions(settings: Settings) -> list[str]:
    with session_factory(engine_for(settings.database_url))() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.mark.parametrize(
    ("path", "status", "thread_calls", "handed", "kept"),
    [
        # Committed on the route's thread: the dependency takes no thread call at all.
        pytest.param("/commits-itself", 200, (0, 0), [7], ["itself"], id="commits-itself"),
        # A read after commit_now begins a new transaction, which the dependency commits.
        pytest.param("/commits-itself-then-reads", 200, (1, 0), [7], ["itself"], id="then-reads"),
        # So does a change to an object: it is not lost.
        pytest.param("/commits-itself-then-changes", 200, (1, 0), [], ["after"], id="then-changes"),
        # A failure keeps, and enqueues, only what commit_now committed.
        pytest.param("/commits-itself-then-fails", 404, (0, 1), [7], ["kept"], id="then-fails"),
        # Even when it is the dependency's commit that fails.
        pytest.param(
            "/commits-itself-then-cannot-commit",
            500,
            (1, 0),
            [7],
            ["kept"],
            id="then-cannot-commit",
        ),
        pytest.param("/fails-before-commit-now", 404, (0, 1), [], [], id="fails-before"),
        # The usual route: the dependency commits, then enqueues.
        pytest.param("/leaves-it", 200, (1, 0), [9], ["left"], id="leaves-it"),
        # in_session() commits on the work's own thread, then enqueues; rolls back on failure.
        pytest.param("/in-session", 200, (0, 0), [5], ["in-session"], id="in-session"),
        pytest.param("/in-session-fails", 404, (0, 1), [], [], id="in-session-fails"),
        pytest.param(
            "/in-session-cannot-commit", 500, (0, 0), [], [], id="in-session-cannot-commit"
        ),
    ],
)
def test_what_is_committed_and_enqueued_and_by_whom(
    app: tuple[FastAPI, Recorder],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    status: int,
    thread_calls: tuple[int, int],
    handed: list[int],
    kept: list[str],
) -> None:
    web, recorder = app
    calls = Calls(monkeypatch)
    with TestClient(web, raise_server_exceptions=False) as client:
        assert client.post(path).status_code == status
    assert web.state.admission.busy == 0  # the turn is given back, whatever happened
    assert (calls.commits, calls.rollbacks) == thread_calls
    assert recorder.handed == handed
    assert _actions(settings) == kept


def test_after_commit_now_another_writer_goes_on_before_the_route_returns(
    app: tuple[FastAPI, Recorder], settings: Settings
) -> None:
    # SQLite has one writer at a time (a process's writers queue on a lock of ours,
    # released when the writer's connection goes back to the pool): commit_now must
    # give it up at once, not when the request ends.
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's writers to different rows never wait for each other")
    web, _recorder = app
    web.state.committed, web.state.go_on = threading.Event(), threading.Event()
    with TestClient(web) as client, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.post, "/commits-itself-then-waits")
        assert web.state.committed.wait(WAIT)
        try:
            with session_scope(session_factory(engine_for(settings.database_url))) as other:
                _audit(other, "second")  # would wait for the writer lock, then fail
        finally:
            web.state.go_on.set()
        assert answer.result(WAIT).status_code == 200
    assert _actions(settings) == ["first", "second"]


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


def test_one_turn_a_request_held_until_its_stream_ends(settings: Settings) -> None:
    """The session takes the request's turn itself; with the session factory too (a
    streamed download), the request still holds one turn, until the stream's last byte."""
    app = FastAPI()
    app.state.sessions = session_factory(engine_for(settings.database_url))
    admission = app.state.admission = Admission(2, wait=0)
    app.state.dispatcher = Recorder()
    seen: list[tuple[str, int]] = []

    @app.get("/session")
    def with_session(session: SessionDep) -> dict[str, int]:
        seen.append(("session", admission.busy))
        return {}

    @app.get("/both")
    def with_both(session: SessionDep, sessions: SessionsDep) -> StreamingResponse:
        seen.append(("route", admission.busy))

        def body() -> Iterator[str]:
            for part in ("a", "b"):
                seen.append(("stream", admission.busy))
                yield part

        return StreamingResponse(body())

    with TestClient(app) as client:
        assert client.get("/session").status_code == 200
        assert admission.busy == 0
        answer = client.get("/both")
        assert answer.status_code == 200
        assert answer.text == "ab"
        assert admission.busy == 0
    assert seen == [("session", 1), ("route", 1), ("stream", 1), ("stream", 1)]


def test_in_session_works_in_the_request_s_turn_on_one_thread(
    app: tuple[FastAPI, Recorder], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, recorder = app
    threads: list[int] = []
    work_and_commit = db._work_and_commit

    def on_one_thread(*args: object) -> object:
        threads.append(threading.get_ident())
        return work_and_commit(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(db, "_work_and_commit", on_one_thread)
    with TestClient(web) as client:
        answer = client.post("/in-session")
    assert answer.json() == {"busy": 1}
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()  # a worker thread, not the event loop's
    assert recorder.in_loop == [True]


def test_signing_answers_422_at_once_and_503_without_a_turn(
    session: Session, settings: Settings
) -> None:
    """A body that cannot be a signature is refused before the request waits for a turn;
    a good one with no turn to be had gets 503 and Retry-After, and nothing is stored."""
    from app.main import create_app

    make_appeal(session)
    session.commit()
    web = create_app(settings, deliver_in_process=False)
    url = "/api/v1/appeals/free-them/letters"
    with TestClient(web) as client:
        assert client.portal is not None
        web.state.admission = admission = Admission(1, wait=0)
        web.state.dispatcher = Recorder()
        client.portal.call(admission.acquire)  # another request's turn
        assert client.post(url, json=signature(email="not-an-address")).status_code == 422
        refused = client.post(url, json=signature())
        assert refused.status_code == 503, refused.text
        assert "retry-after" in refused.headers
        assert session.scalar(select(func.count()).select_from(Letter)) == 0
        client.portal.call(admission.release)
        assert client.post(url, json=signature()).status_code == 202
    assert admission.busy == 0
