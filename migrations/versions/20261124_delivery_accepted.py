"""delivery.accepted: recipients that already have the message

Revision ID: 5c1f0d7a9e42
Revises: 4378844c4779
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "5c1f0d7a9e42"
down_revision: str | None = "4378844c4779"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A server may take a message for some recipients and refuse others; the next
    # attempt must go only to those still waiting, so nobody gets the letter twice.
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accepted", sa.JSON(), server_default="[]", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("accepted")
