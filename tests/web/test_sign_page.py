"""The signing form's page does its database and Redis work off the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.letters import service as letters
from tests.appeals.factories import make_appeal
from tests.letters.factories import form_data


def test_the_form_signs_on_a_worker_thread_not_in_the_event_loop(
    session: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the event loop, a signature waiting for SQLite's one writer would hold up every
    # request of the process, the writer's own commit included, until the wait gave up.
    make_appeal(session)
    session.commit()
    loops: list[bool] = []
    real = letters.sign_letter

    def sign_letter(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            loops.append(True)
        except RuntimeError:
            loops.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr(letters, "sign_letter", sign_letter)
    answer = client.post("/a/free-them", data=form_data(client), headers={"Accept": "text/html"})
    assert answer.status_code == 201, answer.text
    assert loops == [False]
