"""Where the files shipped beside the code live, in a checkout and in an installed wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


@cache  # a signature renders its letter from a file under it
def data_root() -> Path:
    """The checkout's root, or site-packages/outcry_data in an installed wheel."""
    installed = _ROOT / "outcry_data"
    return installed if installed.is_dir() else _ROOT


@cache  # as data_root()
def letter_templates_dir() -> Path:
    return data_root() / "templates" / "letters"


def migrations_dir() -> Path:
    return data_root() / "migrations"


def demo_dir() -> Path:
    return data_root() / "demo"
