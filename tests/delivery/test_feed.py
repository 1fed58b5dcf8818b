"""The Feed: claimed deliveries sent continuously across batches and tasks, each once.

The transport here holds the messages it is told to hold until the test lets them go,
so a test can see what goes out while another message is still on the wire.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.delivery.deliverer import CHUNK, Deliverer, Feed
from app.models import Delivery, StatusEvent, utcnow
from tests.appeals.factories import make_appeal
from tests.conftest import make_settings
from tests.letters.factories import sign

T = TypeVar("T")


class Held:
    """A transport that sends at once, except the messages in `hold` (by Message-ID, or
    every one with hold_all) until let_go() names them."""

    def __init__(self, *, hold: Sequence[str] = (), hold_all: bool = False):
        self.hold = set(hold)
        self.hold_all = hold_all
        self.started: list[str] = []  # Message-IDs, as their sends began
        self.finished: list[str] = []
        self._gates: dict[str, asyncio.Event] = {}

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        message_id = str(message["Message-ID"])
        self.started.append(message_id)
        if self.hold_all or message_id in self.hold:
            await self._gates.setdefault(message_id, asyncio.Event()).wait()
        self.finished.append(message_id)
        return "250 2.0.0 taken"

    def let_go(self, *message_ids: str) -> None:
        self.hold_all = False
        self.hold -= set(message_ids)
        for message_id in message_ids or list(self._gates):
            self._gates.setdefault(message_id, asyncio.Event()).set()

    async def close(self) -> None:
        return None


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition` (a bound on the wait, not a measurement)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def in_thread(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


@pytest.fixture
def two(db_url: str, tmp_path: Path) -> Settings:
    """Two connections a process."""
    return make_settings(db_url, tmp_path, send_concurrency=2, lease_seconds=300)


def letters(session: Session, settings: Settings, count: int) -> list[int]:
    """The deliveries of `count` letters queued to a target, in id order."""
    appeal = make_appeal(session, require_confirmation=False, rate_limit=100_000)
    for n in range(count):
        sign(session, appeal, settings, email=f"supporter{n}@example.net")
    session.commit()
    return list(session.scalars(select(Delivery.id).order_by(Delivery.id)))


def states(settings: Settings) -> dict[int, tuple[str, int, str]]:
    """(status, attempts, message id) of every delivery."""
    with session_factory(engine_for(settings.database_url))() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.status, Delivery.attempts, Delivery.message_id)
        )
        return {i: (str(s), n, m) for i, s, n, m in rows}


def deliverer(
    settings: Settings, transport: Held, clock: Callable[[], datetime] = utcnow
) -> Deliverer:
    sessions = session_factory(engine_for(settings.database_url))
    return Deliverer(sessions, transport, settings, upkeep=None, clock=clock)


def test_a_second_tasks_letters_go_out_while_the_first_tasks_last_is_on_the_wire(
    session: Session, two: Settings
) -> None:
    ids = letters(session, two, 6)
    first, second = ids[:3], ids[3:]
    mid = {i: m for i, (_, _, m) in states(two).items()}
    transport = Held(hold=[mid[first[0]]])

    async def main() -> None:
        feed = Feed(deliverer(two, transport), senders=2)
        # A task returns once its letters are claimed, before they are sent.
        taken = await asyncio.wait_for(feed.take(first), 30)
        assert [o.result for o in taken] == ["sending"] * 3
        await until(lambda: mid[first[0]] in transport.started, "the first letter on the wire")
        await asyncio.wait_for(feed.take(second), 30)
        await until(
            lambda: {mid[i] for i in second} <= set(transport.finished),
            "the second task's letters sent",
        )
        # …while the first task's first letter is still on the wire.
        assert mid[first[0]] not in transport.finished
        transport.let_go(mid[first[0]])
        await feed.close(grace=None)

    asyncio.run(main())

    assert {s for s, _, _ in states(two).values()} == {"sent"}
    assert sorted(transport.started) == sorted(mid.values())


def test_overlapping_tasks_send_each_letter_exactly_once(session: Session, two: Settings) -> None:
    # The same ids in several tasks at once, as a sweep re-enqueues what a task still holds.
    ids = letters(session, two, 40)
    tasks = [ids[:30], ids[10:], ids, ids[5:15]]
    transport = Held()
    results: list[Counter[str]] = []

    async def main() -> None:
        feed = Feed(deliverer(two, transport), senders=3)
        for taken in await asyncio.gather(*(feed.take(task) for task in tasks)):
            results.append(Counter(o.result for o in taken))
        await feed.close(grace=None)

    asyncio.run(main())

    after = states(two)
    assert {s for s, _, _ in after.values()} == {"sent"}
    assert {n for _, n, _ in after.values()} == {1}
    assert Counter(transport.started) == Counter(m for _, _, m in after.values())
    assert set(Counter(transport.started).values()) == {1}
    # Each letter was claimed by exactly one of the tasks that named it (and may have been
    # sent already when that task returned); the others skipped it.
    assert sum(r["sending"] + r["sent"] for r in results) == len(ids)
    assert sum(r["skipped"] for r in results) == sum(map(len, tasks)) - len(ids)
    assert set().union(*results) <= {"sending", "sent", "skipped"}


def test_a_feed_claims_a_batch_only_when_few_claimed_letters_wait(
    session: Session, two: Settings
) -> None:
    ids = letters(session, two, 3 + CHUNK + 5)
    first, second = ids[:3], ids[3:]
    transport = Held(hold_all=True)

    def claimed() -> int:
        return sum(s == "sending" for s, _, _ in states(two).values())

    async def main() -> None:
        feed = Feed(deliverer(two, transport), senders=2)
        await asyncio.wait_for(feed.take(first), 30)  # two on the wire, one waiting
        later = asyncio.ensure_future(feed.take(second))
        # One waiting is fewer than the two connections: one batch is claimed, and then
        # the queue is long. The rest waits, however long the sends take.
        await until(lambda: len(transport.started) == 2, "two on the wire")
        # The second task's two batches (CHUNK and 5) load at once; whichever is claimed
        # first, the other waits.
        batches = {3 + CHUNK, 3 + len(second) - CHUNK}
        for _ in range(100):
            if await in_thread(claimed) in batches:
                break
        await asyncio.sleep(0.3)  # a chance for a claim that should not happen
        assert await in_thread(claimed) in batches
        assert not later.done()
        transport.let_go()
        taken = await later
        assert {o.result for o in taken} <= {"sending", "sent"}
        await feed.close(grace=None)

    asyncio.run(main())

    assert {s for s, _, _ in states(two).values()} == {"sent"}
    assert len(transport.started) == len(ids)


def test_letters_claimed_by_a_process_that_dies_go_once_after_a_sweep(
    session: Session, two: Settings
) -> None:
    ids = letters(session, two, 10)
    held = Held(hold_all=True)

    async def dies() -> None:
        feed = Feed(deliverer(two, held), senders=2)
        taken = await asyncio.wait_for(feed.take(ids), 30)
        assert {o.result for o in taken} == {"sending"}
        await until(lambda: len(held.started) == 2, "two on the wire")
        # The process is gone: asyncio.run() cancels the Feed's tasks as they are, with
        # nothing sent, given back or recorded.

    asyncio.run(dies())
    assert {s for s, _, _ in states(two).values()} == {"sending"}

    # A sweep once the leases have run out hands every one out again.
    later = utcnow() + timedelta(seconds=two.lease_seconds + 1)
    transport = Held()
    again = deliverer(two, transport, clock=lambda: later)

    async def sweep_and_send() -> None:
        swept = await in_thread(again.sweep)
        assert sorted(swept) == ids
        outcomes = await again.deliver_many(swept)
        assert {o.result for o in outcomes} == {"sent"}

    asyncio.run(sweep_and_send())

    after = states(two)
    assert {(s, n) for s, n, _ in after.values()} == {("sent", 2)}
    assert sorted(transport.started) == sorted(m for _, _, m in after.values())
    assert held.finished == []


def test_a_claim_that_waited_half_its_lease_is_sent_on_a_fresh_lease(
    session: Session, two: Settings
) -> None:
    # Its attempt is not spent unsent (on a last attempt that would fail a letter never
    # tried): the lease is renewed, then the letter goes.
    ids = letters(session, two, 3)
    now = [utcnow()]
    transport = Held(hold_all=True)

    async def main() -> None:
        feed = Feed(deliverer(two, transport, clock=lambda: now[0]), senders=1)
        await asyncio.wait_for(feed.take(ids), 30)
        await until(lambda: len(transport.started) == 1, "one on the wire")
        # The others wait for the one connection while half their lease goes by.
        now[0] += timedelta(seconds=two.lease_seconds / 2 + 1)
        transport.let_go()
        await feed.close(grace=None)

    asyncio.run(main())

    after = states(two)
    assert [after[i][:2] for i in ids] == [("sent", 1)] * len(ids)
    assert len(transport.started) == len(ids)


def test_a_stale_claim_taken_over_meanwhile_is_not_sent(session: Session, two: Settings) -> None:
    ids = letters(session, two, 3)
    mid = {i: m for i, (_, _, m) in states(two).items()}
    now = [utcnow()]
    transport = Held(hold_all=True)

    async def main() -> None:
        feed = Feed(deliverer(two, transport, clock=lambda: now[0]), senders=1)
        await asyncio.wait_for(feed.take(ids), 30)
        await until(lambda: len(transport.started) == 1, "one on the wire")
        # The whole lease goes by, and a sweep hands every one out to another worker.
        now[0] += timedelta(seconds=two.lease_seconds + 1)
        other = deliverer(two, Held(), clock=lambda: now[0])
        assert sorted(await in_thread(other.sweep)) == ids
        transport.let_go()
        await feed.close(grace=None)

    asyncio.run(main())

    # Only the one already on the wire went from here; the sweep gave the others back to
    # the queue (interrupted), for whoever takes them next.
    assert transport.started == [mid[ids[0]]]
    after = states(two)
    assert [after[i][:2] for i in ids] == [("retrying", 1)] * len(ids)


def test_closing_sends_what_is_on_the_wire_gives_back_the_rest_and_records_all(
    session: Session, two: Settings
) -> None:
    ids = letters(session, two, 6)
    mid = {i: m for i, (_, _, m) in states(two).items()}
    # The first goes at once; the second is held on the wire (a slow server).
    transport = Held(hold=[mid[i] for i in ids[1:]])

    async def main() -> None:
        feed = Feed(deliverer(two, transport), senders=2)
        await asyncio.wait_for(feed.take(ids), 30)
        await until(lambda: mid[ids[0]] in transport.finished, "the first sent")
        await until(lambda: len(transport.started) == 3, "two more on the wire")
        closing = asyncio.ensure_future(feed.close(grace=0))
        await asyncio.sleep(0.2)  # close() waits for the messages on the wire…
        assert not closing.done()
        transport.let_go(mid[ids[1]], mid[ids[2]])  # …which the server then takes
        await asyncio.wait_for(closing, 30)

    asyncio.run(main())

    # Every message that left is recorded sent (a sweep will not send it again); the
    # rest wait again, their attempt not counted, and none of them left.
    after = states(two)
    assert [after[i][:2] for i in ids[:3]] == [("sent", 1)] * 3
    assert [after[i][:2] for i in ids[3:]] == [("queued", 0)] * len(ids[3:])
    assert sorted(transport.started) == sorted(mid[i] for i in ids[:3])
    with session_factory(engine_for(two.database_url))() as check:
        details = check.scalars(
            select(StatusEvent.detail).where(
                StatusEvent.delivery_id == ids[3], StatusEvent.to_status == "queued"
            )
        ).all()
    assert details == ["given back unsent: its worker stopped"]

    # And the next sweep hands them out, each sent once.
    transport_again = Held()
    again = deliverer(two, transport_again)

    async def sweep_and_send() -> None:
        swept = await in_thread(again.sweep)
        assert sorted(swept) == ids[3:]
        assert {o.result for o in await again.deliver_many(swept)} == {"sent"}

    asyncio.run(sweep_and_send())
    assert sorted(transport_again.started) == sorted(mid[i] for i in ids[3:])


def test_a_bug_in_sending_one_letter_stops_neither_its_sender_nor_its_caller(
    session: Session, two: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = letters(session, two, 4)
    transport = Held()
    d = deliverer(two, transport)
    real = d._send
    broken = ids[1]

    async def send(job: Any, attempt: int) -> Any:
        if job.delivery.id == broken:
            raise RuntimeError("a bug")
        return await real(job, attempt)

    monkeypatch.setattr(d, "_send", send)

    async def main() -> list[str]:
        feed = Feed(d, senders=1)
        ticket = feed.submit(ids)
        await asyncio.wait_for(ticket.done.wait(), 30)
        await feed.close(grace=None)
        return [o.result for o in ticket.results()]

    results = asyncio.run(main())

    assert results == ["retrying" if i == broken else "sent" for i in ids]
    assert states(two)[broken][:2] == ("retrying", 1)
