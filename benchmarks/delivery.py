"""Delivery throughput against an aiosmtpd sink on loopback. A script that prints figures.

One run sends the same letter (To one target, Cc two copies) to one sink three ways:

  (a) Outcry: confirmed letters in PostgreSQL, their ids through Redis, `outcry worker`
      (two processes) claiming, sending and recording them;
  (b) naive: one smtplib connection per message;
  (c) the sink's ceiling: one smtplib client sending every message over one connection;

then the same three with STARTTLS, as a mail relay on port 587 is used (on loopback a
plain connection costs next to nothing; a TLS handshake is what a real one costs); then
writes 10,000 confirmed letters to the outbox and times them to delivered with two
worker processes, counting the database statements and transactions the workers made.

With --relay it measures instead what users meet: the letters go to a real relay, a
private Postfix (tests/support/postfix.py) that relays them on to the sink, 20 ms away:
this kernel has no netem qdisc, so the distance is a TCP proxy of this script's own on
loopback that holds every chunk 10 ms in each direction. (a) Outcry's workers, (b) one
smtplib connection a message and (c) one smtplib client on one kept-open connection,
all through the proxy; the targets are (a) >= 10x (b) and (a) >= 80% of (c) times the
connections Outcry keeps open (worker processes x OUTCRY_SEND_CONCURRENCY).

    .venv/bin/python benchmarks/delivery.py [--letters 1000] [--rounds 3] [--outbox 10000]
    .venv/bin/python benchmarks/delivery.py --relay [--letters 600] [--naive 40] [--rounds 3]

(a), (b) and (c) take turns over several rounds, so that a change in the load of this
shared machine falls on all three alike; the medians are compared.

Needs PostgreSQL and Redis on loopback, as the tests do; uses its own database
(outcry_bench_delivery) and Redis database (14), both emptied first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("OUTCRY_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "outcry_bench_delivery"
REDIS_URL = os.environ.get("OUTCRY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SENDER = "letters@localhost"
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


# --- the sink: its own process, so it does not share a CPU core's GIL with a client ------


def run_sink(port: int, cert: str | None = None) -> None:
    """Accept everything (offering STARTTLS with `cert`); print how many messages and distinct
    Message-IDs it has on each "count" line of stdin."""
    import ssl

    from aiosmtpd.controller import Controller

    class Count:
        def __init__(self) -> None:
            self.messages = 0
            self.ids: set[bytes] = set()

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages += 1
            found = _MESSAGE_ID.search(envelope.content)
            self.ids.add(found.group(1) if found else b"")
            return "250 2.0.0 Ok"

    handler = Count()
    tls = None
    if cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert)
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=tls)
    controller.start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            counted = {"messages": handler.messages, "ids": len(handler.ids)}
            # The sink's own CPU time so far, to tell its cost per message from a client's.
            print(json.dumps({**counted, "cpu": time.process_time()}), flush=True)
    controller.stop()


class Sink:
    def __init__(self, cert: Path | None = None) -> None:
        from tests.support.smtp import free_port

        self.port = free_port()
        self.cert = cert
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(self.port), *([str(cert)] if cert else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    @property
    def url(self) -> str:
        tls = "?starttls=true" if self.cert else ""
        return f"smtp://127.0.0.1:{self.port}{tls}"

    def client(self) -> smtplib.SMTP:
        """A smtplib connection, after STARTTLS when the sink offers it."""
        client = smtplib.SMTP("127.0.0.1", self.port)
        if self.cert:
            client.starttls(context=ssl.create_default_context(cafile=str(self.cert)))
        return client

    def count(self) -> dict[str, float]:
        """Messages and distinct Message-IDs received so far, and the sink's CPU seconds."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        result: dict[str, float] = json.loads(self.proc.stdout.readline())
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


# --- the distance: a TCP proxy that holds every chunk `delay` seconds each way -----------


def run_proxy(listen: int, upstream: int, delay: float) -> None:
    """Forward 127.0.0.1:listen to 127.0.0.1:upstream, each chunk delivered `delay` seconds
    after it arrived, in order (a link of that one-way latency and ample bandwidth)."""
    import asyncio

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        sending = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + delay, data))
        except ConnectionError:
            pass
        queue.put_nowait((loop.time() + delay, b""))
        await sending

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True
        )

    async def serve() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", listen)
        print("ready", flush=True)
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(serve())


class Proxy:
    """The delay proxy in its own process, so it shares no core's GIL with a client."""

    def __init__(self, upstream: int, delay: float):
        from tests.support.smtp import free_port

        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--proxy", str(self.port), str(upstream), str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


# --- a worker that counts its database statements -----------------------------------------


