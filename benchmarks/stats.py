"""Stats and dashboard on a big appeal: PostgreSQL, 1,000,000 letters across 20 appeals.

    .venv/bin/python benchmarks/stats.py [--letters 1000000] [--rounds 15] [--reuse]

Builds its own database (outcry_bench_stats; OUTCRY_BENCH_PG_ADMIN names the server),
generates the letters and their deliveries with one INSERT … SELECT generate_series
each, then times, through the real app (token auth, routing, rendering):
  - GET /api/v1/appeals/{slug}/stats as admin and as a union,
  - GET /dashboard/{slug} and GET /dashboard,
against `SELECT count(*) FROM letter WHERE appeal_id = …` for the same appeal, in the
same run. Prints medians, the ratios, and the EXPLAIN ANALYZE of every query the stats
make, so the index each one uses is on record.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from app.appeals import service as appeals
from app.appeals.schemas import AppealIn
from app.core import paths
from app.core.auth import Principal
from app.core.config import Settings
from app.core.db import engine_for, session_factory, session_scope
from app.core.migrate import upgrade
from app.main import create_app
from app.models import Appeal, utcnow
from app.organisers import service as organisers
from app.organisers import stats

ADMIN = os.environ.get("OUTCRY_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
NAME = "outcry_bench_stats"
APPEALS = 20
ORGANISATIONS = 10

COUNTRIES = "'{KZ,RU,GB,DE,FR,UA,US,BR,IN,ZA,TR,KG,UZ,PL,IT,ES,SE,NO,JP,AU}'::text[]"
# A campaign some weeks in. h is a hash of g, so status, country, organisation and the
# appeal (g % 20) do not move in step.
LETTER_STATUS = """CASE
  WHEN h % 100 < 70 THEN 'sent'
  WHEN h % 100 < 78 THEN 'queued'
  WHEN h % 100 < 82 THEN 'failed'
  WHEN h % 100 < 92 THEN 'pending_confirmation'
  WHEN h % 100 < 96 THEN 'expired'
  WHEN h % 100 < 99 THEN 'held'
  ELSE 'rejected' END"""

GENERATE_LETTERS = f"""
INSERT INTO letter (public_id, key, appeal_id, organisation_id, signer_name, signer_email,
  signer_country, signer_city, signer_organisation, message, language, share_email,
  copy_to_me, status, subject, body, created_at, confirmed_at, sent_at)
SELECT 'L' || g, md5(g::text), a.ids[1 + g % {APPEALS}],
  CASE WHEN (h / 100) % 10 < 3 THEN NULL ELSE o.ids[1 + (h / 1000) % {ORGANISATIONS}] END,
  'Signer ' || g, 'p' || g || '@example.net',
  ({COUNTRIES})[1 + (h / 10000) % 20], 'City', 'Union ' || (g % 50), '', 'en', false, false,
  s.status, 'Free them now', 'Dear President, release them.',
  s.created, CASE WHEN s.status NOT IN ('pending_confirmation', 'expired') THEN
    s.created + interval '1 hour' END,
  CASE WHEN s.status = 'sent' THEN s.created + interval '70 minutes' END
FROM generate_series(1, :n) AS g
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM appeal) AS a
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM organisation) AS o
CROSS JOIN LATERAL (SELECT abs(hashint4(g)::bigint) AS h) AS hashed
CROSS JOIN LATERAL (SELECT {LETTER_STATUS} AS status,
  -- Signed over 60 days, in the order of their ids, as a real table fills up.
  now() - ((:n - g) * 5184000.0 / :n) * interval '1 second' AS created) AS s
"""  # noqa: S608  built from this script's own constants

# One e-mail to the targets for every letter that got that far, one confirmation
# e-mail for every letter: the delivery table a campaign of that size would have.
GENERATE_DELIVERIES = """
INSERT INTO delivery (letter_id, appeal_id, organisation_id, channel, recipients, cc, status,
  attempts, max_attempts, next_attempt_at, last_error, message_id, sent_at, created_at)
