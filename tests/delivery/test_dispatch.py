"""Batching: a request leaves its ids and returns; one thread hands them to Celery in few
tasks, each id once, and neither a failure nor close() loses any."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from app.delivery.dispatch import SEND_QUEUE, SEND_TASK, Batching, CeleryDispatcher
from tests.support.private import private_redis

# Only bounds a wait for something that happens at once; never a measurement.
WAIT = 30.0


class Recorder:
    """An inner dispatcher that notes each call: its ids and the thread that made it.

    With `hold` set, the first call waits until the test opens `gate`, so everything
    dispatched meanwhile is known to gather behind it."""

    def __init__(self, *, hold: bool = False, fail_first: bool = False) -> None:
        self.calls: list[tuple[list[int], int]] = []
        self.changed = threading.Condition()
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        self.fail_first = fail_first

    def enqueue(self, ids: Sequence[int]) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT)
        with self.changed:
            self.calls.append((list(ids), threading.get_ident()))
            self.changed.notify_all()
            if self.fail_first and len(self.calls) == 1:
                raise RuntimeError("the broker library broke")

    def ping(self) -> bool:
        return True

    def sent(self) -> list[int]:
        with self.changed:
            return [i for ids, _ in self.calls for i in ids]

    def wait_for(self, count: int) -> None:
        """Until `count` ids have been handed over."""
        with self.changed:  # an RLock: sent() takes it again
            assert self.changed.wait_for(lambda: len(self.sent()) >= count, WAIT)


def dispatch_concurrently(dispatcher: Batching, *, callers: int, per_call: int) -> list[int]:
    """`callers` threads each dispatch their own `per_call` ids at the same moment."""
    start = threading.Barrier(callers, timeout=WAIT)

    def one(n: int) -> list[int]:
        ids = list(range(n * per_call, (n + 1) * per_call))
        start.wait()
        dispatcher.enqueue(ids)
        return ids

    with ThreadPoolExecutor(callers) as pool:
        return [i for ids in pool.map(one, range(callers)) for i in ids]


def test_concurrent_dispatches_are_sent_once_each_in_fewer_calls() -> None:
    inner = Recorder(hold=True)
    batching = Batching(inner)
    # The first hand-over holds the thread; every other request's ids pile up behind it.
    batching.enqueue([-1])
    assert inner.entered.wait(WAIT)
    dispatched = dispatch_concurrently(batching, callers=32, per_call=3)
    inner.gate.set()
    inner.wait_for(1 + len(dispatched))
    batching.close()

    assert sorted(inner.sent()) == sorted([-1, *dispatched])
    assert len(inner.calls) < 33
    # All from the one thread of the dispatcher, none from the requests'.
    assert len({thread for _, thread in inner.calls}) == 1
    assert threading.get_ident() not in {thread for _, thread in inner.calls}


def test_close_hands_over_what_is_queued() -> None:
    inner = Recorder(hold=True)
    batching = Batching(inner)
    batching.enqueue([1])
    assert inner.entered.wait(WAIT)
    batching.enqueue([2, 3])
    batching.enqueue([4])
    inner.gate.set()
    batching.close()
    assert [ids for ids, _ in inner.calls] == [[1], [2, 3, 4]]


def test_after_close_ids_are_handed_over_on_the_callers_thread() -> None:
    inner = Recorder()
    batching = Batching(inner)
    batching.enqueue([1])
    batching.close()
    batching.enqueue([2])
    assert inner.calls[-1] == ([2], threading.get_ident())
    assert inner.sent() == [1, 2]


def test_a_failing_hand_over_is_dropped_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = Recorder(fail_first=True)
    batching = Batching(inner)
    with caplog.at_level(logging.ERROR, logger="app.delivery.dispatch"):
        batching.enqueue([1])
        inner.wait_for(1)
        batching.enqueue([2])
        inner.wait_for(2)
        batching.close()
    # [1] is not tried again (the sweeper sends it), and the same thread sent [2].
    assert [ids for ids, _ in inner.calls] == [[1], [2]]
    assert inner.calls[0][1] == inner.calls[1][1]
    assert "the sweeper will" in caplog.text


def queued_tasks(url: str) -> list[tuple[str, list[int]]]:
    """(task name, ids) of each message waiting in Redis for the workers, oldest first."""
    client = redis.Redis.from_url(url)
    try:
        raw = client.lrange(SEND_QUEUE, 0, -1)
    finally:
        client.close()
    tasks = []
    # Kombu pushes on the left and workers pop on the right.
    for message in reversed(raw):
        envelope = json.loads(message)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        tasks.append((envelope["headers"]["task"], args[0]))
    return tasks


def test_through_redis_each_id_is_one_task_message_away(redis_url: str) -> None:
    celery = CeleryDispatcher(redis_url, batch=10)
    inner = Recorder(hold=True)

    class Gated:
        """The real dispatcher, whose first hand-over waits for the test's gate."""

        def enqueue(self, ids: Sequence[int]) -> None:
            inner.enqueue(ids)
            celery.enqueue(ids)

        def ping(self) -> bool:
            return celery.ping()

    batching = Batching(Gated())
    batching.enqueue([-1])
    assert inner.entered.wait(WAIT)
    dispatched = dispatch_concurrently(batching, callers=40, per_call=2)
    inner.gate.set()
    batching.close()

    tasks = queued_tasks(redis_url)
    assert {name for name, _ in tasks} == {SEND_TASK}
    sent = [i for _, ids in tasks for i in ids]
    assert sorted(sent) == sorted([-1, *dispatched])
    assert all(len(ids) <= 10 for _, ids in tasks)
    # 41 calls; [-1] alone, then the 80 that gathered in tasks of 10.
    assert len(tasks) == 9


