"""Pages that take a form do their database, Redis and password work off the event loop."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.letters import service as letters
from app.organisers import service as organisers
from tests.appeals.factories import make_appeal
from tests.letters.factories import form_data
from tests.organisers.factories import log_in, make_world
from tests.support.loops import in_event_loop


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
        loops.append(in_event_loop())
        return real(*args, **kwargs)

    monkeypatch.setattr(letters, "sign_letter", sign_letter)
    answer = client.post("/a/free-them", data=form_data(client), headers={"Accept": "text/html"})
    assert answer.status_code == 201, answer.text
    assert loops == [False]


def test_logging_in_checks_the_password_on_a_worker_thread(
    session: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A password check takes tens of milliseconds of CPU, and a login writes its session:
    # in the event loop, each would hold up every signature of the process.
    make_world(session, accounts=True)
    loops: list[bool] = []
    real = organisers.log_in

    def log_in_recorded(*args: Any, **kwargs: Any) -> Any:
        loops.append(in_event_loop())
        return real(*args, **kwargs)

    monkeypatch.setattr(organisers, "log_in", log_in_recorded)
    log_in(client, "admin@example.org")
    assert loops == [False]
