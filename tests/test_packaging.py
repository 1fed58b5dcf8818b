"""A plain `pip install .` ships the letter templates, migrations, demo and pages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

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
