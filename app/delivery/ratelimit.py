"""Per-recipient-domain rate limits for delivery, shared by every worker through Redis.

The limit is a sliding-window log: at most ``limit`` slots are granted for a key in any
window of ``period`` seconds, and the slot granted at ``t`` frees at exactly
``t + period``. Recipient mail servers count "N per minute" over windows like this; a
token bucket / GCRA with a burst of N would let up to 2N-1 through in one window (a full
burst, then one more every period/N), which is what gets a sender greylisted.

A delivery over the limit is never failed: ``try_acquire*`` says how long to wait and
takes nothing, and ``next_turn`` says when to come back (the deliverer waits that long).
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import idna
import redis

from app.delivery import broker

DEFAULT_PERIOD = 60.0

# A refused request always waits at least this long, so a caller's retry loop can
# never spin on a wait of 0.0 produced by float rounding.
_MIN_WAIT = 1e-6


def domain_key(appeal_slug: str, recipient: str) -> str:
    """Return the rate-limit key of the recipient's domain within one appeal."""
    local, at, domain = recipient.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an e-mail address with a domain: {recipient!r}")
    if domain.startswith("[") and domain.endswith("]"):
        # An address literal (user@[192.0.2.1]) has no IDNA form; it is its own domain.
        ascii_domain = domain.lower()
    else:
        try:
            # UTS 46 mapping lowercases and normalises as IDNA 2008 resolvers do, so
            # "Bücher.Example" and "bücher.example." share one limit. The trailing dot
            # of a fully qualified name is the same domain too.
            ascii_domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"invalid domain in e-mail address {recipient!r}: {exc}") from exc
    # The braces are a Redis Cluster hash tag: every key of one appeal hashes to one
    # slot, so a multi-recipient delivery can take its domains in one script call.
    return f"{{appeal:{appeal_slug}}}:domain:{ascii_domain}"


@lru_cache(maxsize=4096)  # IDNA encoding is slow, and an appeal's recipients repeat
def recipient_key(appeal_slug: str, recipient: str) -> str:
    """The rate-limit key of one recipient: its domain, or for a fax its number."""
    if "@" not in recipient:
        # A fax number (E.164): the line is the "server" that must not be flooded.
        return f"{{appeal:{appeal_slug}}}:number:{recipient.strip()}"
    try:
        return domain_key(appeal_slug, recipient)
    except ValueError:
        # Checked when the address was stored; should one slip through, it still
        # counts against its own (lowercased) domain and the server refuses it.
        domain = recipient.rpartition("@")[2].strip().lower()
        return f"{{appeal:{appeal_slug}}}:domain:{domain}"


# Turns: a backlog must not come back all at once. When many deliveries to one domain
# are refused together, each is told to wait for the same freed slot; were they all to
# return then, all but one would be refused again, and N waiting deliveries would cost
# N²/limit refusals. next_turn() hands out turns instead: the first refused caller
# comes back when the slot frees, each later one period/limit after the one before, so
# the backlog returns at the rate it can be served. Turns only spread the waiting; the
# slot is still taken with try_acquire*() when the caller comes back.


def _checked(keys: Iterable[str], limit: int, period: float) -> list[str]:
    """Validate arguments; return the keys without duplicates, in order."""
    if isinstance(keys, str):
        # A bare string is an Iterable[str] of characters: almost certainly a mistake.
        raise TypeError("keys must be a collection of keys, not one string")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if not (period > 0 and math.isfinite(period)):
        raise ValueError(f"period must be a positive number of seconds, got {period}")
    # A delivery to two addresses at one domain takes one slot of that domain, and the
    # Lua script below relies on each key appearing once.
    return list(dict.fromkeys(keys))