def run_worker(argv: list[str]) -> None:
    """`outcry worker …`, with every SQL statement and transaction of each process counted."""
    from celery.signals import worker_process_shutdown
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts: Counter[str] = Counter()

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(*_args: Any) -> None:
        counts["statements"] += 1

    @event.listens_for(Engine, "commit")
    def _commit(*_args: Any) -> None:
        counts["transactions"] += 1

    @event.listens_for(Engine, "rollback")
    def _rollback(*_args: Any) -> None:
        counts["transactions"] += 1

    @worker_process_shutdown.connect
    def _dump(**_kwargs: Any) -> None:
        out = Path(os.environ["BENCH_COUNTS_DIR"]) / f"{os.getpid()}.json"
        out.write_text(json.dumps(counts))

    from app.cli import main

    sys.argv = ["outcry", *argv]
    main()


def make_certificate(directory: Path) -> Path:
    """A self-signed certificate (and its key, in the same file) for 127.0.0.1."""
    pem = directory / "sink.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    pem.write_text((directory / "cert.pem").read_text() + (directory / "key.pem").read_text())
    return pem


# --- set-up --------------------------------------------------------------------------------


def fresh_database() -> str:
    import psycopg

    from app.core.migrate import upgrade

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_NAME}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{PG_NAME}"
    upgrade(url)
    return url


