"""`outcry organiser add EMAIL --organisation SLUG`, run as a real process."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.core.db import dispose_engine, engine_for, session_factory, session_scope
from app.models import Organiser
from tests.support.processes import outcry_env, run_outcry


def test_organiser_add_scoped_to_a_union(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outcry.db'}"
    env = outcry_env(database_url=url, secret_key="cli-secret")
    assert run_outcry("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    added = run_outcry(
        "organiser",
        "add",
        "rep@example.org",
        "--organisation",
        "unite",
        env=env | {"OUTCRY_ORGANISER_PASSWORD": "a long enough password"},
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added organiser rep@example.org for unite"
    try:
        with session_scope(session_factory(engine_for(url))) as session:
            organiser = session.scalar(select(Organiser))
            assert organiser is not None
            assert organiser.organisation is not None
            assert organiser.organisation.slug == "unite"
            assert organiser.password_hash.startswith("$argon2")
    finally:
        dispose_engine(url)
