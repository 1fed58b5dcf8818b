"""organisers: organiser scope, appeal participants, login sessions, stats indexes

Letter statuses `held`, `rejected`, `sample` and channels `rejection`, `sample` need
no DDL: enums are stored as plain strings (see models._enum).

Deliveries get their letter's appeal and organisation (backfilled here), so an appeal's
delivery counts need no join; the letter index the stats scan becomes covering on
PostgreSQL (INCLUDE is ignored elsewhere); letter_tally, kept by triggers, holds the
letter counts per appeal, organisation and status. Figures: benchmarks/stats.py.

Revision ID: 4378844c4779
Revises: 81acc88e8fef
Create Date: 2026-11-23 12:10:54.185541
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4378844c4779"
down_revision: str | None = "81acc88e8fef"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LETTER_STATS_INCLUDE = ["organisation_id", "signer_country", "confirmed_at", "sent_at"]

# letter_tally is kept by triggers. PostgreSQL: one statement trigger per operation,
# summing the statement's changes from its transition tables and upserting them in key
# order (so two transactions lock tally rows in the same order and cannot deadlock);
# changes that cancel out (a status rewritten to itself) touch no row.
_PG_UPSERT = """
INSERT INTO letter_tally AS t (appeal_id, organisation_key, status, n)
SELECT appeal_id, organisation_key, status, sum(delta) FROM ({changes}) AS d
GROUP BY appeal_id, organisation_key, status
HAVING sum(delta) <> 0
ORDER BY appeal_id, organisation_key, status
ON CONFLICT (appeal_id, organisation_key, status) DO UPDATE SET n = t.n + excluded.n;
"""
_PG_NEW = "SELECT appeal_id, coalesce(organisation_id, 0) AS organisation_key, status, 1 AS delta FROM new_rows"
_PG_OLD = "SELECT appeal_id, coalesce(organisation_id, 0) AS organisation_key, status, -1 AS delta FROM old_rows"
PG_TRIGGERS = {
    "insert": ("REFERENCING NEW TABLE AS new_rows", _PG_NEW),
    "update": (
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        f"{_PG_OLD} UNION ALL {_PG_NEW}",
    ),
    "delete": ("REFERENCING OLD TABLE AS old_rows", _PG_OLD),
}

# SQLite has row triggers only; it has one writer at a time, so order does not matter.
_SQLITE_ADD = """
INSERT INTO letter_tally (appeal_id, organisation_key, status, n)
VALUES ({row}.appeal_id, coalesce({row}.organisation_id, 0), {row}.status, {delta})
ON CONFLICT (appeal_id, organisation_key, status) DO UPDATE SET n = n + ({delta});
"""
SQLITE_TRIGGERS = [
    "CREATE TRIGGER letter_tally_insert AFTER INSERT ON letter BEGIN"
    + _SQLITE_ADD.format(row="NEW", delta=1)
    + "END",
    "CREATE TRIGGER letter_tally_delete AFTER DELETE ON letter BEGIN"
    + _SQLITE_ADD.format(row="OLD", delta=-1)
    + "END",
    "CREATE TRIGGER letter_tally_update AFTER UPDATE ON letter"
    " WHEN OLD.status IS NOT NEW.status OR OLD.appeal_id IS NOT NEW.appeal_id"
    " OR OLD.organisation_id IS NOT NEW.organisation_id BEGIN"
    + _SQLITE_ADD.format(row="OLD", delta=-1)
    + _SQLITE_ADD.format(row="NEW", delta=1)
    + "END",
]


def create_tally_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for operation, (referencing, changes) in PG_TRIGGERS.items():
            op.execute(
                f"CREATE FUNCTION letter_tally_on_{operation}() RETURNS trigger"
                " LANGUAGE plpgsql AS $$ BEGIN"
                + _PG_UPSERT.format(changes=changes)
                + " RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER letter_tally_{operation} AFTER {operation.upper()} ON letter"
                f" {referencing} FOR EACH STATEMENT"
                f" EXECUTE FUNCTION letter_tally_on_{operation}()"
            )
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def drop_tally_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for operation in ("insert", "update", "delete"):
        op.execute(
            f"DROP TRIGGER IF EXISTS letter_tally_{operation}"
            + (" ON letter" if postgresql else "")
        )
        if postgresql:
            op.execute(f"DROP FUNCTION IF EXISTS letter_tally_on_{operation}()")


def upgrade() -> None:
    op.create_table(
        "appeal_organisation",
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"],
            ["appeal.id"],
            name=op.f("fk_appeal_organisation_appeal_id_appeal"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_appeal_organisation_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "appeal_id", "organisation_id", name=op.f("pk_appeal_organisation")
        ),
    )
    with op.batch_alter_table("appeal_organisation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appeal_organisation_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "login_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("organiser_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organiser_id"],
            ["organiser.id"],
            name=op.f("fk_login_session_organiser_id_organiser"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_login_session_token_hash")),
    )
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_session_organiser_id"), ["organiser_id"], unique=False
        )

    with op.batch_alter_table("organiser", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_organiser_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_organiser_organisation_id_organisation"),
            "organisation",
            ["organisation_id"],
            ["id"],
            ondelete="CASCADE",
        )

    # Deliveries: add the columns, copy them from the letters, then require the appeal.
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("appeal_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE delivery SET"
        " appeal_id = (SELECT letter.appeal_id FROM letter WHERE letter.id = delivery.letter_id),"
        " organisation_id = (SELECT letter.organisation_id FROM letter"
        " WHERE letter.id = delivery.letter_id)"
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.alter_column("appeal_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(
            "ix_delivery_appeal",
            ["appeal_id", "organisation_id", "channel", "status"],
            unique=False,
        )
        batch_op.create_index(
            "ix_delivery_appeal_problems",
            ["appeal_id", "next_attempt_at", "id"],
            unique=False,
            postgresql_where=sa.text("status IN ('failed', 'retrying')"),
            sqlite_where=sa.text("status IN ('failed', 'retrying')"),
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_delivery_organisation_id_organisation"),
            "organisation",
            ["organisation_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_delivery_appeal_id_appeal"),
            "appeal",
            ["appeal_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_index("ix_letter_appeal_status")
        batch_op.create_index(
            "ix_letter_appeal_status",
            ["appeal_id", "status"],
            unique=False,
            postgresql_include=LETTER_STATS_INCLUDE,
        )

    op.create_table(
        "letter_tally",
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("organisation_key", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending_confirmation",
                "held",
                "queued",
                "sent",
                "failed",
                "expired",
                "rejected",
                "sample",
                name="letterstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "appeal_id", "organisation_key", "status", name=op.f("pk_letter_tally")
        ),
    )
    op.execute(
        "INSERT INTO letter_tally (appeal_id, organisation_key, status, n)"
        " SELECT appeal_id, coalesce(organisation_id, 0), status, count(*) FROM letter"
        " GROUP BY appeal_id, coalesce(organisation_id, 0), status"
    )
    # After every batch operation on `letter`: rebuilding a SQLite table drops its triggers.
    create_tally_triggers()


def downgrade() -> None:
    drop_tally_triggers()
    op.drop_table("letter_tally")

    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_index("ix_letter_appeal_status")
        batch_op.create_index("ix_letter_appeal_status", ["appeal_id", "status"], unique=False)

    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_delivery_appeal_id_appeal"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_delivery_organisation_id_organisation"), type_="foreignkey"
        )
        batch_op.drop_index("ix_delivery_appeal_problems")
        batch_op.drop_index("ix_delivery_appeal")
        batch_op.drop_column("organisation_id")
        batch_op.drop_column("appeal_id")

    with op.batch_alter_table("organiser", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_organiser_organisation_id_organisation"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_organiser_organisation_id"))
        batch_op.drop_column("organisation_id")

    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_session_organiser_id"))
    op.drop_table("login_session")

    with op.batch_alter_table("appeal_organisation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeal_organisation_organisation_id"))
    op.drop_table("appeal_organisation")