class RateLimiter(ABC):
    """What delivery and the client limits use; in Redis or in this process (below)."""

    @abstractmethod
    def try_acquire_many(
        self, keys: Iterable[str], *, limit: int, period: float = DEFAULT_PERIOD
    ) -> float:
        """Take one slot in every key or none: 0.0 if all taken, else seconds to wait."""

    @abstractmethod
    def next_turn(
        self, keys: Iterable[str], *, wait: float, limit: int, period: float = DEFAULT_PERIOD
    ) -> float:
        """Seconds until a caller refused with `wait` should come back: `wait` at the least,
        and period/limit after the caller sent back before it on any of these keys."""

    def try_acquire(self, key: str, *, limit: int, period: float = DEFAULT_PERIOD) -> float:
        """Take one slot for `key`: 0.0 if taken, else seconds until one frees (none taken)."""
        return self.try_acquire_many([key], limit=limit, period=period)

    def try_acquire_each(
        self, requests: Sequence[tuple[Iterable[str], int]], *, period: float = DEFAULT_PERIOD
    ) -> list[float]:
        """try_acquire_many() for each (keys, limit) in turn: 0.0 where taken, else the wait."""
        return [self.try_acquire_many(keys, limit=limit, period=period) for keys, limit in requests]

    def try_acquire_several(self, limits: Sequence[tuple[str, int, float]]) -> list[float]:
        """Take one slot of each (key, limit, period), each on its own (not all or nothing,
        unlike try_acquire_many): 0.0 where taken, else seconds until one frees there."""
        return [self.try_acquire(key, limit=limit, period=period) for key, limit, period in limits]


@dataclass
class _Window:
    grants: deque[float] = field(default_factory=deque)
    expires_at: float = 0.0


class MemoryRateLimiter(RateLimiter):
    """Sliding-window log in this process, for the embedded mode (one process, no Redis).

    Thread-safe; the lock is held for microseconds, so it is also called directly
    from asyncio code.
    """

    # How often (in clock seconds) idle keys are dropped, so a long-running embedded
    # server does not keep one entry per domain it ever wrote to.
    sweep_interval = 300.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._turns: dict[str, float] = {}  # key -> when the next refused caller may return
        self._next_sweep = clock() + self.sweep_interval

    def next_turn(
        self, keys: Iterable[str], *, wait: float, limit: int, period: float = DEFAULT_PERIOD
    ) -> float:
        keys = _checked(keys, limit, period)
        with self._lock:
            now = self._clock()
            turn = max([now + max(wait, 0.0), *(self._turns.get(k, 0.0) for k in keys)])
            for key in keys:
                self._turns[key] = turn + period / limit
            return turn - now

    def try_acquire_many(
        self, keys: Iterable[str], *, limit: int, period: float = DEFAULT_PERIOD
    ) -> float:
        """Take one slot in every key or none: 0.0 if all taken, else seconds to wait."""
        keys = _checked(keys, limit, period)
        with self._lock:
            now = self._clock()
            wait = 0.0
            for key in keys:
                window = self._windows.get(key)
                if window is None:
                    continue
                grants = window.grants
                while grants and grants[0] <= now - period:
                    grants.popleft()
                if len(grants) >= limit:
                    # The slot frees when the grant `limit` places from the newest leaves
                    # the window (normally the oldest; more if the limit was lowered).
                    freed_at = grants[len(grants) - limit] + period
                    wait = max(wait, freed_at - now, _MIN_WAIT)
            if wait > 0.0:
                return wait
            for key in keys:
                window = self._windows.setdefault(key, _Window())
                window.grants.append(now)
                window.expires_at = now + period
            if now >= self._next_sweep:
                self._sweep(now)
            return 0.0

    def _sweep(self, now: float) -> None:
        idle = [key for key, window in self._windows.items() if window.expires_at <= now]
        for key in idle:
            del self._windows[key]
        for key in [key for key, turn in self._turns.items() if turn <= now]:
            del self._turns[key]
        self._next_sweep = now + self.sweep_interval


# The start of every script here: `now`, the Redis server's clock in microseconds (one
# clock for every web process and worker), and `time`, TIME's two parts.
_NOW_LUA = """
if redis.replicate_commands then
  redis.replicate_commands()  -- needed for TIME before writes on Redis < 5; a no-op after
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])"""


