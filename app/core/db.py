"""Engine, the request's session dependency (and in_session(), its one-thread form for the
busiest route), and session_scope() for workers and CLI."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Any, Protocol, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import DatabaseUnavailable

_T = TypeVar("_T")

log = logging.getLogger(__name__)

# How long a SQLite writer waits for the write lock before giving up (the request then
# answers 503 with Retry-After): other writers' transactions take milliseconds.
SQLITE_BUSY_SECONDS = 10.0
# How long anything waits for a pooled connection. Admission control (app/core/admission.py)
# sizes the pool so that an admitted request never waits; this only bounds the unexpected.
POOL_TIMEOUT_SECONDS = 10.0
# Connections a web process keeps beyond its admitted requests: its delivery loop, /readyz,
# /metrics and a streamed export's own session.
POOL_RESERVE = 4


# How often a SQLite writer looks again whether another process has let go of the write
# lock (WriterFile).
WRITER_FILE_POLL_SECONDS = 0.0005


class WriterFile:
    """SQLite's write lock, taken in turn by Outcry's processes: an flock on a file beside
    the database, held from a transaction's BEGIN IMMEDIATE until its connection goes back
    to the pool.

    Without it, a process's writer that found another process writing waited in SQLite's
    busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms
    between looks, and takes the lock only if it is free at that moment: beside `outcry
    serve`'s delivery process, a signature waited up to a third of a second behind a
    lock that had been free for most of it. This looks every half millisecond instead,
    and only while another process writes.

    And turns: a process whose writer finds the lock taken says so, with a shared lock on
    a second file (`…-writer-queue`), until it has the lock; a process that is not
    waiting itself lets such a process go first. Otherwise a web process under a crowd,
    whose next writer takes the lock the moment its last one lets go, kept the delivery
    process out for as long as the crowd lasted.
    """

    def __init__(self, database: str):
        self.path = f"{database}-writer"
        self._fds: tuple[int, int] | None = None
        self._pid = 0
        os.register_at_fork(after_in_child=partial(_forget_in_child, weakref.ref(self)))

    def acquire(self, deadline: float) -> bool:
        """Take the lock, waiting until `deadline` (time.monotonic()) at most."""
        fds = self._open()
        if fds is None:
            return True  # no file to lock: other processes are waited for in SQLite
        lock, queue = fds
        waiting = False
        try:
            while True:
                if waiting or not _others_wait(queue):
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return True
                    except BlockingIOError:
                        waiting = waiting or _join(queue)
                if time.monotonic() >= deadline:
                    return False
                time.sleep(WRITER_FILE_POLL_SECONDS)
        except OSError as exc:
            # A file system without flock (some network and FUSE mounts): as without a file.
            log.warning("writers take turns in SQLite alone: cannot lock %s (%s)", self.path, exc)
            self._fds = None
            return True
        finally:
            if waiting:
                fcntl.flock(queue, fcntl.LOCK_UN)

    def release(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            fcntl.flock(self._fds[0], fcntl.LOCK_UN)

    def _open(self) -> tuple[int, int] | None:
        # Once a process: a forked child shares its parent's open files, and with them the
        # parent's locks. Read-only is enough for a lock, and lets processes of another
        # user take turns too.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC
            try:
                self._fds = (
                    os.open(self.path, flags, 0o644),
                    os.open(f"{self.path}-queue", flags, 0o644),
                )
            except OSError as exc:
                log.warning("writers take turns in SQLite alone: no lock file (%s)", exc)
                self._fds = None
        return self._fds


def _forget_in_child(ref: weakref.ref[WriterFile]) -> None:
    """After a fork: the child opens files of its own, and leaves its copies of the
    parent's alone (closing them lets go of no lock; unlocking them would)."""
    writer = ref()
    if writer is not None and writer._fds is not None:
        for fd in writer._fds:
            os.close(fd)
        writer._fds, writer._pid = None, 0


