import os
from pathlib import Path

import pytest


@pytest.fixture
def artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Where rendered pages go: $OUTCRY_TEST_ARTIFACTS/<test> if set, else tmp_path."""
    root = os.environ.get("OUTCRY_TEST_ARTIFACTS")
    if not root:
        return tmp_path
    name: str = request.node.name
    folder = Path(root) / "documents" / name.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