# KEYS: the limit keys, each once. ARGV[1]: limit; ARGV[2]: period in microseconds.
# Returns 0 when a slot was taken in every key, else the microseconds until all of them
# have a free slot (and nothing was taken).
#
# One script, so the check and the take are atomic across all workers and all keys.
# The clock is the Redis server's TIME, so clocks of worker machines don't matter.
# Scores are integer microseconds (about 1.7e15, exact in a double). Members must be
# unique within a key: TIME's two fields plus the count after pruning are (two calls in
# one microsecond see different counts). They are concatenated as strings because Lua
# 5.1 prints a number that large with 14 digits only.
# Redis Cluster: all KEYS of one call must hash to one slot; domain_key() puts the
# appeal in a {hash tag} for that.
_SLIDING_WINDOW_LUA = (
    _NOW_LUA
    + """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local counts = {}
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  local count = redis.call('ZCARD', key)
  counts[i] = count
  if count >= limit then
    local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local key_wait = tonumber(entry[2]) + period - now
    if key_wait > wait then
      wait = key_wait
    end
  end
end
if wait > 0 then
  return wait
end
-- The newest entry leaves the window after one period, so the key expires then; an
-- idle domain costs nothing.
local ttl_ms = math.ceil(period / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, time[1] .. '.' .. time[2] .. '.' .. counts[i])
  redis.call('PEXPIRE', key, ttl_ms)
end
return 0
"""
)


# KEYS: the turn keys. ARGV[1]: the caller's wait; ARGV[2]: the spacing (period/limit);
# both in microseconds. Returns the microseconds until the caller's turn. Times are the
# Redis server's, as in the script above; they are written with %.0f because Lua 5.1
# would print them with 14 digits only.
_NEXT_TURN_LUA = (
    _NOW_LUA
    + """
local step = tonumber(ARGV[2])
local turn = now + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local last = tonumber(redis.call('GET', key) or '0')
  if last > turn then
    turn = last
  end
end
local following = turn + step
-- Kept until that turn has passed; an idle domain costs nothing.
local ttl_ms = math.ceil((following - now) / 1000) + 1000
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', following), 'PX', ttl_ms)
end
return turn - now
"""
)


# KEYS: limit keys, each on its own. ARGV: each key's limit and its period in
# microseconds, in turn (limit of KEYS[1], period of KEYS[1], limit of KEYS[2], …).
# Returns, for each key, 0 when a slot was taken there, else the microseconds until one
# frees there (and nothing was taken there).
#
# The sliding window above for one key, once per key, in one call: the limits of one
# web request (the flood guard's and the confirmation quota) cost one round trip. Each
# key is checked and taken atomically, as above; the keys do not depend on each other.
# Their slots differ, so this is not for Redis Cluster (nor is the rest of the web
# process's Redis use: Celery's broker is one Redis).
_EACH_KEY_LUA = (
    _NOW_LUA
    + """
local waits = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  local count = redis.call('ZCARD', key)
  local wait = 0
  if count >= limit then
    local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = tonumber(entry[2]) + period - now
  else
    redis.call('ZADD', key, now, time[1] .. '.' .. time[2] .. '.' .. count)
    redis.call('PEXPIRE', key, math.ceil(period / 1000))
  end
  waits[i] = wait
end
return waits
"""
)


