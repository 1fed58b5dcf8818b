"""Alembic, driven from code: `outcry db upgrade` and `outcry serve` on SQLite."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.core import paths


def alembic_config(url: str) -> Config:
    """An Alembic config for `url` that works from any directory and from a wheel."""
    config = Config()
    config.set_main_option("script_location", str(paths.migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head", *, secret_key: str | None = None) -> None:
    """Migrate the database at `url` to `revision`, creating a SQLite file's folder.
    `secret_key` (default: the settings') keys what a migration hashes."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(url)
    if secret_key:
        config.attributes["secret_key"] = secret_key
    command.upgrade(config, revision)
