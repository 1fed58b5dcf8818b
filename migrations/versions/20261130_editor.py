"""audit_event, invitation; a delivery without a letter (an invitation's e-mail)

Revision ID: 9d4e6f2a1b35
Revises: 3b8d5e1f7a20
Create Date: 2026-11-30 12:00:00

Organisers run campaigns from the browser: every change they make is written to
audit_event, and an admin invites organisers by e-mail. The invitation goes through
the outbox like every other message, so delivery.letter_id (and its copy appeal_id)
may now be NULL, with delivery.invitation_id saying what the message is; the status
events of such a delivery have no letter either.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "9d4e6f2a1b35"
down_revision: str | None = "3b8d5e1f7a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROBLEMS = sa.text("status IN ('failed', 'retrying')")


def upgrade() -> None:
    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=300), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_invitation_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_token_hash")),
    )
    op.create_index(op.f("ix_invitation_email"), "invitation", ["email"], unique=False)
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"],
            ["appeal.id"],
            name=op.f("fk_audit_event_appeal_id_appeal"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_audit_event_organisation_id_organisation"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_appeal", "audit_event", ["appeal_id", "id"], unique=False)
    op.create_index(
        op.f("ix_audit_event_organisation_id"), "audit_event", ["organisation_id"], unique=False
    )
    # SQLite rebuilds the table in batch mode; its partial index is made again by hand so
    # its WHERE survives whatever the reflection of the old table keeps.
    op.drop_index("ix_delivery_appeal_problems", table_name="delivery")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.alter_column("letter_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("appeal_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("invitation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_delivery_invitation_id_invitation"),
            "invitation",
            ["invitation_id"],
            ["id"],
        )
    op.create_index(
        "ix_delivery_appeal_problems",
        "delivery",
        ["appeal_id", "next_attempt_at", "id"],
        unique=False,
        postgresql_where=PROBLEMS,
        sqlite_where=PROBLEMS,
    )
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.alter_column("letter_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM status_event WHERE letter_id IS NULL")
    op.execute("DELETE FROM delivery WHERE letter_id IS NULL")
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.alter_column("letter_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index("ix_delivery_appeal_problems", table_name="delivery")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_delivery_invitation_id_invitation"), type_="foreignkey"
        )
        batch_op.drop_column("invitation_id")
        batch_op.alter_column("appeal_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("letter_id", existing_type=sa.Integer(), nullable=False)
    op.create_index(
        "ix_delivery_appeal_problems",
        "delivery",
        ["appeal_id", "next_attempt_at", "id"],
        unique=False,
        postgresql_where=PROBLEMS,
        sqlite_where=PROBLEMS,
    )
    op.drop_index(op.f("ix_audit_event_organisation_id"), table_name="audit_event")
    op.drop_index("ix_audit_event_appeal", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index(op.f("ix_invitation_email"), table_name="invitation")
    op.drop_table("invitation")