class RedisRateLimiter(RateLimiter):
    """Sliding-window log in Redis, shared by every worker process on every machine.

    Redis errors (server down, timeout) propagate: the caller treats them like any
    other transient delivery error and retries later.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "outcry:rl:") -> None:
        self.client = client
        self._prefix = prefix
        # register_script sends EVALSHA and reloads the script itself after a Redis
        # restart or SCRIPT FLUSH.
        self._script = client.register_script(_SLIDING_WINDOW_LUA)
        self._turn_script = client.register_script(_NEXT_TURN_LUA)
        self._each_script = client.register_script(_EACH_KEY_LUA)

    def next_turn(
        self, keys: Iterable[str], *, wait: float, limit: int, period: float = DEFAULT_PERIOD
    ) -> float:
        keys = _checked(keys, limit, period)
        if not keys:
            return max(wait, 0.0)
        wait_us = max(0, round(wait * 1_000_000))
        step_us = max(1, round(period / limit * 1_000_000))
        turn_us = self._turn_script(
            keys=[f"{self._prefix}turn:{key}" for key in keys], args=[wait_us, step_us]
        )
        return int(turn_us) / 1_000_000

    def try_acquire_many(
        self, keys: Iterable[str], *, limit: int, period: float = DEFAULT_PERIOD
    ) -> float:
        """Take one slot in every key or none: 0.0 if all taken, else seconds to wait."""
        keys = _checked(keys, limit, period)
        if not keys:
            return 0.0
        period_us = max(1, round(period * 1_000_000))
        wait_us = self._script(keys=[self._prefix + key for key in keys], args=[limit, period_us])
        return int(wait_us) / 1_000_000

    def try_acquire_several(self, limits: Sequence[tuple[str, int, float]]) -> list[float]:
        """Take one slot of each (key, limit, period), each on its own, in one script call:
        0.0 where taken, else seconds until one frees there."""
        keys: list[str] = []
        args: list[int] = []
        for key, limit, period in limits:
            _checked([key], limit, period)
            keys.append(self._prefix + key)
            args += [limit, max(1, round(period * 1_000_000))]
        if not keys:
            return []
        waits = self._each_script(keys=keys, args=args)
        return [int(wait) / 1_000_000 for wait in waits]

    def try_acquire_each(
        self, requests: Sequence[tuple[Iterable[str], int]], *, period: float = DEFAULT_PERIOD
    ) -> list[float]:
        """try_acquire_many() for each (keys, limit) in turn, pipelined: one round trip for a
        whole batch of deliveries. Each script call is still atomic on its own."""
        checked = [(_checked(keys, limit, period), limit) for keys, limit in requests]
        period_us = max(1, round(period * 1_000_000))
        pipe = self.client.pipeline(transaction=False)
        for keys, limit in checked:
            if keys:
                self._script(
                    keys=[self._prefix + key for key in keys], args=[limit, period_us], client=pipe
                )
        replies = iter(pipe.execute())
        return [int(next(replies)) / 1_000_000 if keys else 0.0 for keys, _ in checked]


_shared: dict[str | None, RateLimiter] = {}
_shared_lock = threading.Lock()


def limiter_for(redis_url: str | None) -> RateLimiter:
    """Return this process's shared limiter: Redis when a URL is given, else in-memory."""
    # Shared because an in-memory limit only holds if every sender in the process uses
    # one limiter, and so that all senders share one Redis connection pool. An empty
    # setting ("") means no Redis, like None.
    url = redis_url or None
    with _shared_lock:
        limiter = _shared.get(url)
        if limiter is None:
            limiter = _shared[url] = _new_limiter(url)
        return limiter


def clear_limiters() -> None:
    """Forget the shared limiters and close their Redis clients (between tests)."""
    with _shared_lock:
        for limiter in _shared.values():
            if isinstance(limiter, RedisRateLimiter):
                limiter.client.close()
        _shared.clear()


def _new_limiter(redis_url: str | None) -> RateLimiter:
    if redis_url is None:
        return MemoryRateLimiter()
    # Timeouts so an unreachable Redis fails the attempt instead of hanging a worker;
    # options in the URL (?socket_timeout=…) take precedence.
    client = redis.Redis.from_url(
        redis_url, socket_timeout=10, socket_connect_timeout=broker.CONNECT_SECONDS
    )
    return RedisRateLimiter(client)


def client_waits(redis_url: str | None, limits: Sequence[tuple[str, int, float]]) -> list[float]:
    """Take one slot of each (key, limit, period), each on its own (what, and whose): 0.0
    where taken, else seconds until one frees there; one round trip to Redis for all. A
    Redis that is away costs no signature and no login: the limits are skipped, and Redis
    left alone for a while (see broker.py)."""
    if not limits:
        return []
    limiter = limiter_for(redis_url)
    try:
        return broker.call(lambda: limiter.try_acquire_several(limits))
    except broker.RedisAway:
        return [0.0] * len(limits)


def client_wait(redis_url: str | None, key: str, *, limit: int, period: float) -> float:
    """client_waits() for one key: 0.0 if a slot was taken, else seconds until one frees."""
    return client_waits(redis_url, [(key, limit, period)])[0]
