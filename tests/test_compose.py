"""docker-compose.yml stays valid and consistent with the CLI (no Docker engine here, so
no `docker compose config`): the Compose specification's own JSON schema, the `outcry`
commands, the files it mounts, the images it pins and the files it keeps."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from app.core.config import Settings
from tests.support.processes import ROOT, outcry_env, run_outcry

# Where Outcry keeps what it writes instead of sending (a letter without SMTP, a fax
# without a gateway): the services that deliver, or count what waits there, share it.
DELIVERING = ("api", "worker")
# ${NAME:?message}, ${NAME:-default}, ${NAME}: Compose's interpolation, as `docker compose`
# does it before anything reads the values.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")
# A release, not a line of releases (redis:7-alpine, mailpit:latest move under us).
# PostgreSQL numbers its releases major.minor (15.18), the others major.minor.patch.
PATCH = r"\d+\.\d+\.\d+"


def load() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found = load()["services"]
    assert isinstance(found, dict)
    return found


def outcry_services() -> dict[str, dict[str, Any]]:
    """The services that run the Outcry image."""
    return {name: s for name, s in services().items() if "build" in s}


def interpolate(value: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise ValueError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return INTERPOLATION.sub(one, value)


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume in the short syntax the file uses."""
    out = []
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), "this test reads the short volume syntax"
        source, target, *_ = entry.split(":")
        out.append((source, target))
    return out


def test_the_file_follows_the_compose_specification() -> None:
    # The schema published with the Compose specification (compose-spec/compose-spec,
    # Apache-2.0), as the check-jsonschema package vendors it with its licence.
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    assert "Apache License" in vendor.joinpath("licenses/LICENSE.compose-spec").read_text()
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )

    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(load())
    ]

    assert not errors
    # The schema can fail: a misspelt key is refused.
    broken = load()
    broken["services"]["api"]["restart_policy"] = "always"
    assert any("restart_policy" in e.message for e in validator.iter_errors(broken))


def test_every_command_is_a_real_outcry_command(tmp_path: Path) -> None:
    found = outcry_services()
    assert {"migrate", "api", "worker", "beat"} <= set(found)
    assert {"redis", "postgres", "mailpit"} <= set(services())
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    for name, service in found.items():
        command = service["command"]
        assert command[0] == "outcry", name
        # --help exits 0 only for a real command with real options.
        result = run_outcry(*command[1:], "--help", env=env, cwd=tmp_path)
        assert result.returncode == 0, (name, result.stdout, result.stderr)


def test_every_bind_mount_is_a_folder_of_the_repository() -> None:
    declared = set(load()["volumes"])
    binds = []
    for name, service in services().items():
        for source, _target in mounts(service):
            if source.startswith((".", "/")):
                binds.append(source)
                assert source.startswith("./"), f"{name}: {source} is outside the checkout"
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert "./appeals" in binds


def test_the_outcry_services_share_a_kept_outbox_and_see_the_appeals_folder() -> None:
    found = outcry_services()
    env = found["api"]["environment"]
    outbox = PurePosixPath(env["OUTCRY_OUTBOX_DIR"])
    kept = {name: {target: source for source, target in mounts(found[name])} for name in DELIVERING}

    # A named volume (kept across restarts), the same one for the web app and workers.
    assert {kept[name].get(str(outbox)) for name in DELIVERING} == {"outbox"}
    assert kept["api"].get("/appeals") == "./appeals"
    assert (ROOT / "appeals" / "README.md").is_file()


@pytest.mark.parametrize(
    ("name", "version"), [("redis", PATCH), ("postgres", r"\d+\.\d+"), ("mailpit", "v" + PATCH)]
)
def test_images_are_pinned_to_exact_versions(name: str, version: str) -> None:
    image = services()[name]["image"]

    assert re.search(f":{version}(-alpine)?$", image), f"{name}: {image} is not one release"


def test_environment_is_valid_settings() -> None:
    anchor = load()["x-outcry"]
    given = {"OUTCRY_SECRET_KEY": "x"}
    env = {key: interpolate(str(value), given) for key, value in anchor["environment"].items()}
    values: dict[str, Any] = {k.removeprefix("OUTCRY_").lower(): v for k, v in env.items()}

    settings = Settings(**values)

    assert not settings.embedded
    assert settings.smtp is not None
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.fax_gateway == ""  # unless the operator sets one
    with pytest.raises(ValueError, match="OUTCRY_SECRET_KEY"):
        interpolate(str(anchor["environment"]["OUTCRY_SECRET_KEY"]), {})
