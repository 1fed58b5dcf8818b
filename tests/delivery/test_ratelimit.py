"""The per-recipient-domain rate limiter, against a real Redis (database 15) and in memory."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from app.delivery.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    clear_limiters,
    domain_key,
    limiter_for,
)
from tests.support import workers

# Its own Redis database (it is flushed), beside the one conftest.REDIS_URL names; each
# xdist worker its own, the override too (two workers flushing one database fail each other).
_OVERRIDE = os.environ.get("OUTCRY_TEST_RATELIMIT_REDIS_URL")
REDIS_URL = (
    workers.redis_url(_OVERRIDE)
    if _OVERRIDE
    else workers.redis_url(
        os.environ.get("OUTCRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"), spare=1
    )
)
PREFIX = "outcry:rl:"
# Tests wait for events, not for durations: this long only fails a real hang, never a
# busy machine. Bounds below are lower bounds measured from before the first grant, so
# load can only make them easier to meet.
HANG = 30.0


class FakeClock:
    """A clock the test moves by hand, so sliding-window tests need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return MemoryRateLimiter()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisRateLimiter(client)


# --- the limit holds --------------------------------------------------------------------


def test_burst_takes_exactly_the_limit_then_says_how_long_to_wait(limiter: RateLimiter) -> None:
    key = domain_key("free-them", "president@example.org")

    granted = [limiter.try_acquire(key, limit=60) for _ in range(60)]
    wait = limiter.try_acquire(key, limit=60)

    assert granted == [0.0] * 60
    # The first slot of the burst frees one period after it was taken.
    assert 59.0 < wait <= 60.0


def test_refused_request_takes_nothing(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert limiter.try_acquire("k", limit=3) == 0.0
    for _ in range(5):
        assert limiter.try_acquire("k", limit=3) > 0.0

    # Five refusals did not push the next free slot further away.
    assert limiter.try_acquire("k", limit=3) <= 60.0
    # Other keys are not affected.
    assert limiter.try_acquire("other", limit=3) == 0.0


def test_memory_window_slides_with_the_clock() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(30):
        assert limiter.try_acquire("k", limit=60) == 0.0
    clock.now += 30
    for _ in range(30):
        assert limiter.try_acquire("k", limit=60) == 0.0

    clock.now += 29.9
    assert limiter.try_acquire("k", limit=60) == pytest.approx(0.1)

    # At exactly one period after the first 30, those 30 slots are free, and no more.
    clock.now += 0.1
    for _ in range(30):
        assert limiter.try_acquire("k", limit=60) == 0.0
    assert limiter.try_acquire("k", limit=60) == pytest.approx(30.0)


def test_memory_lowered_limit_waits_for_enough_grants_to_leave() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for second in range(10):
        clock.now = 1000.0 + second
        assert limiter.try_acquire("k", limit=10, period=60) == 0.0

    # Ten grants at 0..9 s; with a limit of 4, six must leave: the one at 6 s is the
    # sixth, freeing at 66 s.
    clock.now = 1010.0
    assert limiter.try_acquire("k", limit=4, period=60) == pytest.approx(56.0)


def test_redis_slot_frees_after_the_period(redis_client: redis.Redis) -> None:
    limiter = RedisRateLimiter(redis_client)
    for _ in range(3):
        assert limiter.try_acquire("k", limit=3, period=0.5) == 0.0
    wait = limiter.try_acquire("k", limit=3, period=0.5)
    assert 0.0 < wait <= 0.5

    time.sleep(wait)

    assert limiter.try_acquire("k", limit=3, period=0.5) == 0.0


def test_redis_keys_are_namespaced_and_expire(redis_client: redis.Redis) -> None:
    limiter = RedisRateLimiter(redis_client)
    key = domain_key("free-them", "president@example.org")
    limiter.try_acquire(key, limit=5, period=0.3)

    redis_key = PREFIX + key
    assert redis_client.exists(redis_key) == 1
    assert 0 < redis_client.pttl(redis_key) <= 300

    deadline = time.monotonic() + HANG
    while redis_client.exists(redis_key):  # Redis drops it once its 300 ms are up
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.05)

    assert redis_client.keys("*") == []


def test_memory_forgets_idle_keys() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    limiter.try_acquire("idle", limit=5, period=60)
    clock.now += limiter.sweep_interval + 1

    limiter.try_acquire("busy", limit=5, period=60)

    # White-box: the embedded server must not grow one entry per domain forever.
    assert set(limiter._windows) == {"busy"}


# --- several recipients: all or nothing ---------------------------------------------------


def test_many_keys_are_all_or_nothing(limiter: RateLimiter) -> None:
    full, free = "{appeal:a}:domain:full.example", "{appeal:a}:domain:free.example"
    assert limiter.try_acquire(full, limit=2) == 0.0
    assert limiter.try_acquire(full, limit=2) == 0.0

    assert limiter.try_acquire_many([free, full], limit=2) > 0.0

    # Nothing was taken from the free domain by the refused delivery.
    assert limiter.try_acquire(free, limit=2) == 0.0
    assert limiter.try_acquire(free, limit=2) == 0.0
    assert limiter.try_acquire(free, limit=2) > 0.0


