"""Admission control: turns first come first served, a bounded wait, a quick 503."""

from __future__ import annotations

import asyncio

import pytest

from app.core.admission import Admission
from app.core.errors import ServiceBusy


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_turns_go_in_order_of_arrival() -> None:
    async def scenario() -> list[int]:
        admission = Admission(2, wait=60)
        order: list[int] = []
        await admission.acquire()
        await admission.acquire()

        async def request(n: int) -> None:
            await admission.acquire()
            order.append(n)

        waiting = [asyncio.create_task(request(n)) for n in range(5)]
        await asyncio.sleep(0)
        assert admission.busy == 2
        for _ in range(5):
            admission.release()
            await asyncio.sleep(0)
        await asyncio.gather(*waiting)
        for _ in range(2):
            admission.release()
        assert admission.free == 2
        return order

    assert run(scenario()) == [0, 1, 2, 3, 4]


def test_a_request_waits_at_most_the_wait_then_is_turned_away() -> None:
    async def scenario() -> ServiceBusy:
        admission = Admission(1, wait=0.05)
        await admission.acquire()
        with pytest.raises(ServiceBusy) as info:
            await admission.acquire()
        admission.release()
        assert admission.free == 1
        assert not admission.waiting
        return info.value

    busy = run(scenario())
    assert isinstance(busy, ServiceBusy)
    assert busy.status_code == 503
    assert int(busy.headers()["Retry-After"]) >= 1


def test_beyond_the_queue_a_request_is_turned_away_at_once() -> None:
    async def scenario() -> None:
        admission = Admission(1, wait=60, queue=2)
        await admission.acquire()
        waiting = [asyncio.create_task(admission.acquire()) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ServiceBusy):
            await admission.acquire()
        for _ in range(3):
            admission.release()
            await asyncio.sleep(0)
        await asyncio.gather(*waiting)
        assert admission.free == 1

    run(scenario())


def test_a_turn_handed_to_a_request_that_gave_up_is_passed_on() -> None:
    async def scenario() -> None:
        admission = Admission(1, wait=60)
        await admission.acquire()
        gave_up = asyncio.create_task(admission.acquire())
        after = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0)
        # The turn goes to the first waiter, which is cancelled (its client left) before
        # it runs again: the turn must reach the next one, not be lost.
        admission.release()
        gave_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gave_up
        await asyncio.wait_for(after, 5)
        admission.release()
        assert admission.free == 1
        assert not admission.waiting

    run(scenario())
