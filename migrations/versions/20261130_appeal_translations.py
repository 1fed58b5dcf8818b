"""appeal.translations, target.translations: an appeal's texts in its other languages

Revision ID: 3b8d5e1f7a20
Revises: 3f6d2c8a9b71
Create Date: 2026-11-30 09:00:00

The existing columns (appeal.title, summary, sender_name; target.name, title,
organisation, address) keep the texts in the appeal's default language, which is what
every existing row holds already: an existing appeal gets an empty map and reads as
before, so no row needs rewriting.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "3b8d5e1f7a20"
down_revision: str | None = "3f6d2c8a9b71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN in place on both databases; the server default fills existing rows.
    for table in ("appeal", "target"):
        op.add_column(
            table,
            sa.Column("translations", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        )


def downgrade() -> None:
    for table in ("appeal", "target"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("translations")
