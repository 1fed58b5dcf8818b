"""letter.rejection_reason: what a moderator tells the supporter when declining a letter

Revision ID: 7e2a4b9c1d03
Revises: 5c1f0d7a9e42
Create Date: 2026-11-28 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "7e2a4b9c1d03"
down_revision: str | None = "5c1f0d7a9e42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN, which SQLite does in place: a batch rebuild of `letter` would drop
    # the triggers that keep letter_tally.
    op.add_column(
        "letter", sa.Column("rejection_reason", sa.Text(), server_default="", nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_column("rejection_reason")