def empty(url: str) -> None:
    from sqlalchemy import text

    from app.core.db import engine_for
    from app.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine_for(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


_written = 0


def write_outbox(url: str, count: int) -> list[int]:
    """`count` confirmed letters (To the target, Cc two copies) and their deliveries."""
    global _written
    from app.core.db import engine_for, session_factory, session_scope
    from tests.appeals.factories import make_appeal
    from tests.delivery.factories import outbox

    with session_scope(session_factory(engine_for(url))) as session:
        # No domain limit gets in the way of a throughput figure; the target has no fax.
        appeal = make_appeal(
            session, rate_limit=100_000, require_confirmation=False, targets=TARGETS
        )
        ids = outbox(session, appeal, count=count, first=_written)
    _written += count
    return ids


def sample_messages(count: int) -> list[bytes]:
    """The letter as Outcry builds it, `count` times with distinct Message-IDs, as bytes."""
    from email.policy import SMTP

    from app.delivery import messages
    from tests.appeals.factories import appeal_data

    data = appeal_data()
    body = data["letter"]["en"]["body"].replace("{{", "").replace("}}", "")
    built = []
    for n in range(count):
        message = messages.build(
            subject="Free them now",
            body=body,
            from_name=f"Supporter {n} via {data['sender_name']}",
            from_address=SENDER,
            to=[messages.mailbox("A. President", "president@example.org")],
            cc=[messages.plain(a) for a in data["copies"]],
            message_id=f"<bench.{n}@localhost>",
            date=datetime.now(UTC),
            language="en",
        )
        built.append(message.as_bytes(policy=SMTP))
    return built


def compose_cost(count: int = 2000) -> None:
    """What building and flattening one letter costs with a Latin and a Cyrillic signer's
    name: the email package folds a non-ASCII display name as encoded words, slowly."""
    from email.policy import SMTP

    from app.delivery import messages

    def run(name: str) -> float:
        started = time.perf_counter()
        for n in range(count):
            messages.build(
                subject="Free them now",
                body="Dear President,\n\nRelease them.\n" * 5,
                from_name=f"{name} {n} via Solidarity Campaign",
                from_address=SENDER,
                to=[messages.mailbox("A. President", "president@example.org")],
                cc=[messages.plain("copies@example.org"), messages.plain("campaign@example.net")],
                message_id=f"<bench.{n}@localhost>",
                date=datetime.now(UTC),
                language="en",
            ).as_bytes(policy=SMTP)
        return 1000 * (time.perf_counter() - started) / count

    latin, cyrillic = run("Ada Example"), run("Айгуль Пример")
    print(f"\none letter built and flattened: {latin:.2f} ms with a Latin signer's name,")
    print(f"{cyrillic:.2f} ms with a Cyrillic one ({cyrillic / latin:.1f}x)")


# Delivery ids a task, as the web app enqueues them (OUTCRY_SEND_BATCH); --task-batch.
TASK_BATCH = 50
RECIPIENTS = ["president@example.org", "copies@example.org", "campaign@example.net"]
TARGETS = [{"name": "A. President", "title": "President", "email": RECIPIENTS[0]}]


# --- the three ways ------------------------------------------------------------------------


def naive(sink: Sink | Endpoint, payloads: list[bytes]) -> int:
    """(b) one connection a message; how many were sent."""
    for payload in payloads:
        with sink.client() as client:
            client.sendmail(SENDER, RECIPIENTS, payload)
    return len(payloads)


def ceiling(sink: Sink | Endpoint, payloads: list[bytes]) -> int:
    """(c) every message over one kept-open connection; how many were sent."""
    with sink.client() as client:
        for payload in payloads:
            client.sendmail(SENDER, RECIPIENTS, payload)
    return len(payloads)


# --- what a run costs: wall time, and CPU time of the whole machine and of the sink -------


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine since boot: every process on every core
    (the sink, a client or worker, PostgreSQL, Redis), idle and iowait left out."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    rate: float  # messages a second
    machine_ms: float  # CPU milliseconds a message, all processes together
    sink_ms: float  # CPU milliseconds a message, the sink alone
    here_ms: float  # CPU milliseconds a message, this process: the client of (b) and (c)


def measure(sink: Sink, send: Callable[[], int]) -> Run:
    """Run `send` (which returns how many messages it sent) and what it cost a message."""
    before, cpu, here = sink.count(), machine_cpu(), time.process_time()
    started = time.perf_counter()
    sent = send()
    elapsed = time.perf_counter() - started
    here = time.process_time() - here
    after, cpu = sink.count(), machine_cpu() - cpu
    assert after["messages"] - before["messages"] == sent, "the sink missed messages"
    return Run(
        rate=sent / elapsed,
        machine_ms=1000 * cpu / sent,
        sink_ms=1000 * (after["cpu"] - before["cpu"]) / sent,
        here_ms=1000 * here / sent,
    )


def worker_env(url: str, sink: Sink, counts_dir: Path) -> dict[str, str]:
    from tests.support.processes import outcry_env

    env = outcry_env(
        database_url=url,
        broker_url=REDIS_URL,
        smtp_url=sink.url,
        secret_key="bench",
        # No sweeper runs here; a long lease keeps a busy machine from handing anything
        # out twice.
        lease_seconds="600",
    )
    env["BENCH_COUNTS_DIR"] = str(counts_dir)
    if sink.cert:
        env["SSL_CERT_FILE"] = str(sink.cert)  # the worker trusts the sink's own certificate
    return env


class Worker:
    """`outcry worker` (counting its SQL) against `sink`, started once for several runs."""

    def __init__(self, url: str, sink: Sink, processes: int):
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        self.url = url
        self.sink = sink
        self.work = Path(tempfile.mkdtemp(prefix="outcry-bench-"))
        log = self.work / "worker.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", "worker", f"--concurrency={processes}"],
                env=worker_env(url, sink, self.work),
                cwd=self.work,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the worker did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def deliver(self, ids: list[int]) -> int:
        """(a) Enqueue `ids` as the web app does after commit and wait until all are sent."""
        from sqlalchemy import func, select

        from app.core.db import engine_for
        from app.delivery.dispatch import CeleryDispatcher
        from app.models import Delivery, DeliveryStatus

        # Polled by id range, not by IN (ids): thousands of bound parameters every 50 ms
        # cost this process a third of a core, taken from the worker it is timing.
        in_range = Delivery.id.between(min(ids), max(ids))
        sent = select(func.count()).where(in_range, Delivery.status == DeliveryStatus.sent)
        with engine_for(self.url).connect() as conn:
            others = conn.execute(select(func.count()).where(in_range)).scalar_one() - len(ids)
            assert others == 0, f"{others} other deliveries among these ids"
        started = time.perf_counter()
        CeleryDispatcher(REDIS_URL, batch=TASK_BATCH).enqueue(ids)
        with engine_for(self.url).connect() as conn:
            while conn.execute(sent).scalar_one() < len(ids):
                if time.perf_counter() - started > 1800:
                    raise SystemExit("not delivered within half an hour")
                time.sleep(0.05)
                conn.rollback()
        return len(ids)

    def stop(self) -> Counter[str]:
        """Stop the worker; the SQL statements and transactions its processes made."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)
        counted: Counter[str] = Counter()
        for path in self.work.glob("*.json"):
            counted.update(json.loads(path.read_text()))
        return counted


def _each(runs: list[Run]) -> str:
    return "(rounds: " + ", ".join(f"{r.rate:.0f}" for r in runs) + ")"


def compare(url: str, sink: Sink, args: argparse.Namespace, label: str) -> None:
    """(a), (b) and (c) against one sink, taking turns over several rounds so that a change
    in the machine's load falls on all three alike; the medians printed, with what a
    message cost in CPU, and the most any client could send here."""
    empty(url)
    payloads = sample_messages(args.letters)
    runs: dict[str, list[Run]] = {"a": [], "b": [], "c": []}
    worker = Worker(url, sink, args.processes)
    try:
        for _ in range(args.rounds):
            ids = write_outbox(url, args.letters)
            runs["c"].append(measure(sink, partial(ceiling, sink, payloads)))
            runs["b"].append(measure(sink, partial(naive, sink, payloads[: args.naive])))
            runs["a"].append(measure(sink, partial(worker.deliver, ids)))
    finally:
        worker.stop()
    a, b, c = (
        Run(*(statistics.median(getattr(r, f) for r in runs[k]) for f in Run.__annotations__))
        for k in "abc"
    )
    print(f"\n{args.letters} letters a round, {args.rounds} rounds, To 1 + Cc 2, {label}")
    print("                                        rate   CPU ms a message: all / sink / client")
    for name, run, key in (
        (f"(a) outcry worker, {args.processes} processes", a, "a"),
        ("(b) naive, a connection per message", b, "b"),
        ("(c) sink ceiling, one connection", c, "c"),
    ):
        print(
            f"{name:38} {run.rate:5.0f}/s   {run.machine_ms:5.2f} / {run.sink_ms:4.2f} / "
            + (f"{run.here_ms:4.2f}" if key != "a" else " -  ")
            + f"  {_each(runs[key])}"
        )
    print(f"(a)/(b) = {a.rate / b.rate:.2f}   (target >= 5)")
    print(f"(a)/(c) = {a.rate / c.rate:.2f}   (target >= 0.5)")
    # The most any client could send to this sink on this machine: the sink's one process
    # busy all the time at its cheapest cost a message (kept busy, by (a)), or every core
    # busy with nothing but the sink and a bare smtplib client on one connection (c).
    cores = os.cpu_count() or 1
    sink_ms = min(r.sink_ms for r in runs["a"])
    client_ms = min(r.here_ms for r in runs["c"])
    best = min(1000 / sink_ms, 1000 * cores / (sink_ms + client_ms))
    print(
        f"most any client could send here: {best:.0f}/s (sink {sink_ms:.2f} ms + bare client"
        f" {client_ms:.2f} ms a message, {cores} cores), {best / b.rate:.2f}x (b)"
    )


# --- through a real relay, 20 ms away ------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where (a), (b) and (c) send in the relay comparison: the delay proxy's port."""

    port: int
    cert: Path | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def client(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port)


