"""PostgreSQL plans a statement for the table as it is now, not as it was when the
connection first ran it.

psycopg prepares a statement on the server once a connection has run it five times, and
PostgreSQL then reuses one generic plan for it, chosen for the tables as they were. A
signature's look-up of the address's earlier letter, planned while an appeal had a few
letters, went on scanning every letter of the appeal once it had thousands: a crowd
signing a new appeal made PostgreSQL's CPU per signature grow with the appeal (issue 10).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import insert, text

from app.core.db import make_engine, session_factory, session_scope
from app.letters import service
from app.models import Letter, LetterStatus, table_of, utcnow
from tests.appeals.factories import make_appeal
from tests.conftest import _truncate, make_settings

EARLY, GROWN_TO = 50, 5000


def _letters(appeal_id: int, numbers: range) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "public_id": f"p{n}",
            "key": f"k{n}",
            "appeal_id": appeal_id,
            "language": "en",
            "signer_name": "Ada Example",
            "signer_email": f"ada{n}@example.net",
            "signer_organisation": "",
            "signer_country": "GB",
            "signer_city": "",
            "message": "",
            "share_email": False,
            "copy_to_me": False,
            "notify_replies": False,
            "rejection_reason": "",
            "hold_reason": "",
            "email_hash": f"h{n}",
            "status": LetterStatus.pending_confirmation,
            "subject": "Free them",
            "body": "Free them now.",
            "created_at": now,
        }
        for n in numbers
    ]


def _scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def test_the_earlier_letter_is_found_by_its_key_however_the_appeal_grew(
    pg_url: str, tmp_path: Path
) -> None:
    _truncate(pg_url)
    settings = make_settings(pg_url, tmp_path)
    engine = make_engine(pg_url, pool_size=1)  # one connection: the one that prepared it
    sessions = session_factory(engine)
    plan: Any = None
    try:
        with session_scope(sessions) as session:
            appeal = make_appeal(session)
            slug, appeal_id = appeal.slug, appeal.id
        letters = table_of(Letter)
        with session_scope(sessions) as session:
            session.execute(insert(letters), _letters(appeal_id, range(EARLY)))
        # Often enough to be prepared, and planned generically, while the appeal is new.
        for n in range(15):
            with session_scope(sessions) as session:
                service.appeal_to_sign(
                    session, slug=slug, address=f"early{n}@example.net", settings=settings
                )
        with session_scope(sessions) as session:
            session.execute(insert(letters), _letters(appeal_id, range(EARLY, GROWN_TO)))

        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert isinstance(raw, psycopg.Connection)
            with raw.cursor() as cursor:
                cursor.execute(
                    "SELECT name FROM pg_prepared_statements"
                    " WHERE statement LIKE '%LEFT OUTER JOIN letter%'"
                )
                [(name,)] = cursor.fetchall()
                explain = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {}({}, {})").format(
                    sql.Identifier(name), sql.Literal("h7"), sql.Literal(slug)
                )
                cursor.execute(explain)
                [(plan,)] = cursor.fetchall()
    finally:
        engine.dispose()
    if isinstance(plan, str):
        plan = json.loads(plan)
    [letter_scan] = [s for s in _scans(plan[0]["Plan"]) if s["Relation Name"] == "letter"]
    assert letter_scan["Node Type"] in ("Index Scan", "Index Only Scan"), letter_scan
    assert letter_scan["Index Name"] == "uq_letter_appeal_email_hash", letter_scan
    assert "email_hash" in letter_scan["Index Cond"], letter_scan


def test_connections_plan_each_statement_for_its_values(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    finally:
        engine.dispose()