def _others_wait(queue: int) -> bool:
    """Whether another process's writer is waiting for the lock (holds `queue` shared)."""
    try:
        fcntl.flock(queue, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(queue, fcntl.LOCK_UN)
    return False


def _join(queue: int) -> bool:
    """Say this process is waiting; False if another is just then looking (try again)."""
    try:
        fcntl.flock(queue, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _sqlite_transactions(engine: Engine, *, foreign_keys: bool) -> None:
    """Make SQLite's write transactions real, and make its writers queue, not fail.

    pysqlite began a transaction by itself only before an INSERT, UPDATE or DELETE, so a
    SAVEPOINT taken first became the outermost transaction and releasing it committed a
    letter alone, before its deliveries existed. Its own handling is switched off
    (isolation_level None, as SQLAlchemy's recipe does) and Outcry begins transactions
    itself: right before the first statement that writes (a SAVEPOINT included), with
    BEGIN IMMEDIATE, which takes the write lock up front. Reads before it run on their
    own, as they did, so a transaction that only reads never blocks or waits; and a
    writer never reads in an old snapshot and then fails at once with "database is
    locked" when it writes, whatever the busy timeout.

    This process's writers queue on a lock of ours, handed on when the previous writer's
    connection goes back to the pool, after its commit; then take turns with other
    processes' writers on a lock file (WriterFile).
    """
    writer = threading.Lock()
    database = engine.url.database
    shared = WriterFile(database) if database and database != ":memory:" else None
    owner, begun = "outcry_writer", "outcry_begun"

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: even asking for WAL waits for a lock while another
        # connection checkpoints, and without it a new connection failed at once.
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
        # WAL lets readers go on while one connection writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    def before_execute(conn: Connection, cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.info
        if info.get(begun) or not conn.in_transaction():
            return
        # Reads, and pragmas (which SQLite ignores inside a transaction), begin nothing.
        if statement.lstrip()[:6].upper() in ("SELECT", "PRAGMA"):
            return
        if not info.get(owner):
            deadline = time.monotonic() + SQLITE_BUSY_SECONDS
            if not writer.acquire(timeout=SQLITE_BUSY_SECONDS):
                raise DatabaseUnavailable()
            try:
                if shared is not None and not shared.acquire(deadline):
                    raise DatabaseUnavailable()
            except BaseException:
                writer.release()
                raise
            info[owner] = True
        cursor.execute("BEGIN IMMEDIATE")
        info[begun] = True

    def end(conn: Connection) -> None:
        conn.info.pop(begun, None)

    def release(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        if record is not None:
            record.info.pop(begun, None)
            if record.info.pop(owner, False):
                if shared is not None:
                    shared.release()
                writer.release()

    event.listen(engine, "connect", connect)
    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)
    for moment in ("checkin", "invalidate", "soft_invalidate", "detach"):
        event.listen(engine.pool, moment, release)


def make_engine(
    url: str, *, pool_size: int = 5, pre_ping: bool = True, migrating: bool = False
) -> Engine:
    """An engine for `url`; `pool_size` connections kept, never more.

    `pre_ping` tests each connection as it leaves the pool (a round trip): right for
    workers and commands, which may hold an engine across a database restart. The web
    app does without it on its busiest path: a connection that died with a restart fails
    one request with 503, and SQLAlchemy then replaces every connection in the pool.

    Migrations run with SQLite's foreign keys off, as batch migrations rebuild tables by
    dropping them (with the keys on, dropping `letter` would delete every delivery).
    """
    pool: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": POOL_TIMEOUT_SECONDS,
        # A failed statement's error (and so a logged traceback) would otherwise quote its
        # parameters: supporters' names and addresses.
        "hide_parameters": True,
    }
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        _sqlite_transactions(engine, foreign_keys=not migrating)
        return engine
    engine = create_engine(url, pool_pre_ping=pre_ping, **pool)
    event.listen(engine, "connect", _plan_each_time)
    return engine


def _plan_each_time(dbapi_connection: Any, _record: Any) -> None:
    """PostgreSQL plans each statement for its values and the tables as they are now.

    psycopg prepares a statement on the server once a connection has run it five times,
    and PostgreSQL then keeps one generic plan for it, chosen for the tables as they were
    then, until they are analysed again. Planned while an appeal was new, a signature's
    look-up of the address's earlier letter scanned every letter of the appeal once it had
    thousands (a sequential scan, or the appeal's status index): a crowd on a new appeal
    made each signature cost PostgreSQL more than the one before (issue 10,
    tests/core/test_plans.py). Planning every time costs a signature about 0.15 ms of the
    database's CPU, and keeps the statement's parsing saved."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


_engines: dict[tuple[str, int, bool], Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str, *, pool_size: int = 5, pre_ping: bool = True) -> Engine:
    """One engine per URL (and pool settings) per process."""
    with _engines_lock:
        key = (url, pool_size, pre_ping)
        if key not in _engines:
            _engines[key] = make_engine(url, pool_size=pool_size, pre_ping=pre_ping)
        return _engines[key]


def dispose_engine(url: str) -> None:
    """Close and forget the engines for `url` (tests that throw databases away)."""
    with _engines_lock:
        engines = [_engines.pop(key) for key in list(_engines) if key[0] == url]
    for engine in engines:
        engine.dispose()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction for a worker task or CLI command: commit on success, else roll back."""
    session = factory()
    try:
        yield session
    except BaseException:
        _roll_back(session)
        raise
    _commit_and_close(session)


# The request's hold on its turn, counted in its ASGI scope: a route may take the session
# and the session factory together, and holds one turn until the last of them lets go.
_TURNS = "outcry.turns"


async def _take_turn(request: Request) -> None:
    """Wait for this request's turn to use the database (or 503: see admission.py),
    unless it holds one already."""
    held = request.scope.get(_TURNS, 0)
    if not held:
        await request.app.state.admission.acquire()
    request.scope[_TURNS] = held + 1


def _let_go_of_turn(request: Request) -> None:
    held = request.scope[_TURNS] - 1
    request.scope[_TURNS] = held
    if not held:
        request.app.state.admission.release()


async def admitted(request: Request) -> AsyncIterator[None]:
    """This request's turn to use the database (or 503), held until the response ends."""
    await _take_turn(request)
    try:
        yield
    finally:
        _let_go_of_turn(request)


Admitted = Annotated[None, Depends(admitted)]


# session.info keys: delivery ids to enqueue after the commit (delivery.service puts them
# there), and those commit_now() has already committed.
ENQUEUE, COMMITTED = "enqueue", "committed"


class _Dispatcher(Protocol):  # app.delivery.dispatch's, which core does not import
    def enqueue(self, ids: Sequence[int]) -> None: ...


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session, in the request's turn to use the database (or 503: see
    admission.py); committed when the route returns, rolled back on error.

    Delivery ids the services asked to enqueue (session.info[ENQUEUE]) are handed
    to the dispatcher only after the commit, so a rolled-back letter enqueues nothing.

    async, so that opening the session (no I/O: it connects when first used) takes no
    worker thread; the commit or rollback and the close take one, all in one call. A
    plain generator took a thread hop at each end (issue 10). It takes the request's turn
    itself: `admitted` as a generator dependency of its own cost a signature about 4% of
    its CPU in FastAPI's exit stack.
    """
    await _take_turn(request)
    try:
        factory: sessionmaker[Session] = request.app.state.sessions
        session = factory()
        try:
            yield session
        except BaseException:
            # Shielded: a request cancelled (its client gone) still gives its connection back.
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(_roll_back, session)
                finally:
                    # What commit_now() committed before the failure stays committed: send it.
                    await _hand_over(request, session, only=COMMITTED)
            raise
        if not session.in_transaction():
            # The route committed on its own thread (commit_now), and added or changed
            # nothing since (either would have begun a transaction): nothing is left that
            # waits on the database, so no worker thread is taken. Closing a session with
            # no transaction does no I/O; it only lets go of its objects.
            session.close()
            await _hand_over(request, session)
            return
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_commit, session, request.app.state.dispatcher)
    finally:
        _let_go_of_turn(request)


async def in_session(request: Request, work: Callable[[Session], _T]) -> _T:
    """Run `work` with a session of its own, in the request's turn to use the database (or
    503), on one worker thread that also commits the session (rolls it back if `work`
    fails) and closes it; then enqueue what it committed, as get_session() does.

    For the busiest route, signing: the same as a plain `def` route taking SessionDep,
    without FastAPI's handling of a generator dependency (its exit stack, shielded exit
    and cancel scopes), which was about 5% of a signature's CPU (issue 10). `work`
    returns before the commit, so whatever it builds from the session must not need
    what the commit does (a database default it has not read, say); or it commits
    itself with commit_now(), whose ids are enqueued here all the same, even if `work`
    then fails.
    """
    await _take_turn(request)
    try:
        factory: sessionmaker[Session] = request.app.state.sessions
        session = factory()
        try:
            # Not cancelled halfway: anyio waits for a worker thread to finish its call.
            result = await anyio.to_thread.run_sync(_work_and_commit, session, work)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _hand_over(request, session, only=COMMITTED)
            raise
        await _hand_over(request, session)
        return result
    finally:
        _let_go_of_turn(request)


def _work_and_commit(session: Session, work: Callable[[Session], _T]) -> _T:
    try:
        result = work(session)
    except BaseException:
        _roll_back(session)
        raise
    if session.in_transaction():
        _commit_and_close(session)
    else:  # `work` committed (commit_now) and began nothing since: no I/O is left
        session.close()
    return result


async def _hand_over(request: Request, session: Session, *, only: str = "") -> None:
    """Enqueue the session's committed ids from the event loop. The dispatcher only drops
    them in its list, except a closed one (Batching after close(), at shutdown), which
    hands them to Redis itself: that waits on a worker thread, not in the loop."""
    dispatcher: _Dispatcher = request.app.state.dispatcher
    if getattr(dispatcher, "closed", False):
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(partial(_enqueue, session, dispatcher, only=only))
    else:
        _enqueue(session, dispatcher, only=only)


def commit_now(session: Session) -> None:
    """Commit the request's work now, on the route's thread, instead of after it returns.

    For the busiest writes (a signature): the commit then follows the INSERTs on the same
    thread, with no hop back to the event loop and out to another worker thread between
    them, which under a crowd waits its turn behind every other request. SQLite's one
    write lock (and a PostgreSQL transaction's row locks) are held from the first write
    until the commit, so that wait was a wait for every other writer too (issue 10).
    Anything the route does afterwards in the session begins a new transaction, which
    get_session() commits as usual; ids to enqueue still go after the commit, even if
    the request then fails."""
    session.commit()
    session.info.setdefault(COMMITTED, []).extend(session.info.pop(ENQUEUE, []))


def _commit(session: Session, dispatcher: _Dispatcher) -> None:
    """Commit (else roll back) and close, as session_scope() does; then enqueue. If the
    commit fails, what commit_now() committed before it is enqueued all the same."""
    try:
        _commit_and_close(session)
    except BaseException:
        _enqueue(session, dispatcher, only=COMMITTED)
        raise
    _enqueue(session, dispatcher)


def _enqueue(session: Session, dispatcher: _Dispatcher, *, only: str = "") -> None:
    """Hand the committed deliveries' ids to the dispatcher: those commit_now() committed,
    and unless `only` names those alone, the ids the services asked for (session.info)."""
    keys = (only,) if only else (COMMITTED, ENQUEUE)
    ids = [i for k in keys for i in session.info.pop(k, [])]
    if ids:
        dispatcher.enqueue(ids)


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _roll_back(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


# scope="function": commit before the response is sent, so a 202 always means stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_sessions(request: Request, _turn: Admitted) -> sessionmaker[Session]:
    """The session factory, for a streamed response that reads the database after the
    request's own session has closed; it holds its turn until the stream ends."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