def test_many_keys_take_one_slot_in_each(limiter: RateLimiter) -> None:
    to = domain_key("a", "minister@gov.example")
    cc = domain_key("a", "copies@union.example")
    cc2 = domain_key("a", "Press@Union.Example")

    assert limiter.try_acquire_many([to, cc, cc2], limit=2) == 0.0

    # Two Cc at one domain took one slot of it: one slot left in each domain.
    assert limiter.try_acquire(to, limit=2) == 0.0
    assert limiter.try_acquire(cc, limit=2) == 0.0
    assert limiter.try_acquire(to, limit=2) > 0.0
    assert limiter.try_acquire(cc, limit=2) > 0.0


def test_many_keys_wait_for_the_slowest_domain() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    limiter.try_acquire("early", limit=1)
    clock.now += 20
    limiter.try_acquire("late", limit=1)

    # "early" frees in 40 s, "late" in 60 s: the delivery needs both.
    assert limiter.try_acquire_many(["early", "late"], limit=1) == pytest.approx(60.0)


def test_arguments_are_checked(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="limit"):
        limiter.try_acquire("k", limit=0)
    with pytest.raises(ValueError, match="period"):
        limiter.try_acquire("k", limit=1, period=0)
    with pytest.raises(TypeError, match="one string"):
        limiter.try_acquire_many("k", limit=1)


# --- several processes share one limit -----------------------------------------------------


def _hammer(
    key: str,
    limit: int,
    period: float,
    duration: float,
    barrier: Any,
    results: Any,
) -> None:
    """Child process: take slots as fast as allowed; report (before, after) of each grant."""
    client = redis.Redis.from_url(REDIS_URL)
    limiter = RedisRateLimiter(client)
    barrier.wait()
    grants: list[tuple[float, float]] = []
    end = time.time() + duration
    while time.time() < end:
        before = time.time()
        wait = limiter.try_acquire(key, limit=limit, period=period)
        after = time.time()
        if wait == 0.0:
            grants.append((before, after))
        else:
            # Poll much faster than slots free, so the processes really compete.
            time.sleep(min(wait, 0.002))
    client.close()
    results.put(grants)


def test_two_processes_never_exceed_the_limit_together(redis_client: redis.Redis) -> None:
    limit, period, duration = 10, 1.0, 2.2
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_hammer, args=("shared", limit, period, duration, barrier, results))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    per_process = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
        assert proc.exitcode == 0

    grants = sorted(grant for process_grants in per_process for grant in process_grants)
    # Each grant happened inside its (before, after) interval. Were limit + 1 grants ever
    # inside one window of `period`, some set of limit + 1 of them would span less than
    # the period even measured at its widest (first `before` to last `after`).
    for i, (before, after) in enumerate(grants):
        later_afters = sorted(a for b, a in grants[i + 1 :] if b >= before)
        if len(later_afters) < limit:
            break
        widest = max(after, later_afters[limit - 1]) - before
        assert widest >= period, f"{limit + 1} grants within {widest:.4f} s"
    # More than one limit's worth: slots were taken again once they freed (not vacuous),
    # and both processes got slots.
    assert len(grants) > limit
    assert all(per_process)


# --- keys ----------------------------------------------------------------------------------


def test_domain_key_lowercases_and_idna_encodes() -> None:
    key = domain_key("free-them", "Präsident@Bücher.Example")

    assert key == "{appeal:free-them}:domain:xn--bcher-kva.example"
    assert domain_key("free-them", "president@bücher.example.") == key
    assert domain_key("free-them", "x@XN--BCHER-KVA.EXAMPLE") == key


def test_domain_key_separates_appeals_and_domains() -> None:
    assert domain_key("a", "x@example.org") != domain_key("b", "x@example.org")
    assert domain_key("a", "x@example.org") != domain_key("a", "x@example.net")
    # IDNA 2008: ß is its own letter, so straße.de is not strasse.de.
    assert domain_key("a", "x@straße.de").endswith(":domain:xn--strae-oqa.de")


def test_domain_key_keeps_address_literals() -> None:
    assert domain_key("a", "x@[192.0.2.1]").endswith(":domain:[192.0.2.1]")


@pytest.mark.parametrize(
    "address", ["nobody", "nobody@", "@example.org", "", "x@bad..example", "x@-bad-.example"]
)
def test_domain_key_rejects_an_address_without_a_valid_domain(address: str) -> None:
    with pytest.raises(ValueError, match="e-mail address"):
        domain_key("a", address)


# --- choosing the implementation -----------------------------------------------------------


