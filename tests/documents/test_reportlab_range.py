"""Both ends of the reportlab range pyproject.toml allows draw Outcry's PDFs.

app/documents/truetype.py reads fonts through reportlab internals, so the range is the
one tested: its top is the version constraints.txt pins, which the whole suite runs
with; its floor is installed here beside the project (pip --target, kept between runs)
and renders a letter and a signature sheet in a child process, read back with pypdf.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pypdf import PdfReader

from tests.documents.helpers import KAZAKH, squash
from tests.support.processes import ROOT

# Greek, a star, an emoji and Chinese come from the fallback faces; Kazakh from a
# subset past the first: every path through truetype.py.
FALLBACK = "Ελευθερία ★ 😀 团结"

# Runs with the floor's reportlab first on the path; prints what it rendered.
CHILD = """
import json, sys
import reportlab
from app.documents import pdf
from tests.documents.helpers import make_letter

body = sys.argv[1]
letter = pdf.render_letter(make_letter(body=body))
sheet = pdf.render_signature_sheet(
    pdf.SignatureSheet(title="Free them", summary=body, language="kk"), pages=1
)
open(sys.argv[2], "wb").write(letter)
open(sys.argv[3], "wb").write(sheet)
print(json.dumps({"version": reportlab.Version, "file": reportlab.__file__}))
"""


def reportlab_range() -> SpecifierSet:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    [found] = [Requirement(r) for r in project["dependencies"] if r.startswith("reportlab")]
    return found.specifier


def floor() -> str:
    [lowest] = [s.version for s in reportlab_range() if s.operator == ">="]
    return lowest


def locked(name: str) -> str:
    """The version constraints.txt pins for a package."""
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}=="):
            return line.removeprefix(f"{name}==").split(";")[0].strip()
    raise AssertionError(f"constraints.txt pins no {name}")


def install(wanted: str) -> Path:
    """reportlab==wanted alone in a folder of its own, made once and then kept."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "outcry-tests"
    target = cache / f"reportlab-{wanted}"
    if not (target / "reportlab").is_dir():
        partial = cache / f".reportlab-{wanted}-{os.getpid()}"
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                *("--no-deps", "--target", str(partial), f"reportlab=={wanted}"),
            ],
            check=True,
            timeout=600,
        )
        try:
            partial.rename(target)  # whole or not at all
        except OSError:
            if not (target / "reportlab").is_dir():
                raise
            shutil.rmtree(partial)  # another run got there first
    return target


def test_the_top_of_the_range_is_what_the_suite_runs_with() -> None:
    pinned = locked("reportlab")

    assert Version(pinned) in reportlab_range()
    assert version("reportlab") == pinned, "install from the lock: bash scripts/test"


def test_the_floor_of_the_range_renders_letters(tmp_path: Path) -> None:
    lowest = floor()
    site = install(lowest)
    letter, sheet = tmp_path / "letter.pdf", tmp_path / "sheet.pdf"
    body = f"{FALLBACK}\n\n{KAZAKH}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}

    child = subprocess.run(
        [sys.executable, "-c", CHILD, body, str(letter), str(sheet)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    used = json.loads(child.stdout)
    assert used["version"] == lowest
    assert Path(used["file"]).is_relative_to(site)
    for data in (letter.read_bytes(), sheet.read_bytes()):
        found = squash("".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))
        assert squash(FALLBACK) in found
        assert squash(KAZAKH) in found
