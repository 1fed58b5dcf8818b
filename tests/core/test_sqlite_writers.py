"""SQLite's one write lock, taken in turn by Outcry's processes (db.WriterFile)."""

from __future__ import annotations

import errno
import fcntl
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from app.core import db
from app.core.db import WriterFile, make_engine
from app.core.errors import DatabaseUnavailable
from tests.support.processes import wait_until

WAIT = 30


def engines(path: Path) -> tuple[Engine, Engine]:
    """Two engines on one database, each with its lock of its own, as two processes have."""
    url = f"sqlite:///{path}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE said (word TEXT)"))
    return first, second


def write(engine: Engine, word: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO said VALUES (:word)"), {"word": word})


def words(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT word FROM said ORDER BY rowid")).scalars())


def test_a_writer_waits_for_another_process_s_writer_on_the_file_not_in_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = engines(tmp_path / "outcry.db")

    @event.listens_for(second, "connect")
    def no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        # Reaching SQLite's lock while the other holds it now fails at once.
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    found_taken = threading.Event()
    acquire = WriterFile.acquire

    def noting_acquire(self: WriterFile, deadline: float) -> bool:
        if acquire(self, time.monotonic()):
            return True
        found_taken.set()
        return acquire(self, deadline)

    monkeypatch.setattr(WriterFile, "acquire", noting_acquire)
    with first.connect() as conn, ThreadPoolExecutor(1) as pool:
        trans = conn.begin()
        conn.execute(text("INSERT INTO said VALUES ('first')"))
        waiting = pool.submit(write, second, "second")
        assert found_taken.wait(WAIT)
        trans.commit()
        conn.close()  # the connection goes back to the pool: the lock is let go
        waiting.result(WAIT)
    assert words(first) == ["first", "second"]


def test_a_writer_gives_up_after_the_busy_wait_and_lets_go_of_its_own_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    first, second = engines(tmp_path / "outcry.db")
    with first.connect() as conn:
        trans = conn.begin()
        conn.execute(text("INSERT INTO said VALUES ('first')"))
        with pytest.raises(DatabaseUnavailable):
            write(second, "refused")
        trans.commit()
    write(second, "second")
    assert words(first) == ["first", "second"]


def _try_in_child(writer: WriterFile, got: Any) -> None:
    got.value = writer.acquire(time.monotonic())


def test_a_forked_child_does_not_share_its_parent_s_lock(tmp_path: Path) -> None:
    writer = WriterFile(str(tmp_path / "outcry.db"))
    assert writer.acquire(time.monotonic())
    context = multiprocessing.get_context("fork")
    got = context.Value("b", 2)
    child = context.Process(target=_try_in_child, args=(writer, got))
    child.start()
    child.join(WAIT)
    assert (child.exitcode, got.value) == (0, 0)
    writer.release()
    assert writer.acquire(time.monotonic())


def test_without_a_lock_file_writers_take_turns_in_sqlite_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = WriterFile(str(tmp_path / "gone" / "outcry.db"))
    assert writer.acquire(time.monotonic())
    writer.release()
    assert "no lock file" in caplog.text


def test_a_process_that_waits_goes_before_one_that_takes_the_lock_again(tmp_path: Path) -> None:
    """A web process under a crowd takes the lock again the moment it lets go; another
    process waiting for it goes first all the same."""
    database = str(tmp_path / "outcry.db")
    first, second = WriterFile(database), WriterFile(database)
    order: list[str] = []

    def take(writer: WriterFile, name: str) -> None:
        assert writer.acquire(time.monotonic() + WAIT)
        order.append(name)
        writer.release()

    def someone_waits() -> bool:
        queue = os.open(f"{database}-writer-queue", os.O_RDONLY)
        try:
            fcntl.flock(queue, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(queue)
        return False

    assert first.acquire(time.monotonic())
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(take, second, "second")
        wait_until(someone_waits)
        first.release()
        take(first, "first")
        waiting.result(WAIT)
    assert order == ["second", "first"]


def test_on_a_file_system_without_flock_writers_take_turns_in_sqlite_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = engines(tmp_path / "outcry.db")

    def no_locks(*_args: object) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    write(first, "first")
    write(second, "second")
    assert words(first) == ["first", "second"]
    assert "cannot lock" in caplog.text