@pytest.fixture
def clean_shared_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.mark.usefixtures("clean_shared_limiters", "redis_client")
def test_limiter_for_picks_redis_or_memory_and_shares_one_per_process() -> None:
    memory = limiter_for(None)
    shared = limiter_for(REDIS_URL)

    assert isinstance(memory, MemoryRateLimiter)
    assert limiter_for(None) is memory
    assert limiter_for("") is memory
    assert isinstance(shared, RedisRateLimiter)
    assert limiter_for(REDIS_URL) is shared
    assert shared.try_acquire("k", limit=1) == 0.0
    assert shared.try_acquire("k", limit=1) > 0.0


# --- turns for refused callers ---------------------------------------------------------------


def test_next_turn_spaces_refused_callers_by_period_over_limit(limiter: RateLimiter) -> None:
    turns = [limiter.next_turn(["k"], wait=10.0, limit=4, period=60) for _ in range(3)]

    # The first comes back when the slot frees; each later one a quarter minute after.
    assert turns == pytest.approx([10.0, 25.0, 40.0], abs=0.05)
    # Another key has its own line.
    assert limiter.next_turn(["other"], wait=2.0, limit=4, period=60) == pytest.approx(
        2.0, abs=0.05
    )


def test_next_turn_is_never_sooner_than_the_wait() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    assert limiter.next_turn(["k"], wait=1.0, limit=60) == pytest.approx(1.0)
    clock.now += 100  # the line has long gone

    assert limiter.next_turn(["k"], wait=5.0, limit=60) == pytest.approx(5.0)


def test_next_turn_over_several_keys_follows_the_longest_line(limiter: RateLimiter) -> None:
    limiter.next_turn(["busy"], wait=30.0, limit=2, period=60)

    turn = limiter.next_turn(["busy", "quiet"], wait=1.0, limit=2, period=60)

    assert turn == pytest.approx(60.0, abs=0.05)
    # Both keys' lines now end behind this caller.
    assert limiter.next_turn(["quiet"], wait=0.0, limit=2, period=60) == pytest.approx(
        90.0, abs=0.05
    )


def test_redis_turns_expire_after_they_have_passed(redis_client: redis.Redis) -> None:
    limiter = RedisRateLimiter(redis_client)
    limiter.next_turn(["k"], wait=0.1, limit=10, period=1.0)

    [key] = redis_client.keys(f"{PREFIX}turn:*")
    assert key == f"{PREFIX}turn:k".encode()
    assert 0 < redis_client.pttl(key) <= 1300


def test_try_acquire_each_is_try_acquire_many_in_turn(limiter: RateLimiter) -> None:
    to, cc = "{appeal:a}:domain:gov.example", "{appeal:a}:domain:union.example"

    waits = limiter.try_acquire_each([([to, cc], 2), ([to], 2), ([to, cc], 2), ([cc], 2)])

    # Two slots each: the third request finds `to` full and takes nothing, so the last
    # still gets a slot of `cc`.
    assert waits[:2] == [0.0, 0.0]
    assert 59.0 < waits[2] <= 60.0
    assert waits[3] == 0.0
    assert limiter.try_acquire(cc, limit=2) > 0.0
    assert limiter.try_acquire_each([]) == []


def test_try_acquire_several_takes_each_key_on_its_own_limit_and_period(
    limiter: RateLimiter,
) -> None:
    limits = [("net", 2, 3600.0), ("dom", 3, 3600.0), ("mailbox", 1, 86400.0)]

    rounds = [limiter.try_acquire_several(limits) for _ in range(4)]

    # Each key exactly as if asked alone: a full key refuses and takes nothing there,
    # and does not stop the others from taking theirs.
    assert rounds[0] == [0.0, 0.0, 0.0]
    assert rounds[1][:2] == [0.0, 0.0]
    assert 86399.0 < rounds[1][2] <= 86400.0
    assert rounds[2][1] == 0.0
    assert all(3599.0 < wait <= 3600.0 for wait in (rounds[2][0], rounds[3][0], rounds[3][1]))
    assert limiter.try_acquire("net", limit=3, period=3600.0) == 0.0  # two taken, not four
    assert limiter.try_acquire("dom", limit=4, period=3600.0) == 0.0  # three, not four
    assert limiter.try_acquire_several([]) == []


def test_redis_takes_several_limits_in_one_round_trip(redis_client: redis.Redis) -> None:
    limiter = RedisRateLimiter(redis_client)
    # Once before counting: a Redis that has not seen the script yet is sent it first.
    limiter.try_acquire_several([("warm", 1, 60.0)])
    redis_client.delete(f"{PREFIX}warm")
    sent: list[object] = []
    execute: Callable[..., Any] = redis_client.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return execute(*args, **options)

    redis_client.execute_command = counted  # type: ignore[method-assign]
    limiter.try_acquire_several([("a", 1, 60.0), ("b", 1, 60.0), ("c", 1, 60.0)])

    assert sent == ["EVALSHA"]
    assert sorted(redis_client.keys("*")) == [f"{PREFIX}{k}".encode() for k in "abc"]
    assert all(0 < redis_client.pttl(f"{PREFIX}{k}") <= 60_000 for k in "abc")
