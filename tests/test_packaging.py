"""A plain `pip install .` ships the letter templates, migrations, demo and pages; the
lock (constraints.txt) pins every dependency within pyproject.toml's ranges."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.processes import ROOT


def test_wheel_runs_from_any_directory(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(ROOT),
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("outcry-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert (site / "outcry_data/templates/letters/almaty-coach-factory/ru.txt.j2").is_file()
    assert (site / "outcry_data/migrations/env.py").is_file()
    assert (site / "app/web/templates/appeal.html").is_file()

    # Run the unpacked wheel (only it on the path, not the checkout) from elsewhere.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PYTHONPATH": str(site),
        "OUTCRY_DATABASE_URL": f"sqlite:///{elsewhere / 'o.db'}",
        "PATH": "/usr/bin:/bin",
        "OUTCRY_SECRET_KEY": "k",
    }

    def outcry(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-P", "-m", "app.cli", *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    where = subprocess.run(
        [sys.executable, "-P", "-c", "import app; print(app.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    assert outcry("db", "upgrade").returncode == 0
    demo = site / "outcry_data/demo/kazakhstan-union-activists.yaml"
    imported = outcry("appeal", "import", str(demo))
    assert imported.returncode == 0, imported.stderr
    assert "kazakhstan-union-activists" in outcry("appeal", "list").stdout


def _pins() -> dict[str, list[str]]:
    """constraints.txt's pins by package name (a name may have several, by marker)."""
    pins: dict[str, list[str]] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            pins.setdefault(canonicalize_name(name), []).append(rest.split(";")[0].strip())
    return pins


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins = _pins()

    stale = [
        str(req)
        for req in wanted
        if not any(Version(v) in req.specifier for v in pins.get(canonicalize_name(req.name), []))
    ]

    assert not stale, f"constraints.txt is out of date for {stale}: run `bash scripts/lock`"
    head = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()[:2]
    assert head[1].strip() == "#    bash scripts/lock"
    # The image and the test command install what the lock says.
    assert "-c constraints.txt ." in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "-c constraints.txt -e '.[test]'" in (ROOT / "scripts/test").read_text(encoding="utf-8")
