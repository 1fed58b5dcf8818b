"""The peers Outcry's signing endpoint is measured against in benchmarks/intake.py.

  bare         a FastAPI endpoint taking the same body (the same pydantic model) at the
               same path, answering 202 with the same shape: the web stack's own cost;
  bare_insert  the same plus one INSERT of the signature into a table, committed before
               the answer, on the same engine set-up as Outcry's (pool, SQLite locking):
               the floor of "accept and keep".

    python benchmarks/intake_peers.py KIND PORT WORKERS

serves KIND exactly as `outcry serve` serves Outcry (app.server.options()). The database
is OUTCRY_DATABASE_URL; the table `bench_intake` must exist (intake.py makes it).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import server
from app.core.config import get_settings
from app.core.db import POOL_RESERVE, engine_for
from app.letters.schemas import LetterCreated, SignatureIn
from app.models import LetterStatus, utcnow

PATH = "/api/v1/appeals/{slug}/letters"

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
