"""bounces and replies: delivery status `bounced`, the bounce and reply tables,
letter.notify_replies and the inbound_dropped counter

Revision ID: 9b3d51e0a7c4
Revises: 9d4e6f2a1b35
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "9b3d51e0a7c4"
down_revision: str | None = "9d4e6f2a1b35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN, which SQLite does in place: a batch rebuild of `letter` would drop
    # the triggers that keep letter_tally. (Statuses are plain strings: `bounced` and
    # the `reply_notice` channel need no change to the delivery table.)
    op.add_column(
        "letter",
        sa.Column("notify_replies", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "bounce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"], ["appeal.id"], name="fk_bounce_appeal_id_appeal", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["delivery.id"],
            name="fk_bounce_delivery_id_delivery",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name="fk_bounce_organisation_id_organisation",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bounce"),
        sa.UniqueConstraint("key", name="uq_bounce_key"),
    )
    op.create_index("ix_bounce_appeal", "bounce", ["appeal_id", "received_at"])
    op.create_index("ix_bounce_delivery_id", "bounce", ["delivery_id"])
    op.create_table(
        "reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=254), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"], ["appeal.id"], name="fk_reply_appeal_id_appeal", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["delivery.id"],
            name="fk_reply_delivery_id_delivery",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["letter_id"], ["letter.id"], name="fk_reply_letter_id_letter", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name="fk_reply_organisation_id_organisation",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reply"),
        sa.UniqueConstraint("key", name="uq_reply_key"),
    )
    op.create_index("ix_reply_appeal", "reply", ["appeal_id", "kind", "received_at"])
    op.create_index("ix_reply_letter_id", "reply", ["letter_id"])
    op.create_table(
        "inbound_dropped",
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("reason", name="pk_inbound_dropped"),
    )


def downgrade() -> None:
    op.drop_table("inbound_dropped")
    op.drop_index("ix_reply_letter_id", table_name="reply")
    op.drop_index("ix_reply_appeal", table_name="reply")
    op.drop_table("reply")
    op.drop_index("ix_bounce_delivery_id", table_name="bounce")
    op.drop_index("ix_bounce_appeal", table_name="bounce")
    op.drop_table("bounce")
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_column("notify_replies")
