"""appeal.revision: a number drawn anew whenever the appeal, its targets or its
organisations change, so a web process may keep its copy of an appeal and check it
against one column instead of loading the appeal with its targets and organisations for
every signature (issue 10).

Triggers keep it, on both databases, whoever writes: the editor, the CLI, a script in
psql. Drawn at random rather than counted, so that a database dropped and made again, or
restored from a backup, never shows a web process an appeal with the same id and the same
revision but other contents. On SQLite a rebuild of `appeal`, `target`,
`appeal_organisation` or `organisation` in batch mode drops these triggers: a migration
that rebuilds one must make them again (as a87405a296db does for `letter`'s).

Revision ID: c3e1f7a2d9b8
Revises: a87405a296db
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3e1f7a2d9b8"
down_revision: str | None = "a87405a296db"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A new revision: SQLite's random() is 64 bits; PostgreSQL's random() has 52 bits of
# precision.
SQLITE_DRAW = "random()"
PG_DRAW = "(random() * 4503599627370496)::bigint"

# (table, operation, the appeals it touches) for SQLite's row triggers.
_SQLITE_CHILDREN = [
    ("target", "INSERT", "NEW.appeal_id"),
    ("target", "UPDATE", "OLD.appeal_id, NEW.appeal_id"),
    ("target", "DELETE", "OLD.appeal_id"),
    ("appeal_organisation", "INSERT", "NEW.appeal_id"),
    ("appeal_organisation", "UPDATE", "OLD.appeal_id, NEW.appeal_id"),
    ("appeal_organisation", "DELETE", "OLD.appeal_id"),
    (
        "organisation",
        "UPDATE",
        "SELECT appeal_id FROM appeal_organisation WHERE organisation_id = NEW.id",
    ),
    (
        "organisation",
        "DELETE",
        "SELECT appeal_id FROM appeal_organisation WHERE organisation_id = OLD.id",
    ),
]

_PG_CHILDREN = {
    "target": "UPDATE appeal SET revision = {draw} WHERE id IN ({rows}.appeal_id)",
    "appeal_organisation": "UPDATE appeal SET revision = {draw} WHERE id IN ({rows}.appeal_id)",
    "organisation": (
        "UPDATE appeal SET revision = {draw} WHERE id IN"
        " (SELECT appeal_id FROM appeal_organisation WHERE organisation_id = {rows}.id)"
    ),
}


def sqlite_triggers() -> list[str]:
    """Every trigger that keeps appeal.revision on SQLite, as CREATE TRIGGER statements."""
    statements = [
        "CREATE TRIGGER appeal_revision_insert AFTER INSERT ON appeal BEGIN"
        f" UPDATE appeal SET revision = {SQLITE_DRAW} WHERE id = NEW.id; END",
        # Not when the statement drew the revision itself (this trigger's own UPDATE
        # would otherwise be followed by another).
        "CREATE TRIGGER appeal_revision_update AFTER UPDATE ON appeal"
        " WHEN NEW.revision = OLD.revision BEGIN"
        f" UPDATE appeal SET revision = {SQLITE_DRAW} WHERE id = NEW.id; END",
    ]
    for table, operation, appeals in _SQLITE_CHILDREN:
        statements.append(
            f"CREATE TRIGGER appeal_revision_{table}_{operation.lower()}"
            f" AFTER {operation} ON {table} BEGIN"
            f" UPDATE appeal SET revision = {SQLITE_DRAW} WHERE id IN ({appeals}); END"
        )
    return statements


def _pg_child_function(table: str) -> str:
    new = _PG_CHILDREN[table].format(draw=PG_DRAW, rows="NEW")
    old = _PG_CHILDREN[table].format(draw=PG_DRAW, rows="OLD")
    return (
        f"CREATE OR REPLACE FUNCTION appeal_revision_on_{table}() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN"
        f" IF TG_OP <> 'INSERT' THEN {old}; END IF;"
        f" IF TG_OP <> 'DELETE' THEN {new}; END IF;"
        " RETURN NULL; END $$"
    )


def upgrade() -> None:
    op.add_column(
        "appeal", sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False)
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION appeal_revision_draw() RETURNS trigger"
            f" LANGUAGE plpgsql AS $$ BEGIN NEW.revision := {PG_DRAW}; RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER appeal_revision BEFORE INSERT OR UPDATE ON appeal"
            " FOR EACH ROW EXECUTE FUNCTION appeal_revision_draw()"
        )
        for table in _PG_CHILDREN:
            op.execute(_pg_child_function(table))
            op.execute(
                f"CREATE TRIGGER appeal_revision AFTER INSERT OR UPDATE OR DELETE ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION appeal_revision_on_{table}()"
            )
        op.execute(f"UPDATE appeal SET revision = {PG_DRAW}")
    else:
        for statement in sqlite_triggers():
            op.execute(statement)
        op.execute(f"UPDATE appeal SET revision = {SQLITE_DRAW}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("appeal", *_PG_CHILDREN):
            op.execute(f"DROP TRIGGER IF EXISTS appeal_revision ON {table}")
        op.execute("DROP FUNCTION IF EXISTS appeal_revision_draw()")
        for table in _PG_CHILDREN:
            op.execute(f"DROP FUNCTION IF EXISTS appeal_revision_on_{table}()")
    else:
        for statement in sqlite_triggers():
            name = statement.split()[2]
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("appeal") as batch_op:
        batch_op.drop_column("revision")
