"""A Celery worker process's delivery state (workers/tasks.py) is made once per process."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from workers import tasks


def test_tasks_running_at_once_make_one_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # Celery's thread pool runs tasks at once: two making the state would each start a
    # loop, a Feed and a transport, and the letters claimed in one would be left behind.
    made: list[object] = []
    second = threading.Event()

    class Alive:
        @staticmethod
        def is_alive() -> bool:
            return True

    def start() -> Any:
        made.append(object())
        if len(made) > 1:
            second.set()
        # The first one made waits for a second to begin, which only a missing lock lets in.
        second.wait(1.0)
        return tasks._Process(os.getpid(), None, Alive(), None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(tasks, "_state", None)
    monkeypatch.setattr(tasks, "_start", start)
    ready = threading.Barrier(8)
    got: list[object] = []

    def task() -> None:
        ready.wait()
        got.append(tasks._process())

    threads = [threading.Thread(target=task) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert len(got) == 8
    assert all(state is got[0] for state in got)