def test_with_redis_away_ids_are_left_to_the_sweeper_and_close_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with private_redis() as server:
        batching = Batching(CeleryDispatcher(server.url, batch=10))
        server.stop()
        with caplog.at_level(logging.WARNING, logger="app.delivery.dispatch"):
            for n in range(20):
                batching.enqueue([n])
            batching.close()
    assert "the sweeper will" in caplog.text


def test_without_a_thread_the_ids_go_over_on_the_callers_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread that cannot start (a thread limit) must not turn a stored letter's 202
    into a 500: its ids are handed over at once instead, and the next call tries again."""
    recorder = Recorder()
    dispatcher = Batching(recorder)
    start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    dispatcher.enqueue([1, 2])
    assert recorder.calls == [([1, 2], threading.get_ident())]

    monkeypatch.setattr(threading.Thread, "start", start)
    dispatcher.enqueue([3])
    recorder.wait_for(3)
    assert recorder.sent() == [1, 2, 3]
    assert recorder.calls[1][1] != threading.get_ident()
    dispatcher.close()


def test_ids_that_come_within_the_linger_go_over_together() -> None:
    """One hand-over costs the process about as much CPU however few ids it carries: ids
    that come one by one within the linger go over in one call."""
    inner = Recorder()
    # Never reached: the batch fills first, or close() ends the linger.
    batching = Batching(inner, gather=4, linger=10 * WAIT)
    lingering = threading.Event()

    class Watched(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            if timeout is not None:
                lingering.set()
            return super().wait(timeout)

    batching._changed = Watched()
    batching.enqueue([0])
    assert lingering.wait(WAIT)  # the thread has [0], and waits for more
    for n in (1, 2):
        batching.enqueue([n])
    assert inner.calls == []  # not sent one by one
    batching.enqueue([3])  # the batch is full: it goes at once, not after the linger
    inner.wait_for(4)
    assert [ids for ids, _ in inner.calls] == [[0, 1, 2, 3]]
    batching.enqueue([4])
    batching.close()  # ends the linger: what gathered goes over now
    assert [ids for ids, _ in inner.calls] == [[0, 1, 2, 3], [4]]


def test_a_lone_id_goes_over_after_the_linger() -> None:
    inner = Recorder()
    batching = Batching(inner, gather=50, linger=0.001)
    batching.enqueue([7])
    inner.wait_for(1)  # without close(): the linger ended it
    assert inner.sent() == [7]
    batching.close()
