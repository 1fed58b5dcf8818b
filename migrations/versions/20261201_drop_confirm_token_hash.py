"""letter: drop confirm_token_hash, never used (confirmation links are signed, not stored)

On SQLite the column carries a UNIQUE constraint, so it cannot be dropped in place: batch
mode rebuilds `letter`, and dropping the old table drops its triggers (the letter_tally
ones) and lets Alembic remake its indexes as it reflects them. Every index and trigger of
`letter` is therefore read from sqlite_master before the rebuild and made again after it,
exactly as it was. PostgreSQL drops the column in place and keeps both.

Revision ID: a87405a296db
Revises: 9b3d51e0a7c4
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a87405a296db"
down_revision: str | None = "9b3d51e0a7c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_indexes_and_triggers() -> list[tuple[str, str, str]]:
    """(type, name, SQL) of every index and trigger on `letter` made by a statement (not
    the automatic indexes of its constraints, which the rebuild makes itself)."""
    if op.get_bind().dialect.name != "sqlite":
        return []
    rows = op.get_bind().execute(
        sa.text(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'letter'"
            " AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
        )
    )
    return [(kind, name, sql) for kind, name, sql in rows]


def _remake(kept: list[tuple[str, str, str]]) -> None:
    for kind, name, sql in kept:
        op.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
        op.execute(sql)


def upgrade() -> None:
    kept = _sqlite_indexes_and_triggers()
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_constraint("uq_letter_confirm_token_hash", type_="unique")
        batch_op.drop_column("confirm_token_hash")
    _remake(kept)


def downgrade() -> None:
    kept = _sqlite_indexes_and_triggers()
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirm_token_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            "uq_letter_confirm_token_hash", ["confirm_token_hash"]
        )
    _remake(kept)
