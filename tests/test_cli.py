"""The `outcry` command, run as a real process against both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.core import paths
from tests.conftest import _truncate
from tests.support.processes import outcry_env, run_outcry


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'outcry.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
    return outcry_env(database_url=url, secret_key="cli-secret")


def test_upgrade_import_list(env: dict[str, str], tmp_path: Path) -> None:
    upgraded = run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    files = [str(p) for p in sorted(paths.demo_dir().glob("*.yaml"))]
    first = run_outcry("appeal", "import", *files, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "created almaty-coach-factory",
        "created kazakhstan-union-activists",
    ]
    again = run_outcry("appeal", "import", files[0], env=env, cwd=tmp_path)
    assert again.stdout.strip() == "updated almaty-coach-factory"
    listed = run_outcry("appeal", "list", env=env, cwd=tmp_path)
    assert "almaty-coach-factory\topen\tsigned=0\tsent=0" in listed.stdout


def test_import_error_names_file_and_field(env: dict[str, str], tmp_path: Path) -> None:
    run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    data = yaml.safe_load((paths.demo_dir() / "almaty-coach-factory.yaml").read_text())
    data["targets"][0]["email"] = "not an address"
    data["colour"] = "red"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = run_outcry("appeal", "import", str(bad), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert f"{bad}: targets.0.email:" in result.stderr
    assert f"{bad}: colour:" in result.stderr
    assert run_outcry("appeal", "list", env=env, cwd=tmp_path).stdout == ""


def test_tokens_and_organisers(env: dict[str, str], tmp_path: Path) -> None:
    run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    token = run_outcry("token", "create", env=env, cwd=tmp_path)
    assert token.returncode == 0
    assert token.stdout.strip().startswith("oc_")
    union = run_outcry("token", "create", "--organisation", "unite", env=env, cwd=tmp_path)
    assert union.stdout.strip() != token.stdout.strip()
    added = run_outcry(
        "organiser",
        "add",
        "Org@Example.org",
        env=env,
        cwd=tmp_path,
        input="a long enough password\na long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    assert "added organiser org@example.org" in added.stdout
    short = run_outcry(
        "organiser", "add", "b@example.org", env=env, cwd=tmp_path, input="short\nshort\n"
    )
    assert short.returncode == 1
    assert "password" in short.stderr


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    env = outcry_env(smtp_url="http://nope", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    result = run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "OUTCRY_SMTP_URL" in result.stderr


def test_worker_needs_a_broker(tmp_path: Path) -> None:
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    result = run_outcry("worker", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "OUTCRY_BROKER_URL" in result.stderr


def test_inbound_says_what_it_needs(tmp_path: Path) -> None:
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'outcry.db'}", secret_key="s")
    missing = run_outcry("inbound", env=env, cwd=tmp_path)
    assert missing.returncode == 1
    assert "OUTCRY_BOUNCE_DOMAIN is not set" in missing.stderr
    env["OUTCRY_BOUNCE_DOMAIN"] = "bounces.example.org"
    imap = run_outcry("inbound", "--protocol", "imap", env=env, cwd=tmp_path)
    assert imap.returncode == 1
    assert "OUTCRY_IMAP_URL is not set" in imap.stderr
    env["OUTCRY_BOUNCE_DOMAIN"] = "not a domain"
    bad = run_outcry("inbound", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert "OUTCRY_BOUNCE_DOMAIN" in bad.stderr