def parallel(endpoint: Endpoint, payloads: list[bytes], connections: int) -> int:
    """(d) `connections` raw clients at once, each on one kept-open connection: the most
    any client could get through this relay on this machine."""
    from concurrent.futures import ThreadPoolExecutor

    shares = [payloads[i::connections] for i in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        return sum(pool.map(partial(ceiling, endpoint), shares))


def timed(send: Callable[[], int]) -> Run:
    """Run `send`: its rate, and the whole machine's and this process's CPU a message."""
    cpu, here = machine_cpu(), time.process_time()
    started = time.perf_counter()
    sent = send()
    elapsed = time.perf_counter() - started
    return Run(
        rate=sent / elapsed,
        machine_ms=1000 * (machine_cpu() - cpu) / sent,
        sink_ms=0.0,
        here_ms=1000 * (time.process_time() - here) / sent,
    )


def compare_relay(url: str, args: argparse.Namespace) -> None:
    """(a), (b) and (c) through Postfix and the 10 ms-each-way proxy, taking turns."""
    from app.core.config import Settings
    from tests.support.postfix import Postfix
    from tests.support.smtp import free_port

    delay = args.delay_ms / 1000
    connections = args.processes * Settings().send_concurrency
    empty(url)
    sink = Sink()  # the targets' server, where Postfix relays to
    runs: dict[str, list[Run]] = {"a": [], "b": [], "c": [], "d": []}
    try:
        with Postfix(smtp_port=free_port(), remote_port=sink.port, lmtp_port=free_port()) as mta:
            proxy = Proxy(mta.smtp_port, delay)
            endpoint = Endpoint(proxy.port)
            payloads = sample_messages(max(args.ceiling, args.naive, args.letters))
            worker = Worker(url, endpoint, args.processes)  # type: ignore[arg-type]
            try:
                for _ in range(args.rounds):
                    ids = write_outbox(url, args.letters)
                    runs["c"].append(timed(partial(ceiling, endpoint, payloads[: args.ceiling])))
                    runs["b"].append(timed(partial(naive, endpoint, payloads[: args.naive])))
                    runs["a"].append(timed(partial(worker.deliver, ids)))
                    everyone = partial(parallel, endpoint, payloads[: args.letters], connections)
                    runs["d"].append(timed(everyone))
            finally:
                worker.stop()
                proxy.close()
            # Postfix relays on to the sink at its own pace; give it a moment to finish.
            expected = args.rounds * (2 * args.letters + args.ceiling + args.naive)
            deadline = time.monotonic() + 120
            while sink.count()["messages"] < expected and time.monotonic() < deadline:
                time.sleep(0.5)
            relayed = int(sink.count()["messages"])
    finally:
        sink.close()
    a, b, c, d = (
        Run(*(statistics.median(getattr(r, f) for r in runs[k]) for f in Run.__annotations__))
        for k in "abcd"
    )
    print(
        f"\nthrough Postfix, {args.delay_ms:.0f} ms each way ({2 * args.delay_ms:.0f} ms round"
        f" trip): {args.letters} letters (a), {args.naive} (b), {args.ceiling} (c) a round,"
        f" {args.rounds} rounds, To 1 + Cc 2"
    )
    print("                                              rate   CPU ms a message: all / client")
    for name, run, key in (
        (f"(a) outcry worker, {args.processes} x {connections // args.processes} conns", a, "a"),
        ("(b) naive, a connection per message", b, "b"),
        ("(c) raw client, one kept-open connection", c, "c"),
        (f"(d) {connections} raw clients at once", d, "d"),
    ):
        client = f"{run.here_ms:5.2f}" if key != "a" else "  -  "
        print(f"{name:42} {run.rate:6.1f}/s   {run.machine_ms:5.2f} / {client}  {_each(runs[key])}")
    print(f"(a)/(b) = {a.rate / b.rate:.2f}   (target >= 10)")
    bound = c.rate * connections
    print(
        f"(a)/((c) x {connections} connections) = {a.rate / bound:.2f}"
        f"   ((c) x {connections} = {bound:.0f}/s; target >= 0.8)"
    )
    print(f"(a)/(d) = {a.rate / d.rate:.2f}   (the most any client got through here)")
    print(f"the sink received {relayed} of the {expected} messages Postfix took")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--letters", type=int, help="letters a round, (a) and (c) (default 1000; --relay 600)"
    )
    parser.add_argument(
        "--naive", type=int, help="messages a round for (b) (default 200; --relay 40)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a), (b) and (c)")
    parser.add_argument("--outbox", type=int, default=10_000, help="letters for the long run")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--no-tls", action="store_true", help="skip the STARTTLS comparison")
    parser.add_argument(
        "--relay", action="store_true", help="only the comparison through Postfix, 20 ms away"
    )
    parser.add_argument("--ceiling", type=int, default=60, help="(c) messages a round, --relay")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="each way, --relay")
    parser.add_argument("--task-batch", type=int, default=50, help="delivery ids a task")
    args = parser.parse_args()
    global TASK_BATCH
    TASK_BATCH = args.task_batch
    # 20 ms away a connection carries about 8 messages a second: fewer make a round.
    args.letters = args.letters or (600 if args.relay else 1000)
    args.naive = args.naive or (40 if args.relay else 200)

    print(f"# benchmarks/delivery.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    url = fresh_database()
    if args.relay:
        compare_relay(url, args)
        print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    sink = Sink()
    try:
        compose_cost()
        compare(url, sink, args, "plain SMTP")
        if not args.no_tls:
            tls = Sink(make_certificate(Path(tempfile.mkdtemp(prefix="outcry-bench-tls-"))))
            try:
                compare(url, tls, args, "STARTTLS")
            finally:
                tls.close()

        empty(url)
        ids = write_outbox(url, args.outbox)
        worker = Worker(url, sink, args.processes)
        try:
            run = measure(sink, partial(worker.deliver, ids))
        finally:
            counted = worker.stop()
        seconds = args.outbox / run.rate
        statements = counted["statements"] / args.outbox
        transactions = counted["transactions"] / args.outbox
        print(f"\n{args.outbox} confirmed letters, outbox to delivered, {args.processes} processes")
        print(f"wall time: {seconds:.1f} s ({args.outbox / seconds:.0f} letters/s)")
        print(f"CPU per letter, all processes: {run.machine_ms:.2f} ms")
        print(f"SQL statements per letter:   {statements:.3f}")
        print(f"transactions per letter:     {transactions:.3f}")
        round_trips = statements + 2 * transactions
        print(f"round trips per letter (statements + BEGIN/COMMIT): {round_trips:.3f}")
    finally:
        sink.close()
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--sink":
        run_sink(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    elif len(sys.argv) > 4 and sys.argv[1] == "--proxy":
        run_proxy(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--worker":
        run_worker(sys.argv[2:])
    else:
        main()
