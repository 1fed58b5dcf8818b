"""The peers Outcry's signing endpoint is measured against in benchmarks/intake.py.

  bare         a FastAPI endpoint taking the same body (the same pydantic model) at the
               same path, answering 202 with the same shape: the web stack's own cost;
  bare_insert  the same plus one INSERT of the signature into a table, committed before
               the answer, on the same engine set-up as Outcry's (pool, SQLite locking):
               the floor of "accept and keep";
  statements   the same as bare, plus the round trips an Outcry signature makes and
               nothing else, written as plainly as Core allows: one SELECT of the
               appeal's revision and the address's earlier letter (what Outcry reads
               when its copy of the appeal is current), the flood guard's one call to
               the limiter, the letter's INSERT and its confirmation delivery's (one
               statement on PostgreSQL, as Outcry's), in Outcry's own tables (so its
               triggers run), committed before the answer. No validation of the address, no letter
               rendered (a fixed subject and body), no ORM objects, nothing enqueued: the
               floor of what Outcry does, to tell the cost of its I/O from its logic's.

    python benchmarks/intake_peers.py KIND PORT WORKERS

serves KIND exactly as `outcry serve` serves Outcry (app.server.options()). The database
is OUTCRY_DATABASE_URL; the table `bench_intake` must exist (intake.py makes it).
"""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    insert,
    select,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import server
from app.core.config import get_settings
from app.core.db import POOL_RESERVE, engine_for
from app.letters.schemas import LetterCreated, SignatureIn
from app.models import LetterStatus, utcnow

PATH = "/api/v1/appeals/{slug}/letters"
# When the statements peer's confirmation deliveries fall due: never.
NEVER = datetime(9999, 1, 1, tzinfo=UTC)

metadata = MetaData()
bench_intake = Table(
    "bench_intake",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64)),
    Column("name", String(200)),
    Column("email", String(254)),
    Column("country", String(2)),
    Column("city", String(100)),
    Column("organisation", String(200)),
    Column("created_at", DateTime(timezone=True)),
)


def _created(public_id: str) -> LetterCreated:
    return LetterCreated(
        id=public_id,
        status=LetterStatus.pending_confirmation,
        status_url=f"http://127.0.0.1/api/v1/letters/{public_id}?key={secrets.token_urlsafe(24)}",
    )


def bare() -> FastAPI:
    app = FastAPI()

    @app.post(PATH, status_code=202)
    def sign(slug: str, form: SignatureIn) -> LetterCreated:
        return _created(secrets.token_urlsafe(12))

    return app


def bare_insert() -> FastAPI:
    settings = get_settings()
    engine = engine_for(
        settings.database_url,
        pool_size=settings.request_concurrency + POOL_RESERVE,
        pre_ping=False,
    )
    app = FastAPI()

    @app.post(PATH, status_code=202)
    def sign(slug: str, form: SignatureIn) -> LetterCreated:
        row = {
            "slug": slug,
            "name": form.name,
            "email": form.email,
            "country": form.country,
            "city": form.city,
            "organisation": form.organisation,
            "created_at": utcnow(),
        }
        with engine.begin() as conn:
            conn.execute(insert(bench_intake).values(**row))
        return _created(secrets.token_urlsafe(12))

    return app


def statements() -> FastAPI:
    from app.core import security
    from app.delivery import ratelimit
    from app.delivery.service import insert_with_confirmation
    from app.models import (
        Appeal,
        Channel,
        Delivery,
        DeliveryStatus,
        Letter,
        table_of,
    )

    settings = get_settings()
    engine = engine_for(
        settings.database_url,
        pool_size=settings.request_concurrency + POOL_RESERVE,
        pre_ping=False,
    )
    appeal, letter, delivery = table_of(Appeal), table_of(Letter), table_of(Delivery)
    # The appeal's revision and the address's earlier letter, as one SELECT: what Outcry
    # reads when its copy of the appeal is current (letters.service.appeal_to_sign).
    appeal_and_earlier = (
        select(appeal.c.id, appeal.c.revision, appeal.c.status, letter.c.id, letter.c.status)
        .outerjoin_from(
            appeal,
            letter,
            and_(letter.c.appeal_id == appeal.c.id, letter.c.email_hash == bindparam("digest")),
        )
        .where(appeal.c.slug == bindparam("slug"))
    )
    postgresql = engine.dialect.name == "postgresql"
    insert_letter = insert(letter).returning(letter.c.id)
    insert_delivery = insert(delivery).returning(delivery.c.id)
    secret = settings.resolved_secret_key()
    app = FastAPI()

    @app.post(PATH, status_code=202)
    def sign(slug: str, form: SignatureIn) -> LetterCreated:
        now = utcnow()
        email = form.email.lower()
        digest = security.derive(secret, "email", email)
        public_id = secrets.token_urlsafe(12)
        with engine.begin() as conn:
            found = conn.execute(appeal_and_earlier, {"slug": slug, "digest": digest}).first()
            appeal_id = found[0]  # type: ignore[index]
            ratelimit.client_waits(
                settings.broker_url,
                [
                    (f"floor:{appeal_id}:net", 10**9, 3600.0),
                    (f"floor:{appeal_id}:dom:{email.rpartition('@')[2]}", 10**9, 3600.0),
                    (f"floor:mailbox:{digest[:12]}", 10**9, 86400.0),
                ],
            )
            row = {
                "public_id": public_id,
                "key": secrets.token_urlsafe(24),
                "appeal_id": appeal_id,
                "organisation_id": None,
                "language": "en",
                "signer_name": form.name,
                "signer_email": email,
                "email_hash": digest,
                "signer_organisation": form.organisation,
                "signer_country": form.country,
                "signer_city": form.city,
                "message": form.message,
                "share_email": form.share_email,
                "copy_to_me": form.copy_to_me,
                "notify_replies": form.notify_replies,
                "subject": "A fixed subject",
                "body": "A fixed body of a letter.",
                "status": LetterStatus.pending_confirmation,
                "hold_reason": "",
                "rejection_reason": "",
                "created_at": now,
            }
            confirmation = {
                "appeal_id": appeal_id,
                "channel": Channel.confirmation,
                "recipients": [email],
                "cc": [],
                "status": DeliveryStatus.queued,
                "attempts": 0,
                "max_attempts": 8,
                "next_attempt_at": NEVER,
                "accepted": [],
                "message_id": f"<{public_id}@example.net>",
                "created_at": now,
            }
            if postgresql:  # one statement for both rows, as Outcry writes them there
                insert_with_confirmation(conn, letter, row, confirmation)
            else:
                letter_id = conn.execute(insert_letter, row).scalar_one()
                conn.execute(insert_delivery, {"letter_id": letter_id, **confirmation})
        return _created(public_id)

    return app


if __name__ == "__main__":
    kind, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    uvicorn.run(
        f"intake_peers:{kind}",
        factory=True,
        app_dir=str(Path(__file__).parent),
        host="127.0.0.1",
        port=port,
        workers=workers,
        **server.options(),
    )
