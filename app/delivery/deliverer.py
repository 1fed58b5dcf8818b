"""Deliverer: the one send loop of the Celery workers and the embedded mode.

A batch of delivery ids goes through these steps, each one transaction at most: load
what is claimable and compose it; ask the rate limiter (a delivery over its target's
limit is put off, its attempt not counted); claim; send over the transport's
connections; record results together. So a batch of twenty-five letters costs about a
dozen database round trips, not a dozen each, and a claim is committed before its
message leaves.

The steps meet in a Feed: claimed deliveries wait in one queue that every connection
takes from as soon as it is free, while the next batch is loaded and claimed, and the
results are recorded a batch at a time behind them. So no connection waits for a batch
to finish, or for the next one to be claimed; and the queue is kept short (a batch is
claimed only when few claimed letters are left waiting), so a worker holds few claims
it has not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import DatabaseUnavailable
from app.delivery import compose, service
from app.delivery.messages import Outgoing
from app.delivery.ratelimit import RateLimiter, limiter_for, recipient_key
from app.delivery.service import Attempt
from app.delivery.transports import SendError, Transport
from app.models import Delivery, DeliveryStatus, utcnow

log = logging.getLogger(__name__)

# Deliveries loaded and claimed together, one transaction each; and how many such
# batches a Feed loads and claims at once.
CHUNK = 25
PIPELINE = 2
# Results are recorded together once this many have gathered, or the first of them has
# waited RECORD_LINGER seconds, or nothing is left to send: one transaction for many
# results, and little sent but not yet recorded (what a crash would send again).
RECORD_LINGER = 0.25
# A delivery refused by the rate limit waits in the worker if its slot frees this soon;
# a longer wait is written to the database, and a later sweep hands it out again.
INLINE_WAIT_SECONDS = 1.0
# How many due deliveries one sweep hands out; a sweep task takes pages until done.
SWEEP_PAGE = 5000
# Pauses before trying again to record results the database would not take: the
# messages have gone, and a lost record means sending them again.
RECORD_RETRY_PAUSES = (0.5, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    # sent | retrying | failed | deferred (rate limit) | skipped (not due, or taken) |
    # lost (sent, but the claim had been taken over) | error (see the log)
    result: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Job:
    delivery: Delivery
    outgoing: Outgoing | None  # None: it could not be composed (`problem` says why)
    envelope: tuple[str, ...]  # the recipients still owed the message
    keys: tuple[str, ...]  # rate-limit keys; none for the supporter's own mail
    limit: int
    problem: str = ""


def rate_limiter(settings: Settings) -> RateLimiter:
    """The limiter every sender shares: in Redis with a Redis broker, else in this process."""
    url = settings.broker_url
    if url.startswith(("redis://", "rediss://")):
        return limiter_for(url)
    if url:
        log.warning("rate limits hold per worker process only: the broker is not Redis")
    return limiter_for(None)


# An SMTP reply code, with its enhanced status code if it has one ("550 5.1.1").
_SMTP_CODE = re.compile(r"\b[2-5]\d\d(?:[ -][2-5]\.\d{1,3}\.\d{1,3})?\b")


def _loggable(job: _Job, error: SendError) -> str:
    """A server's reply as the log may keep it: about the supporter's own mail, the
    server may quote their address, so only its status code is kept."""
    if job.delivery.channel in service.TARGET_CHANNELS:
        return error.reply
    codes = " ".join(dict.fromkeys(_SMTP_CODE.findall(error.reply))) or "no status code"
    return f"{codes} (the reply about the supporter's own mail is not logged)"


def judge(delivery: Delivery, attempt: int, error: SendError) -> Attempt:
    """What a failed send means: delivered after all (only copies refused), retry, or fail."""
    accepted = list(delivery.accepted)
    accepted += [r for r in error.accepted if r not in accepted]
    owed = [r for r in delivery.recipients if r not in accepted]
    result = Attempt(
        delivery_id=delivery.id,
        letter_id=delivery.letter_id,
        attempt=attempt,
        max_attempts=delivery.max_attempts,
        reply=error.reply,
        failed=True,
        permanent=error.permanent,
        accepted=tuple(accepted) if error.accepted else None,
    )
    if error.accepted and not owed:
        # Every target has it and only a copy (Cc) was refused: the letter is delivered,
        # and sending it again would give the targets a second one.
        return replace(result, failed=False)
    if error.refused and all(r in error.refused for r in owed):
        # The targets' own replies decide, not those for the campaign's copies.
        return replace(result, permanent=all(error.refused[r][0] >= 500 for r in owed))
    return result


class Deliverer:
    """Sends deliveries through one transport; shared by Celery tasks and the embedded loop."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        transport: Transport,
        settings: Settings,
        *,
        upkeep: Callable[..., object] | None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.sessions = sessions
        self.transport = transport
        self.settings = settings
        self.limiter = limiter if limiter is not None else rate_limiter(settings)
        self.clock = clock
        # The letters' privacy passes (app.letters.privacy.upkeep), run by the sweep: handed
        # in by whoever builds the Deliverer, since letters build on delivery, not back.
        # No default: a Deliverer that skips them (None) says so, so none forgets to erase.
        self.upkeep = upkeep
        self._upkeep_due = 0.0

    async def deliver(self, delivery_id: int) -> Outcome:
        """Claim, send and record one delivery; safe to call twice (the second is skipped)."""
        [outcome] = await self.deliver_many([delivery_id])
        return outcome

    async def deliver_many(
        self, ids: Sequence[int], *, until: asyncio.Event | None = None
    ) -> list[Outcome]:
        """Deliver `ids` through a Feed of this call's own, in batches of CHUNK; each id not
        due or taken is skipped. Returns once every one is recorded, or once `until` is
        set: then what is on the wire is sent and recorded, and the claims not yet sent
        are given back (`sending` in the outcomes: not finished here)."""
        if not ids:
            return []
        feed = Feed(self, senders=self.settings.send_concurrency)
        try:
            ticket = feed.submit(ids)
            if until is None:
                await ticket.done.wait()
            else:
                done = asyncio.ensure_future(ticket.done.wait())
                halted = asyncio.ensure_future(until.wait())
                try:
                    await asyncio.wait({done, halted}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    done.cancel()
                    halted.cancel()
            return ticket.results()
        finally:
            await feed.close(grace=0)

    # --- the steps ---------------------------------------------------------------------

    def _load(self, ids: list[int]) -> list[_Job]:
        with session_scope(self.sessions) as session:
            deliveries = service.claimable(session, ids, now=self.clock())
            # Composed here, in the session, so a composer may read what it needs.
            return [self._job(d) for d in deliveries]

    def _job(self, delivery: Delivery) -> _Job:
        if delivery.letter is None:
            return self._message_job(delivery)
        appeal = delivery.letter.appeal
        keys: tuple[str, ...] = ()
        if delivery.channel in service.TARGET_CHANNELS:
            recipients = [*delivery.recipients, *delivery.cc]
            keys = tuple(dict.fromkeys(recipient_key(appeal.slug, r) for r in recipients))
        try:
            outgoing = compose.outgoing(delivery, delivery.letter, appeal, settings=self.settings)
        except Exception as exc:
            # The type only: the error's text may quote the supporter's name or address.
            log.error("delivery %s could not be composed: %s", delivery.id, type(exc).__name__)
            problem = f"could not compose the message: {type(exc).__name__}: {exc}"
            return _Job(delivery, None, (), keys, appeal.rate_limit, problem)
        envelope = tuple(r for r in outgoing.recipients if r not in delivery.accepted)
        return _Job(delivery, outgoing, envelope, keys, appeal.rate_limit)

    def _message_job(self, delivery: Delivery) -> _Job:
        """A message about no letter (an invitation): no target, so no rate limit."""
        try:
            if delivery.invitation is None:
                raise ValueError("a delivery with neither a letter nor an invitation")
            outgoing = compose.invitation(delivery, delivery.invitation, settings=self.settings)
        except Exception as exc:
            log.error("delivery %s could not be composed: %s", delivery.id, type(exc).__name__)
            problem = f"could not compose the message: {type(exc).__name__}"
            return _Job(delivery, None, (), (), 0, problem)
        envelope = tuple(r for r in outgoing.recipients if r not in delivery.accepted)
        return _Job(delivery, outgoing, envelope, (), 0)

    async def _pace(
        self, jobs: list[_Job]
    ) -> tuple[list[_Job], dict[int, datetime], dict[int, str]]:
        """Split jobs into those with a rate-limit slot, those put off (until when), errors."""
        # A message that could not be composed is failed without costing a slot.
        ready: list[_Job] = []
        limited: list[_Job] = []
        for job in jobs:
            (limited if job.keys and job.outgoing is not None else ready).append(job)
        later: dict[int, datetime] = {}
        errors: dict[int, str] = {}
        period = self.settings.rate_period_seconds

        def try_acquire(batch: list[_Job]) -> list[float]:
            requests = [(job.keys, job.limit) for job in batch]
            return self.limiter.try_acquire_each(requests, period=period)

        async def wait_or_defer(job: _Job, wait: float) -> None:
            try:
                deadline = time.monotonic() + INLINE_WAIT_SECONDS
                while time.monotonic() + wait <= deadline:
                    await asyncio.sleep(wait)
                    [wait] = await asyncio.to_thread(try_acquire, [job])
                    if wait == 0.0:
                        ready.append(job)
                        return
                turn = await asyncio.to_thread(
                    self.limiter.next_turn, job.keys, wait=wait, limit=job.limit, period=period
                )
            except Exception as exc:
                refuse(job, exc)
                return
            later[job.delivery.id] = self.clock() + timedelta(seconds=turn)

        def refuse(job: _Job, exc: Exception) -> None:
            # No answer from the limiter: never send unchecked. The delivery stays as it
            # is, and a later sweep hands it out again.
            log.warning("rate limiter failed for delivery %s: %s", job.delivery.id, exc)
            errors[job.delivery.id] = f"rate limiter: {exc}"

        if limited:
            try:
                # One trip to a thread (and to Redis) for the whole batch.
                waits = await asyncio.to_thread(try_acquire, limited)
            except Exception as exc:
                for job in limited:
                    refuse(job, exc)
                return ready, later, errors
            ready += [job for job, wait in zip(limited, waits, strict=True) if wait == 0.0]
            refused = [(job, wait) for job, wait in zip(limited, waits, strict=True) if wait]
            await asyncio.gather(*(wait_or_defer(job, wait) for job, wait in refused))
        return ready, later, errors

    def _defer(self, until: dict[int, datetime]) -> None:
        with session_scope(self.sessions) as session:
            service.defer(session, until)

    def _claim(self, jobs: list[_Job]) -> list[tuple[_Job, int]]:
        if not jobs:
            return []
        with session_scope(self.sessions) as session:
            won = service.claim(
                session,
                [job.delivery for job in jobs],
                now=self.clock(),
                lease=timedelta(seconds=self.settings.lease_seconds),
            )
        return [(job, won[job.delivery.id]) for job in jobs if job.delivery.id in won]

    def _renew(self, claims: dict[int, int]) -> set[int]:
        with session_scope(self.sessions) as session:
            return service.renew(
                session,
                claims,
                now=self.clock(),
                lease=timedelta(seconds=self.settings.lease_seconds),
            )

    def _release(self, claims: dict[int, int]) -> list[int]:
        with session_scope(self.sessions) as session:
            return service.release(session, claims, now=self.clock())

    def _unsent(self, job: _Job, attempt: int, why: str) -> Attempt:
        """A claimed attempt given up before its message left: retried like a failed send."""
        delivery = job.delivery
        return Attempt(
            delivery.id, delivery.letter_id, attempt, delivery.max_attempts, reply=why, failed=True
        )

    async def _send(self, job: _Job, attempt: int) -> Attempt:
        delivery = job.delivery
        done = Attempt(delivery.id, delivery.letter_id, attempt, delivery.max_attempts, reply="")
        if job.outgoing is None:
            return replace(done, reply=job.problem, failed=True, permanent=True)
        if not job.envelope:
            return replace(done, reply="every recipient has the message already")
        try:
            reply = await self.transport.send(
                job.outgoing.message, sender=job.outgoing.sender, recipients=job.envelope
            )
        except SendError as exc:
            log.warning("delivery %s attempt %s: %s", delivery.id, attempt, _loggable(job, exc))
            return judge(delivery, attempt, exc)
        except Exception as exc:
            # A transport bug: retried with backoff like a connection error, rather than
            # left `sending` until its lease runs out.
            log.exception("delivery %s attempt %s: the transport failed", delivery.id, attempt)
            return replace(done, reply=f"{type(exc).__name__}: {exc}", failed=True)
        return replace(done, reply=reply)

    async def _record(self, attempts: Sequence[Attempt]) -> dict[int, DeliveryStatus]:
        if not attempts:
            return {}
        for pause in (*RECORD_RETRY_PAUSES, None):
            try:
                recorded: dict[int, DeliveryStatus] = await asyncio.to_thread(
                    self._record_once, attempts
                )
                return recorded
            except (SQLAlchemyError, DatabaseUnavailable):
                # DatabaseUnavailable: SQLite's writer lock, held too long by another writer.
                if pause is None:
                    raise
                log.exception("recording %d attempts failed; again in %s s", len(attempts), pause)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    def _record_once(self, attempts: Sequence[Attempt]) -> dict[int, DeliveryStatus]:
        with session_scope(self.sessions) as session:
            return service.record(
                session,
                attempts,
                now=self.clock(),
                retry_base=self.settings.retry_base_seconds,
                retry_cap=self.settings.retry_cap_seconds,
            )

    def sweep(self, *, grace: float = 0, limit: int = SWEEP_PAGE) -> list[int]:
        """Expire stale unconfirmed letters; hand out (for lease_seconds) and return the ids of
        up to `limit` deliveries that are due. At most once a sweep interval, also forget
        the addresses and delete the never-confirmed letters whose time has come."""
        with session_scope(self.sessions) as session:
            now = self.clock()
            service.expire_unconfirmed(session, now=now, days=self.settings.confirmation_days)
            ids = service.hand_out(
                session,
                now=now,
                lease=timedelta(seconds=self.settings.lease_seconds),
                limit=limit,
                grace=grace,
            )
        self._privacy_upkeep()
        return ids

    def _privacy_upkeep(self) -> None:
        # Its own transaction, after the hand-out, so erasing never holds up sending; and
        # not on every poll of the embedded loop (four a second), once a sweep interval.
        due = time.monotonic()
        if self.upkeep is None or due < self._upkeep_due:
            return
        self._upkeep_due = due + self.settings.sweep_interval
        try:
            with session_scope(self.sessions) as session:
                self.upkeep(session, now=self.clock(), settings=self.settings)
        except SQLAlchemyError:
            log.exception("forgetting supporters' details failed; the next sweep tries again")


class Ticket:
    """The ids one caller handed to a Feed, and what has come of each so far."""

    def __init__(self, ids: list[int]):
        self.ids = ids
        self.outcomes: dict[int, Outcome] = {}
        self.sending: set[int] = set()  # claimed, not yet recorded
        # Set once every id is claimed or finished without a claim; then once all are done.
        self.claimed = asyncio.Event()
        self.done = asyncio.Event()
        self._check()

    def results(self) -> list[Outcome]:
        """An outcome for each id, in order: `sending` for one claimed and not yet recorded."""
        return [self.outcomes.get(i, Outcome(i, "sending")) for i in self.ids]

    def mark_sending(self, ids: set[int]) -> None:
        self.sending |= ids
        self._check()

    def finish(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.sending.discard(outcome.delivery_id)
            self.outcomes[outcome.delivery_id] = outcome
        self._check()

    def _check(self) -> None:
        if len(self.outcomes) + len(self.sending) >= len(self.ids):
            self.claimed.set()
        if len(self.outcomes) >= len(self.ids):
            self.done.set()


@dataclass(frozen=True, slots=True)
class _Claimed:
    job: _Job
    attempt: int
    at: datetime  # when it was claimed: its lease runs from then
    ticket: Ticket


class Feed:
    """Claimed deliveries in one queue, sent by `senders` coroutines (one a connection), each
    taking the next as soon as its last is sent, whichever batch or caller it came from.

    Made inside the event loop that sends, and kept for as long as that loop sends: a
    Celery worker process keeps one for all its tasks, deliver_many() makes its own.
    """

    def __init__(self, deliverer: Deliverer, *, senders: int):
        self.deliverer = deliverer
        self.senders = senders
        self._queue: asyncio.Queue[_Claimed] = asyncio.Queue()
        self._room = asyncio.Condition()
        self._gate = asyncio.Semaphore(PIPELINE)
        self._results: list[tuple[Attempt, Ticket]] = []
        self._changed = asyncio.Event()  # for the recorder: see _sender
        self._busy = 0  # messages on the wire
        self._claiming = 0  # letters of the batch being paced and claimed
        self._open = 0  # ids handed in and not yet finished
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._idle = asyncio.Event()  # no message on the wire
        self._idle.set()
        self._stopping = False  # close(): claim nothing more, send nothing more
        self._held: list[_Claimed] = []  # claimed, taken by a sender once stopping
        self._closing = False  # close(): the recorder ends once every result is recorded
        self._preparing: set[asyncio.Task[None]] = set()
        self._senders = [asyncio.create_task(self._sender()) for _ in range(senders)]
        self._recording = asyncio.create_task(self._recorder())
        for task in (*self._senders, self._recording):
            task.add_done_callback(_said_why)

    def submit(self, ids: Sequence[int]) -> Ticket:
        """Start delivering `ids` (each once) in batches of CHUNK; the ticket tells how far."""
        ticket = Ticket(list(dict.fromkeys(ids)))
        self._open += len(ticket.ids)
        if ticket.ids:
            self._quiet.clear()
        for start in range(0, len(ticket.ids), CHUNK):
            task = asyncio.create_task(self._prepare(ticket.ids[start : start + CHUNK], ticket))
            self._preparing.add(task)
            task.add_done_callback(self._preparing.discard)
        return ticket

    async def take(self, ids: Sequence[int]) -> list[Outcome]:
        """Hand `ids` over and return once each is claimed or finished without a claim (a
        claim is committed, so a crash from then on leaves it to the sweeper): what came of
        each so far, `sending` for those claimed."""
        ticket = self.submit(ids)
        await ticket.claimed.wait()
        return ticket.results()

    async def close(self, *, grace: float | None) -> None:
        """Wait up to `grace` seconds (None: as long as it takes) for every id handed in to
        finish; then stop without losing or repeating a letter: claim nothing more, give
        back the claims not yet on the wire (they wait again, their attempt not counted),
        let the messages on the wire finish, and record every result."""
        if not self._quiet.is_set() and (grace is None or grace > 0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), grace)
        self._stopping = True
        async with self._room:
            self._room.notify_all()  # batches waiting to claim: they claim nothing now
        await asyncio.gather(*self._preparing, return_exceptions=True)
        await self._give_back()
        await self._idle.wait()  # each send is bounded by the transport's timeouts
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._closing = True
        self._changed.set()
        await asyncio.gather(self._recording, return_exceptions=True)
        if self._open:
            # A claim that could not be given back runs out, and the sweeper hands the
            # delivery out again.
            log.warning("stopped with %d deliveries unfinished", self._open)

    async def _give_back(self) -> None:
        held, self._held = self._held, []
        while not self._queue.empty():
            held.append(self._queue.get_nowait())
        if not held:
            return
        claims = {c.job.delivery.id: c.attempt for c in held}
        why = "given back unsent: the worker stopped"
        try:
            await asyncio.to_thread(self.deliverer._release, claims)
        except Exception:
            log.exception("giving back %d claims failed; their leases run out", len(held))
            why = "left claimed: the worker stopped"
        for c in held:
            self._finish(c.ticket, [Outcome(c.job.delivery.id, "skipped", why)])

    def _finish(self, ticket: Ticket, outcomes: list[Outcome]) -> None:
        ticket.finish(outcomes)
        self._open -= len(outcomes)
        if not self._open:
            self._quiet.set()

    async def _prepare(self, ids: list[int], ticket: Ticket) -> None:
        """Load, pace and claim one batch, and queue what was claimed for the senders."""
        d = self.deliverer
        async with self._gate:
            try:
                jobs = await asyncio.to_thread(d._load, ids)
                claimed, later, errors = await self._claim(jobs, ticket)
            except Exception:
                # A database outage or a bug must not stop the other batches; a claim
                # taken here runs out, and the sweeper hands the delivery out again.
                log.exception("delivering %d deliveries failed", len(ids))
                self._finish(ticket, [Outcome(i, "error") for i in ids])
                return
        taken = {job.delivery.id for job, _ in claimed}
        ticket.mark_sending(taken)
        outcomes: list[Outcome] = []
        for i in ids:
            if i in errors:
                outcomes.append(Outcome(i, "error", errors[i]))
            elif i in later:
                outcomes.append(Outcome(i, "deferred", f"rate limit: until {later[i]:%H:%M:%S}"))
            elif i not in taken:
                outcomes.append(Outcome(i, "skipped"))
        self._finish(ticket, outcomes)

    async def _claim(
        self, jobs: list[_Job], ticket: Ticket
    ) -> tuple[list[tuple[_Job, int]], dict[int, datetime], dict[int, str]]:
        """Pace and claim `jobs` once fewer claimed letters wait than there are senders, and
        queue those claimed.

        So the queue never runs dry while a batch is claimed, and stays short: a process
        holds at most `senders` + CHUNK claims not yet on the wire (a crash leaves them
        to the sweeper), and a rate-limit slot is taken just before its letter is sent.
        One batch at a time: a batch waiting (at most INLINE_WAIT_SECONDS) for a slot of
        the rate limit holds back the next one's claim, while the queue drains.
        """
        d = self.deliverer
        if not jobs:
            return [], {}, {}
        async with self._room:
            await self._room.wait_for(lambda: self._stopping or self._has_room())
            if self._stopping:
                return [], {}, {}
            self._claiming += len(jobs)
        try:
            ready, later, errors = await d._pace(jobs)
            if later:
                await asyncio.to_thread(d._defer, later)
            claimed = await asyncio.to_thread(d._claim, ready)
            at = d.clock()
            for job, attempt in claimed:
                self._queue.put_nowait(_Claimed(job, attempt, at, ticket))
            return claimed, later, errors
        finally:
            self._claiming -= len(jobs)
            async with self._room:
                self._room.notify_all()

    async def _sender(self) -> None:
        """One connection's worth of sending: the next claimed delivery, for ever."""
        while True:
            item = await self._queue.get()
            if self._has_room():
                async with self._room:
                    self._room.notify_all()
            if self._stopping:
                self._held.append(item)  # close() gives it back
                continue
            self._busy += 1
            self._idle.clear()
            try:
                attempt = await self._attempt(item)
            except Exception as exc:
                # A bug: the letter is tried again later, never left claimed for ever, and
                # whoever waits for it still hears.
                log.exception("delivery %s: sending failed", item.job.delivery.id)
                attempt = self.deliverer._unsent(item.job, item.attempt, f"{type(exc).__name__}")
            finally:
                self._busy -= 1
                if not self._busy:
                    self._idle.set()
            if attempt is None:
                continue
            self._results.append((attempt, item.ticket))
            # The recorder wakes for the first result (it then waits RECORD_LINGER at
            # most) and when the batch is full or nothing is left to send; not for each.
            if len(self._results) == 1 or self._record_now():
                self._changed.set()

    async def _attempt(self, item: _Claimed) -> Attempt | None:
        """Send one claimed delivery; None if its claim was taken over before it left."""
        d = self.deliverer
        if d.clock() - item.at > timedelta(seconds=d.settings.lease_seconds / 2):
            # It waited long in the worker: its lease might run out while it is on the
            # wire, and the sweeper hand it out again. A fresh lease first, or not at all.
            renewed = await asyncio.to_thread(d._renew, {item.job.delivery.id: item.attempt})
            if item.job.delivery.id not in renewed:
                log.warning(
                    "delivery %s was not sent: its claim had been taken over",
                    item.job.delivery.id,
                )
                outcome = Outcome(item.job.delivery.id, "lost", "its claim had been taken over")
                self._finish(item.ticket, [outcome])
                return None
        return await d._send(item.job, item.attempt)

    async def _recorder(self) -> None:
        """Record results in batches, behind the senders."""
        while True:
            # A bound on the wait, should a wake-up ever be missed.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)
            self._changed.clear()
            if not self._results:
                if self._closing:
                    return
                continue
            if not self._record_now() and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), RECORD_LINGER)
                self._changed.clear()
            batch, self._results = self._results, []
            await self._record(batch)
            if self._closing and not self._results:
                return

    def _has_room(self) -> bool:
        return self._queue.qsize() + self._claiming < self.senders

    def _record_now(self) -> bool:
        """A batch of results is full, or nothing is left to send."""
        return len(self._results) >= CHUNK or not (self._busy or self._queue.qsize())

    async def _record(self, batch: list[tuple[Attempt, Ticket]]) -> None:
        try:
            recorded: dict[int, DeliveryStatus] | None = await self.deliverer._record(
                [a for a, _ in batch]
            )
        except Exception:
            # The messages went; their claims run out and they are sent again.
            log.exception("recording %d attempts failed", len(batch))
            recorded = None
        for a, ticket in batch:
            if recorded is None:
                outcome = Outcome(a.delivery_id, "error", a.reply)
            elif (status := recorded.get(a.delivery_id)) is None:
                log.warning(
                    "delivery %s was tried but its claim had been taken over", a.delivery_id
                )
                outcome = Outcome(a.delivery_id, "lost", a.reply)
            else:
                outcome = Outcome(a.delivery_id, status.value, a.reply)
            self._finish(ticket, [outcome])


def _said_why(task: asyncio.Task[None]) -> None:
    # A sender or the recorder never ends but by close(); should a bug end one, the
    # letters it would have taken wait for their leases to run out and for the sweeper.
    if not task.cancelled() and task.exception() is not None:
        log.error("a delivery feed stopped", exc_info=task.exception())
