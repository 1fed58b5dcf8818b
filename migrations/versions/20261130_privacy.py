"""privacy: duplicate checks on a keyed hash of the address; forgetting; flood holds

letter.email_hash (HMAC-SHA256 of the normalised address with the secret key) takes
over the one-letter-per-address rule from signer_email, which becomes nullable so the
address can be erased OUTCRY_FORGET_AFTER_DAYS after the letter is finished.
letter.finished_at starts that clock; letter.erased_at marks a letter whose
supporter's details are gone; letter.hold_reason says why the flood guard held it.
Statuses `withdrawn` (letter) and `cancelled` (delivery) need no DDL.

Revision ID: 3d8c2f6a9b14
Revises: 7e2a4b9c1d03
Create Date: 2026-11-30 09:00:00
"""

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "3d8c2f6a9b14"
down_revision: str | None = "7e2a4b9c1d03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = "('sent', 'failed', 'rejected', 'expired', 'withdrawn')"
FORGET_SQL = "signer_email IS NOT NULL"
UNCONFIRMED_SQL = "status = 'expired' AND erased_at IS NULL"

# Rebuilding `letter` on SQLite drops its triggers: the letter_tally ones are made again
# here exactly as in 20261123_organisers (kept self-contained on purpose).
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


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _recreate_sqlite_triggers() -> None:
    if not _sqlite():
        return
    for operation in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS letter_tally_{operation}")
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def _secret_key() -> str:
    secret = context.config.attributes.get("secret_key")
    if secret:
        return str(secret)
    from app.core.config import get_settings

    return get_settings().resolved_secret_key()


def _email_hash(secret: str, address: str) -> str:
    # The same as app.core.security.derive(secret, "email", address); written out so a
    # later change there cannot change what this migration stored.
    message = f"outcry.email:{address}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _backfill_hashes() -> None:
    bind = op.get_bind()
    letter = sa.table(
        "letter",
        sa.column("id", sa.Integer),
        sa.column("signer_email", sa.String),
        sa.column("email_hash", sa.String),
        sa.column("status", sa.String),
    )
    rows = bind.execute(
        sa.select(letter.c.id, letter.c.signer_email).where(
            letter.c.signer_email.is_not(None), letter.c.status != "sample"
        )
    ).all()
    if not rows:
        return
    secret = _secret_key()
    bind.execute(
        letter.update()
        .where(letter.c.id == sa.bindparam("letter_id"))
        .values(email_hash=sa.bindparam("hash")),
        [{"letter_id": i, "hash": _email_hash(secret, email)} for i, email in rows],
    )


def upgrade() -> None:
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("hold_reason", sa.String(length=300), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column(
            "signer_email", existing_type=sa.String(length=254), nullable=True
        )
        batch_op.drop_constraint("uq_letter_appeal_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_letter_appeal_email_hash", ["appeal_id", "email_hash"]
        )
    _recreate_sqlite_triggers()

    _backfill_hashes()
    # When each finished letter finished: its sending, else its last recorded change.
    op.execute(
        "UPDATE letter SET finished_at = coalesce(sent_at,"
        " (SELECT max(status_event.created_at) FROM status_event"
        " WHERE status_event.letter_id = letter.id), confirmed_at, created_at)"
        f" WHERE status IN {FINISHED}"
    )
    op.create_index(
        "ix_letter_forget",
        "letter",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text(FORGET_SQL),
        sqlite_where=sa.text(FORGET_SQL),
    )
    op.create_index(
        "ix_letter_unconfirmed",
        "letter",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text(UNCONFIRMED_SQL),
        sqlite_where=sa.text(UNCONFIRMED_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_letter_unconfirmed", table_name="letter")
    op.drop_index("ix_letter_forget", table_name="letter")
    # Addresses already erased cannot come back: a placeholder no mail can reach.
    # So do those set aside for a second signature (withdrawn or expired, then signed
    # again), which the old one-address rule would refuse.
    op.execute(
        "UPDATE letter SET signer_email = 'erased-' || public_id || '@outcry.invalid'"
        " WHERE signer_email IS NULL OR (email_hash IS NULL AND status <> 'sample')"
    )
    # Letters withdrawn, and deliveries cancelled, had no place in the old state machine.
    op.execute("UPDATE letter SET status = 'expired' WHERE status = 'withdrawn'")
    op.execute("UPDATE delivery SET status = 'failed' WHERE status = 'cancelled'")
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_constraint("uq_letter_appeal_email_hash", type_="unique")
        batch_op.create_unique_constraint("uq_letter_appeal_id", ["appeal_id", "signer_email"])
        batch_op.alter_column(
            "signer_email", existing_type=sa.String(length=254), nullable=False
        )
        batch_op.drop_column("erased_at")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("email_hash")
    _recreate_sqlite_triggers()
