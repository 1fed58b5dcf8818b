"""A crowd against `outcry serve`: every request answered, nothing lost, nothing half-stored.

Real processes on loopback, on SQLite (the embedded default) and PostgreSQL. Before
admission control, 64 clients stalled the server for 20 s and then got 500s; SQLite said
"database is locked"; a burst left letters committed without their deliveries.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from app.core.db import engine_for, session_factory, session_scope
from app.core.migrate import upgrade
from app.models import Channel, Delivery, Letter
from tests.appeals.factories import make_appeal
from tests.conftest import SECRET
from tests.support.private import private_postgres
from tests.support.processes import outcry_env, serving

pytestmark = pytest.mark.e2e

CROWD = 200


def env_for(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return outcry_env(
        database_url=db_url,
        outbox_dir=str(tmp_path / "outbox"),
        secret_key=SECRET,
        base_url="http://127.0.0.1",
        sign_limit_per_hour="0",
        **extra,
    )


def new_appeal(db_url: str) -> str:
    with session_scope(session_factory(engine_for(db_url))) as session:
        return make_appeal(session, slug="crowd").slug


def signer(n: int | str) -> dict[str, Any]:
    return {"name": f"Signer {n}", "email": f"crowd-{n}@example.net", "country": "KZ"}


async def at_once(requests: list[tuple[str, str, dict[str, Any] | None]]) -> list[httpx.Response]:
    """Send every request at the same moment, each on a connection of its own."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(client.request(method, url, json=body) for method, url, body in requests)
        )


def stored(db_url: str) -> dict[str, int]:
    """Letters by public id, with how many confirmation deliveries each has."""
    with session_scope(session_factory(engine_for(db_url))) as session:
        rows = session.execute(
            select(Letter.public_id, func.count(Delivery.id))
            .outerjoin(
                Delivery,
                (Delivery.letter_id == Letter.id) & (Delivery.channel == Channel.confirmation),
            )
            .group_by(Letter.public_id)
        )
        return {public_id: int(n) for public_id, n in rows}


def assert_answered(responses: list[httpx.Response], ok: int) -> Counter[int]:
    """Every answer is `ok`, or a 503 that says when to come back; never a 500."""
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {ok, 503}, codes
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1
            # Turned away for the crowd, never for a database that failed under it.
            assert response.json()["error"] == "busy", response.text
    return codes


def test_a_crowd_signs_at_once(db_url: str, tmp_path: Path) -> None:
    slug = new_appeal(db_url)
    with serving(env_for(db_url, tmp_path), tmp_path) as base:
        url = f"{base}/api/v1/appeals/{slug}/letters"
        responses = asyncio.run(at_once([("POST", url, signer(n)) for n in range(CROWD)]))
        codes = assert_answered(responses, 202)
        accepted = [r.json()["id"] for r in responses if r.status_code == 202]
        # Those turned away were told to come back; coming back, they get in.
        for n, response in enumerate(responses):
            if response.status_code == 503:
                again = httpx.post(url, json=signer(n), timeout=60)
                assert again.status_code == 202
                accepted.append(again.json()["id"])
        reads = asyncio.run(at_once([("GET", f"{base}/api/v1/appeals/{slug}", None)] * CROWD))
        read_codes = assert_answered(reads, 200)
    kept = stored(db_url)
    # A 202 means stored, exactly once, with its confirmation e-mail; nothing else stored.
    assert sorted(kept) == sorted(accepted), codes
    assert len(accepted) == CROWD
    assert set(kept.values()) == {1}
    assert read_codes[200] >= 1


@pytest.mark.postgres
def test_postgresql_going_away_costs_503s_then_recovers(tmp_path: Path) -> None:
    with private_postgres() as pg:
        upgrade(pg.url)
        slug = new_appeal(pg.url)
        answers: list[tuple[str, int, str | None, str | None]] = []
        # Requests that began and ended while PostgreSQL was down: none may be a 202. (One
        # that began then may reach the database after it is back, on a busy machine, and
        # rightly be accepted.)
        while_down: list[int] = []
        phase = ["up"]
        done = threading.Event()

        def sign_continuously(base: str, worker: int) -> None:
            n = 0
            with httpx.Client(timeout=60) as client:
                while not done.is_set():
                    n += 1
                    started_in = phase[0]  # a request is counted in the phase it began in
                    response = client.post(
                        f"{base}/api/v1/appeals/{slug}/letters", json=signer(f"{worker}-{n}")
                    )
                    public_id = response.json().get("id") if response.status_code == 202 else None
                    if started_in == "down" and phase[0] == "down":
                        while_down.append(response.status_code)
                    answers.append(
                        (
                            started_in,
                            response.status_code,
                            response.headers.get("retry-after"),
                            public_id,
                        )
                    )

        def count(when: str, code: int) -> int:
            return sum(1 for p, c, _, _ in answers if p == when and c == code)

        def wait_for(when: str, code: int, n: int) -> None:
            for _ in range(1200):
                if count(when, code) >= n:
                    return
                done.wait(0.05)
            raise AssertionError(f"no {n} × {code} while {when}: {Counter(answers)}")

        with serving(env_for(pg.url, tmp_path), tmp_path) as base:
            clients = [threading.Thread(target=sign_continuously, args=(base, w)) for w in range(4)]
            for thread in clients:
                thread.start()
            try:
                wait_for("up", 202, 10)
                phase[0] = "stopping"
                pg.stop()
                phase[0] = "down"
                wait_for("down", 503, 10)
                ready = httpx.get(f"{base}/readyz", timeout=60)
                assert ready.status_code == 503
                page = httpx.get(
                    f"{base}/a/{slug}?lang=ru", headers={"Accept": "text/html"}, timeout=60
                )
                assert page.status_code == 503
                assert page.headers["retry-after"]
                assert "База данных Outcry не отвечает" in page.text
                phase[0] = "starting"
                pg.start()
                phase[0] = "back"
                wait_for("back", 202, 10)
            finally:
                done.set()
                for thread in clients:
                    thread.join(60)
        codes = Counter(code for _, code, _, _ in answers)
        assert set(codes) <= {202, 503}, codes
        assert all(after for _, code, after, _ in answers if code == 503)
        assert 202 not in while_down, Counter(while_down)
        assert while_down, "no request began and ended while PostgreSQL was down"
        accepted = [public_id for _, code, _, public_id in answers if code == 202]
        kept = stored(pg.url)
        # Every 202 is stored once, with its delivery; nothing is stored half.
        assert set(accepted) <= set(kept)
        assert len(set(accepted)) == len(accepted)
        assert set(kept.values()) == {1}
        engine_for(pg.url).dispose()