SELECT l.id, l.appeal_id, l.organisation_id, c.channel, '["president@example.org"]', '[]',
  CASE WHEN c.channel = 'confirmation' THEN 'sent'
       WHEN l.status = 'sent' THEN 'sent'
       WHEN l.status = 'failed' THEN 'failed'
       ELSE 'queued' END,
  1, 8, l.created_at,
  CASE WHEN c.channel = 'email' AND l.status = 'failed' THEN '550 5.1.1 mailbox unavailable' END,
  '<bench.' || l.id || '.' || c.channel || '@localhost>', l.sent_at, l.created_at
FROM letter l
CROSS JOIN (VALUES ('confirmation'), ('email')) AS c(channel)
WHERE c.channel = 'confirmation' OR l.status IN ('sent', 'failed', 'queued')
"""


def pg_url(name: str) -> str:
    base = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def build(url: str, letters: int) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{NAME}"')
    upgrade(url)
    with session_scope(session_factory(engine_for(url))) as session:
        orgs = [{"slug": f"union-{i:02d}", "name": f"Union {i:02d}"} for i in range(ORGANISATIONS)]
        for i in range(APPEALS):
            data = AppealIn.model_validate(
                {
                    "slug": f"appeal-{i:02d}",
                    "title": f"Appeal {i:02d}",
                    "status": "open",
                    "languages": ["en"],
                    "sender_name": "Benchmark campaign",
                    "targets": [{"name": "A. President", "email": "president@example.org"}],
                    "letter": {"en": {"subject": "Free them", "body": "Release them."}},
                    "goal": 100_000,
                    "organisations": orgs,
                }
            )
            appeals.save_appeal(
                session, data=data, directory=paths.letter_templates_dir(), by="test"
            )
    with engine_for(url).begin() as conn:
        started = time.perf_counter()
        conn.execute(text(GENERATE_LETTERS), {"n": letters})
        print(f"generated {letters:,} letters in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        result = conn.execute(text(GENERATE_DELIVERIES))
        print(f"generated {result.rowcount:,} deliveries in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def median_ms(fn: Callable[[], Any], rounds: int) -> float:
    fn()  # warm: caches, plans, the first connection
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def capture(engine: Engine, fn: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The SQL statements `fn` sends, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return seen


def plans(engine: Engine, statements: list[tuple[str, Any]]) -> None:
    """EXPLAIN ANALYZE each statement; print its first line and every scan it makes."""
    with engine.connect() as conn:
        for statement, params in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines = [r[0] for r in rows]
            query = " ".join(statement.split())
            print(f"\n  -- {query[:150]}{'…' if len(query) > 150 else ''}")
            scans = [ln.strip() for ln in lines if re.search(r"Scan|Execution Time", ln)]
            for line in scans:
                print(f"     {line}")


def spread(engine: Engine) -> None:
    """Rewrite letter_tally so each (appeal, organisation, status) count lies in all 64
    shards (the same sums), as concurrent signing on 64 connections leaves it."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TEMPORARY TABLE folded AS SELECT appeal_id, organisation_key, status,"
                " sum(n) AS n FROM letter_tally GROUP BY 1, 2, 3"
            )
        )
        conn.execute(text("DELETE FROM letter_tally"))
        conn.execute(
            text(
                "INSERT INTO letter_tally (appeal_id, organisation_key, status, shard, n)"
                " SELECT appeal_id, organisation_key, status, s,"
                " n / 64 + CASE WHEN s < n % 64 THEN 1 ELSE 0 END"
                " FROM folded CROSS JOIN generate_series(0, 63) AS s"
            )
        )
        rows = conn.execute(text("SELECT count(*) FROM letter_tally")).scalar_one()
    print(f"letter_tally spread over 64 shards: {rows:,} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="keep an existing database")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="spread every count over all 64 tally shards, as a crowd signing on many "
        "connections leaves them (the worst case for reading)",
    )
    args = parser.parse_args()

    url = pg_url(NAME)
    if not args.reuse:
        build(url, args.letters)
    else:
        upgrade(url)
    engine = engine_for(url)
    if args.spread:
        spread(engine)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM letter")).scalar_one()
        deliveries = conn.execute(text("SELECT count(*) FROM delivery")).scalar_one()
        version = conn.execute(text("SHOW server_version")).scalar_one()
    print(f"PostgreSQL {version}: {total:,} letters, {deliveries:,} deliveries, {APPEALS} appeals")

    with session_scope(session_factory(engine)) as session:
        appeal = appeals.get_appeal(session, "appeal-07")
        union = organisers.get_organisation(session, "union-03")
        _, admin_raw = organisers.create_token(session, organisation=None, name="bench", by="test")
        _, union_raw = organisers.create_token(session, organisation=union, name="bench", by="test")
        appeal_id, union_id = appeal.id, union.id
    with engine.connect() as conn:
        in_appeal = conn.execute(
            text("SELECT count(*) FROM letter WHERE appeal_id = :a"), {"a": appeal_id}
        ).scalar_one()
    print(f"appeal-07: {in_appeal:,} letters\n")

    def baseline() -> None:
        with engine.connect() as conn:
            conn.execute(
                text("SELECT count(*) FROM letter WHERE appeal_id = :a"), {"a": appeal_id}
            ).scalar_one()

    settings = Settings(
        database_url=url,
        secret_key="bench",
        outbox_dir=Path(tempfile.mkdtemp(prefix="outcry-bench-")),
    )
    app = create_app(settings, deliver_in_process=False)
    admin = {"Authorization": f"Bearer {admin_raw}"}
    union_auth = {"Authorization": f"Bearer {union_raw}"}
    figures: dict[str, float] = {}
    with TestClient(app) as client:

        def get(path: str, headers: dict[str, str]) -> Callable[[], None]:
            def call() -> None:
                response = client.get(path, headers=headers)
                assert response.status_code == 200, response.text

            return call

        figures["SELECT count(*) of the appeal's letters"] = median_ms(baseline, args.rounds)
        figures["GET /api/v1/appeals/appeal-07/stats (admin)"] = median_ms(
            get("/api/v1/appeals/appeal-07/stats", admin), args.rounds
        )
        figures["GET /api/v1/appeals/appeal-07/stats (union)"] = median_ms(
            get("/api/v1/appeals/appeal-07/stats", union_auth), args.rounds
        )
        figures["GET /dashboard/appeal-07 (admin)"] = median_ms(
            get("/dashboard/appeal-07", admin), args.rounds
        )
        figures["GET /dashboard (admin, 20 appeals)"] = median_ms(
            get("/dashboard", admin), args.rounds
        )
        figures["GET /dashboard (union)"] = median_ms(get("/dashboard", union_auth), args.rounds)
        figures["GET / (public list, counts)"] = median_ms(get("/", {}), args.rounds)

    base = figures["SELECT count(*) of the appeal's letters"]
    print(f"{'median of ' + str(args.rounds):<48} {'ms':>9} {'× count(*)':>11}")
    for name, ms in figures.items():
        print(f"{name:<48} {ms:9.1f} {ms / base:11.1f}")

    print("\nQuery plans of one stats call (admin, then union):")
    with session_scope(session_factory(engine)) as session:
        appeal_row = session.get(Appeal, appeal_id)
        assert appeal_row is not None
        for who in (
            Principal(via="token", organisation_id=None),
            Principal(via="token", organisation_id=union_id),
        ):
            statements = capture(
                engine, functools.partial(stats.appeal_stats, session, appeal=appeal_row, who=who)
            )
            plans(engine, statements)
        print("\nQuery plan of the latest failures on the appeal's dashboard page (admin):")
        plans(
            engine,
            capture(
                engine,
                lambda: stats.latest_failures(
                    session, appeal=appeal_row, who=Principal(via="token", organisation_id=None)
                ),
            ),
        )
        print("\nQuery plan of the dashboard overview (admin):")
        plans(
            engine,
            capture(
                engine,
                lambda: stats.overview(session, who=Principal(via="token", organisation_id=None)),
            ),
        )
    print(f"\nbaseline plan: count(*) at {utcnow():%Y-%m-%d %H:%M} UTC")
    plans(
        engine,
        [("SELECT count(*) FROM letter WHERE appeal_id = %(a)s", {"a": appeal_id})],
    )


if __name__ == "__main__":
    main()
