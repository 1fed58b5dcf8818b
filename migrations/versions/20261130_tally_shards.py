"""letter_tally: spread each count over shards, so signing an appeal has no hot row

Every signature of an appeal used to update the same letter_tally row from its trigger
and hold that row's lock until commit, so an appeal's signatures were taken one at a
time (measured: 13 of 32 clients waiting on the lock). On PostgreSQL the trigger now
adds to the row of its connection's shard (backend pid % 64), so concurrent signatures
on different connections never wait for each other; readers already sum the rows.
SQLite has one writer at a time and keeps shard 0.

Revision ID: 3f6d2c8a9b71
Revises: 3d8c2f6a9b14
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f6d2c8a9b71"
down_revision: str | None = "3d8c2f6a9b14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 64

_PG_NEW = (
    "SELECT appeal_id, coalesce(organisation_id, 0) AS organisation_key, status, 1 AS delta"
    " FROM new_rows"
)
_PG_OLD = (
    "SELECT appeal_id, coalesce(organisation_id, 0) AS organisation_key, status, -1 AS delta"
    " FROM old_rows"
)
PG_CHANGES = {
    "insert": _PG_NEW,
    "update": f"{_PG_OLD} UNION ALL {_PG_NEW}",
    "delete": _PG_OLD,
}
# One statement's changes, summed and upserted in key order (so two transactions lock
# tally rows in the same order and cannot deadlock), into this connection's shard.
PG_UPSERT = {
    "sharded": """
INSERT INTO letter_tally AS t (appeal_id, organisation_key, status, shard, n)
SELECT appeal_id, organisation_key, status, pg_backend_pid() % {shards}, sum(delta)
FROM ({changes}) AS d
GROUP BY appeal_id, organisation_key, status
HAVING sum(delta) <> 0
ORDER BY appeal_id, organisation_key, status
ON CONFLICT (appeal_id, organisation_key, status, shard) DO UPDATE SET n = t.n + excluded.n;
""",
    "single": """
INSERT INTO letter_tally AS t (appeal_id, organisation_key, status, n)
SELECT appeal_id, organisation_key, status, sum(delta) FROM ({changes}) AS d
GROUP BY appeal_id, organisation_key, status
HAVING sum(delta) <> 0
ORDER BY appeal_id, organisation_key, status
ON CONFLICT (appeal_id, organisation_key, status) DO UPDATE SET n = t.n + excluded.n;
""",
}

_SQLITE_ADD = {
    "sharded": """
INSERT INTO letter_tally (appeal_id, organisation_key, status, shard, n)
VALUES ({row}.appeal_id, coalesce({row}.organisation_id, 0), {row}.status, 0, {delta})
ON CONFLICT (appeal_id, organisation_key, status, shard) DO UPDATE SET n = n + ({delta});
""",
    "single": """
INSERT INTO letter_tally (appeal_id, organisation_key, status, n)
VALUES ({row}.appeal_id, coalesce({row}.organisation_id, 0), {row}.status, {delta})
ON CONFLICT (appeal_id, organisation_key, status) DO UPDATE SET n = n + ({delta});
""",
}


def sqlite_triggers(kind: str) -> list[str]:
    add = _SQLITE_ADD[kind]
    return [
        "CREATE TRIGGER letter_tally_insert AFTER INSERT ON letter BEGIN"
        + add.format(row="NEW", delta=1)
        + "END",
        "CREATE TRIGGER letter_tally_delete AFTER DELETE ON letter BEGIN"
        + add.format(row="OLD", delta=-1)
        + "END",
        "CREATE TRIGGER letter_tally_update AFTER UPDATE ON letter"
        " WHEN OLD.status IS NOT NEW.status OR OLD.appeal_id IS NOT NEW.appeal_id"
        " OR OLD.organisation_id IS NOT NEW.organisation_id BEGIN"
        + add.format(row="OLD", delta=-1)
        + add.format(row="NEW", delta=1)
        + "END",
    ]


def _pg_functions(kind: str) -> None:
    for operation, changes in PG_CHANGES.items():
        upsert = PG_UPSERT[kind].format(changes=changes, shards=SHARDS)
        op.execute(
            f"CREATE OR REPLACE FUNCTION letter_tally_on_{operation}() RETURNS trigger"
            f" LANGUAGE plpgsql AS $$ BEGIN {upsert} RETURN NULL; END $$"
        )


def _drop_sqlite_triggers() -> None:
    # Before letter_tally is rebuilt: SQLite will not rename a table into place while a
    # trigger names the table it replaces.
    for operation in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS letter_tally_{operation}")


def _create_sqlite_triggers(kind: str) -> None:
    for statement in sqlite_triggers(kind):
        op.execute(statement)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _primary_key(columns: list[str]) -> None:
    with op.batch_alter_table("letter_tally") as batch_op:
        batch_op.drop_constraint("pk_letter_tally", type_="primary")
        batch_op.create_primary_key("pk_letter_tally", columns)


def upgrade() -> None:
    if not _postgresql():
        _drop_sqlite_triggers()
    op.add_column(
        "letter_tally",
        sa.Column("shard", sa.SmallInteger(), server_default="0", nullable=False),
    )
    _primary_key(["appeal_id", "organisation_key", "status", "shard"])
    if _postgresql():
        _pg_functions("sharded")
    else:
        _create_sqlite_triggers("sharded")


def downgrade() -> None:
    if not _postgresql():
        _drop_sqlite_triggers()
    # Fold the shards back into one row per key before the key loses its shard.
    op.execute(
        "CREATE TEMPORARY TABLE letter_tally_folded AS"
        " SELECT appeal_id, organisation_key, status, sum(n) AS n FROM letter_tally"
        " GROUP BY appeal_id, organisation_key, status"
    )
    op.execute("DELETE FROM letter_tally")
    _primary_key(["appeal_id", "organisation_key", "status"])
    with op.batch_alter_table("letter_tally") as batch_op:
        batch_op.drop_column("shard")
    op.execute(
        "INSERT INTO letter_tally (appeal_id, organisation_key, status, n)"
        " SELECT appeal_id, organisation_key, status, n FROM letter_tally_folded"
    )
    op.execute("DROP TABLE letter_tally_folded")
    if _postgresql():
        _pg_functions("single")
    else:
        _create_sqlite_triggers("single")
