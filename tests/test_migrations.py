"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text

from app.appeals import service as appeals
from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.core.errors import DuplicateSignature
from app.core.migrate import alembic_config, upgrade
from app.letters import privacy
from app.models import Appeal, Base, Delivery, Letter, LetterStatus, LetterTally, StatusEvent
from tests.conftest import SECRET, make_settings
from tests.letters.factories import sign


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


def test_the_privacy_migration_keeps_every_letter_and_hashes_addresses(
    db_url: str, tmp_path: Path
) -> None:
    """Upgrading a database with letters in it: on SQLite the letter table is rebuilt,
    which must neither cascade to deliveries and events nor lose the tally's triggers."""
    command.downgrade(alembic_config(db_url), BEFORE_PRIVACY)
    with engine_for(db_url).begin() as conn:
        for statement in OLD_ROWS:
            conn.execute(text(statement))
    upgrade(db_url, secret_key=SECRET)

    settings = make_settings(db_url, tmp_path)
    with session_scope(session_factory(engine_for(db_url))) as session:
        letter = session.scalars(select(Letter)).one()
        assert letter.email_hash == privacy.email_hash(settings, "ada@example.net")
        assert letter.finished_at == letter.sent_at
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1
        assert session.scalar(select(func.count()).select_from(StatusEvent)) == 1
        # The tally's triggers are there: a new letter is counted, the old one refused.
        appeal = session.scalars(select(Appeal)).one()
        with pytest.raises(DuplicateSignature):
            sign(session, appeal, settings, email="Ada@example.net")
        session.rollback()
        sign(session, appeal, settings, email="bo@example.net")
        session.commit()
        tallied = dict(
            session.execute(
                select(LetterTally.status, func.sum(LetterTally.n)).group_by(LetterTally.status)
            ).all()
        )
        assert tallied == {LetterStatus.sent: 1, LetterStatus.queued: 1}


def _letter_indexes_and_triggers(url: str) -> set[tuple[str, str]]:
    """(name, definition) of every index and trigger on `letter`."""
    with engine_for(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            query = (
                "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'letter'"
                " AND type IN ('index', 'trigger') AND sql IS NOT NULL"
            )
        else:
            query = (
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'letter'"
                " UNION SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
                " WHERE tgrelid = 'letter'::regclass AND NOT tgisinternal"
            )
        return {(name, sql) for name, sql in conn.execute(text(query))}


def test_dropping_confirm_token_hash_keeps_every_index_and_trigger(db_url: str) -> None:
    """SQLite rebuilds `letter` to drop the column, both ways; the tally's triggers and
    the partial indexes must come through as they were."""
    at_head = _letter_indexes_and_triggers(db_url)
    assert any(name == "letter_tally_insert" for name, _ in at_head)

    command.downgrade(alembic_config(db_url), BEFORE_CONFIRM_TOKEN_DROP)
    before = _letter_indexes_and_triggers(db_url)
    upgrade(db_url)

    assert {(n, sql) for n, sql in before if n != "uq_letter_confirm_token_hash"} == at_head
    assert _letter_indexes_and_triggers(db_url) == at_head


BEFORE_CONFIRM_TOKEN_DROP = "9b3d51e0a7c4"
BEFORE_PRIVACY = "7e2a4b9c1d03"
# Ids far above what the sequences hand out next, so new rows after the upgrade fit.
OLD_ROWS = [
    "INSERT INTO appeal (id, slug, title, summary, status, languages, default_language,"
    " sender_name, copies, require_confirmation, attach_pdf, moderation, page_size,"
    " max_attempts, rate_limit, created_at, updated_at, letter) VALUES (1001, 'free-them', 'Free"
    " them', '', 'open', '[\"en\"]', 'en', 'Campaign', '[]', false, false, false, 'A4', 8, 60,"
    " '2026-01-01 10:00:00', '2026-01-01 10:00:00',"
    ' \'{"en": {"subject": "S", "body": "{{ signer.name }}"}}\')',
    "INSERT INTO target (id, appeal_id, position, name, title, organisation, email, address)"
    " VALUES (1001, 1001, 0, 'President', '', '', 'president@example.org', '')",
    "INSERT INTO letter (id, public_id, key, appeal_id, signer_name, signer_email,"
    " signer_country, signer_city, signer_organisation, message, language, share_email,"
    " copy_to_me, status, subject, body, created_at, confirmed_at, sent_at, rejection_reason)"
    " VALUES (1001, 'p1', 'k1', 1001, 'Ada', 'ada@example.net', 'GB', '', '', '', 'en', false,"
    " false, 'sent', 'S', 'Ada', '2026-01-01 10:00:00', '2026-01-01 10:00:00',"
    " '2026-01-01 11:00:00', '')",
    "INSERT INTO letter_tally (appeal_id, organisation_key, status, n) VALUES (1001, 0, 'sent', 1)"
    " ON CONFLICT (appeal_id, organisation_key, status) DO UPDATE SET n = 1",
    "INSERT INTO delivery (id, letter_id, appeal_id, channel, recipients, cc, status,"
    " attempts, max_attempts, next_attempt_at, message_id, created_at, accepted, sent_at)"
    " VALUES (1001, 1001, 1001, 'email', '[\"president@example.org\"]', '[]', 'sent', 1, 8,"
    " '2026-01-01 10:00:00', '<m@x>', '2026-01-01 10:00:00', '[]', '2026-01-01 11:00:00')",
    "INSERT INTO status_event (id, letter_id, delivery_id, from_status, to_status, detail,"
    " created_at) VALUES (1001, 1001, 1001, 'sending', 'sent', '250 OK', '2026-01-01 11:00:00')",
]
