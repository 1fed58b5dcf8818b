"""Real parts for every test: SQLite and PostgreSQL migrated with Alembic, Redis, SMTP.

Each database is migrated once per session; between tests the tables are emptied
(PostgreSQL) or the migrated file is copied afresh (SQLite). Tests commit for real,
so the same fixtures serve tests that run several processes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.core.migrate import upgrade
from app.delivery import broker, transports
from app.delivery.deliverer import Deliverer, Outcome
from app.delivery.ratelimit import clear_limiters
from app.delivery.service import UNFINISHED
from app.letters import privacy
from app.main import create_app
from app.models import Base, Delivery, utcnow
from tests.support import workers
from tests.support.smtp import SmtpSink

PG_ADMIN = os.environ.get("OUTCRY_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
PG_NAME = workers.database_name(os.environ.get("OUTCRY_TEST_PG_NAME", "outcry_test"))
REDIS_URL = workers.redis_url(os.environ.get("OUTCRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"))
SECRET = "test-secret-key-not-for-production"

# Property tests draw the same inputs on every run, so a failure reproduces on anyone's
# machine, and have no deadline: on a busy machine a slow example is not a failing one.
hypothesis_settings.register_profile("outcry", derandomize=True, deadline=None, database=None)
hypothesis_settings.load_profile("outcry")


def _pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A PostgreSQL database of our own, dropped and migrated once per test session."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN} ({exc}). Start it "
            "(scripts/test does) or set OUTCRY_TEST_PG_ADMIN."
        )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_NAME}"')
    url = _pg_url(PG_NAME)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine_for(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that asks for the database runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "outcry.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
    yield url
    if request.param == "sqlite":
        dispose_engine(url)


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    """In-memory rate limits are per process: never let one test's count reach the next,
    nor one test's dead Redis make the next skip Redis."""
    yield
    clear_limiters()
    broker.reset()


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}; start it (scripts/test does).")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()
    clear_limiters()


def make_settings(db_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "outbox_dir": tmp_path / "outbox",
        "secret_key": SECRET,
        "base_url": "http://testserver",
        "broker_url": "",
        "smtp_url": "",
        "retry_base_seconds": 0.01,
        "retry_cap_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """A session whose work is committed when the test's block ends (services flush)."""
    with session_scope(session_factory(engine_for(settings.database_url))) as session:
        yield session


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, deliver_in_process=False)) as client:
        yield client


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def drain(settings: Settings, *, rounds: int = 50, horizon: float = 1.0) -> list[Outcome]:
    """Run the delivery service until nothing is due within `horizon` seconds (what a worker
    and its sweeper would do, quickly: tests make backoffs a few hundredths of a second).

    It runs on a thread of its own with its own event loop, so it works even while
    another loop (Playwright's) is running in the test's thread.
    """
    sessions = session_factory(engine_for(settings.database_url))
    deliverer = Deliverer(
        sessions, transports.make_transport(settings), settings, upkeep=privacy.upkeep
    )

    def pending() -> bool:
        soon = utcnow() + timedelta(seconds=horizon)
        with session_scope(sessions) as session:
            waiting = session.scalar(
                select(func.count()).where(
                    Delivery.status.in_(UNFINISHED), Delivery.next_attempt_at <= soon
                )
            )
        return bool(waiting)

    async def run() -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            for _ in range(rounds):
                ids = await asyncio.to_thread(deliverer.sweep)
                if ids:
                    outcomes += await deliverer.deliver_many(ids)
                elif not await asyncio.to_thread(pending):
                    break
                await asyncio.sleep(0.05)  # let test backoffs come due
        finally:
            await deliverer.transport.close()
        return outcomes

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()
