"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from app.appeals import service as appeals
from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.core.migrate import upgrade
from app.models import Base


def test_models_match_migrations(db_url: str) -> None:
    with engine_for(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_an_appeal_from_before_translations_reads_as_before(tmp_path: Path) -> None:
    """Existing rows hold the default language's texts already: the migration only adds
    the empty maps beside them (SQLite here; the same ADD COLUMN runs on PostgreSQL in
    every test session's migration)."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "7e2a4b9c1d03")
    with engine_for(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO appeal (id, slug, title, summary, status, languages, "
                "default_language, sender_name, copies, require_confirmation, attach_pdf, "
                "moderation, page_size, max_attempts, rate_limit, created_at, updated_at) "
                "VALUES (1, 'old', 'Free them', 'Two leaders.', 'open', '[\"en\", \"ru\"]', "
                "'en', 'Campaign', '[]', 1, 0, 0, 'A4', 8, 60, "
                "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO target (appeal_id, position, name, title, organisation, address) "
                "VALUES (1, 0, 'A. President', 'President', 'Office', 'Astana')"
            )
        )
    dispose_engine(url)

    upgrade(url)

    try:
        with session_scope(session_factory(engine_for(url))) as session:
            appeal = appeals.get_appeal(session, "old")
            assert appeal.translations == {}
            assert appeal.targets[0].translations == {}
            shown = appeals.in_language(appeal, "ru")
            assert (shown.title, shown.targets[0].name) == ("Free them", "A. President")
            assert shown.untranslated == (
                "title",
                "summary",
                "sender_name",
                "targets.0.name",
                "targets.0.title",
                "targets.0.organisation",
                "targets.0.address",
            )
    finally:
        dispose_engine(url)
