"""docker-compose.yml stays valid and consistent with the CLI (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.core.config import Settings
from tests.support.processes import ROOT, outcry_env, run_outcry


def load() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_commands(tmp_path: Path) -> None:
    services = load()["services"]
    assert isinstance(services, dict)
    assert {"api", "worker", "beat", "redis", "postgres", "mailpit"} <= set(services)
    for name in ("migrate", "api", "worker", "beat"):
        command = services[name]["command"]
        assert command[0] == "outcry"
        # Each command parses: --help exits 0 only for a real command with real options.
        env = outcry_env(database_url=f"sqlite:///{tmp_path / 'x.db'}")
        result = run_outcry(*command[1:], "--help", env=env, cwd=tmp_path)
        assert result.returncode == 0, (name, result.stdout, result.stderr)


def test_environment_is_valid_settings() -> None:
    anchor = load()["x-outcry"]
    assert isinstance(anchor, dict)
    env = dict(anchor["environment"])
    env["OUTCRY_SECRET_KEY"] = "x"
    # `${NAME:-default}` is what docker compose makes of a variable left unset.
    env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
    values = {k.removeprefix("OUTCRY_").lower(): v for k, v in env.items()}
    settings = Settings(**values)
    assert not settings.embedded
    assert settings.smtp is not None
    assert settings.database_url.startswith("postgresql+psycopg://")
