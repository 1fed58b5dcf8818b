"""Intake under a crowd: signing one appeal with unique signers, against its floor.

One run serves four things the same way (app.server.options(), the same number of
processes, on loopback) and loads each in turn with wrk from a second process, each
server started and warmed up for its own measurement and stopped after it:

  outcry       `outcry serve`: POST /api/v1/appeals/{slug}/letters, the demo appeal
               (confirmation required, so each signature stores its letter and its
               confirmation e-mail's delivery);
  bare         a FastAPI endpoint taking the same body, answering the same shape;
  bare_insert  the same plus one INSERT, committed before the answer: the floor of
               "accept and keep";
  statements   bare plus the round trips an Outcry signature makes (the appeal, the
               earlier-letter check, the limiter call, both INSERTs) and none of its
               logic: what Outcry's own I/O costs (benchmarks/intake_peers.py).

For each database and each number of connections it prints the rate, p50 and p99,
answers by status code, and the 202s against what was stored (letters with their
confirmation delivery; rows for bare_insert); on SQLite, also how many of Outcry's
confirmation e-mails were sent by the end of the run (its delivery process sends them
as they come, beside the web process). Then an open-loop client signs at a fixed
rate (200 a second by default) and reports latency measured from each request's
scheduled time, so a stall cannot hide behind fewer requests sent.

    .venv/bin/python benchmarks/intake.py [--db postgresql sqlite] [--connections 16 64 256 1000]
        [--seconds 10] [--rounds 1] [--kinds outcry bare bare_insert statements] [--workers 1]
        [--rate 200] [--rate-seconds 15]

PostgreSQL: its own database (outcry_bench_intake) and Redis db 14 as the broker, with
no worker (ids are enqueued, as in production, and nobody sends them). SQLite: the
embedded default, delivering confirmations to an outbox folder in-process. Needs wrk
(Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("OUTCRY_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "outcry_bench_intake"
REDIS_URL = os.environ.get("OUTCRY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SLUG = "almaty-coach-factory"
PATH = f"/api/v1/appeals/{SLUG}/letters"
LUA = Path(__file__).with_name("intake.lua")
KINDS = ("outcry", "bare", "bare_insert", "statements")
# The open-loop client reuses a kept-alive connection only if it was idle less than this.
IDLE_REUSE_SECONDS = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database(kind: str, scratch: Path) -> str:
    from sqlalchemy import text

    from app.core.db import engine_for
    from app.core.migrate import upgrade
    from benchmarks.intake_peers import metadata

    if kind == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{PG_NAME}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{base}/{PG_NAME}"
    else:
        url = f"sqlite:///{scratch / 'intake.db'}"
    upgrade(url)
    engine = engine_for(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    return url


def environment(url: str, scratch: Path, workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCRY_")}
    env.update(
        PYTHONPATH=str(ROOT),
        OUTCRY_DATABASE_URL=url,
        OUTCRY_SECRET_KEY="intake-benchmark-secret-0123456789abcdef",
        OUTCRY_SIGN_LIMIT_PER_HOUR="0",
        OUTCRY_OUTBOX_DIR=str(scratch / "outbox"),
        OUTCRY_BASE_URL="http://127.0.0.1:8000",
        OUTCRY_WEB_WORKERS=str(workers),
    )
    if url.startswith("postgresql"):
        env["OUTCRY_BROKER_URL"] = REDIS_URL
    return env


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]


def start(kind: str, env: dict[str, str], workers: int, scratch: Path) -> Server:
    port = free_port()
    log = (scratch / f"{kind}.log").open("ab")
    if kind == "outcry":
        argv = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    else:
        peers = str(Path(__file__).with_name("intake_peers.py"))
        argv = [sys.executable, peers, kind, str(port), str(workers)]
    proc = subprocess.Popen(
        argv, env=env, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Server(kind, port, proc)
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} did not start; see {scratch / kind}.log") from None
            time.sleep(0.2)
    raise SystemExit(f"{kind} did not listen within 60 s")


def stop(server: Server) -> None:
    """Stop the server and every process it started (Outcry's delivery process finishes
    its round first), so none of them runs into the next measurement."""
    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=20)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.killpg(server.proc.pid, 0)  # ProcessLookupError once the group is gone
            time.sleep(0.1)
        os.killpg(server.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)


@contextmanager
def serving(kind: str, env: dict[str, str], workers: int, scratch: Path) -> Iterator[Server]:
    """One server of `kind`, warmed up (imports, pools, caches), for one measurement.

    Each measurement has the machine and the database's connections to itself: four
    servers kept up side by side held more pooled connections than PostgreSQL's 100 at
    two processes each, and the last one's requests failed for want of one."""
    server = start(kind, env, workers, scratch)
    try:
        wrk(server.port, 16, 2, f"w{uuid.uuid4().hex[:6]}")
        yield server
    finally:
        stop(server)


def stored(url: str, kind: str, run: str) -> int:
    """Signatures of this run that were kept: letters with their confirmation delivery
    (Outcry and statements), or rows (bare_insert)."""
    from sqlalchemy import func, select

    from app.core.db import engine_for
    from app.models import Channel, Delivery, Letter
    from benchmarks.intake_peers import bench_intake

    pattern = f"s{run}-%"
    with engine_for(url).connect() as conn:
        if kind == "bare_insert":
            query = select(func.count()).where(bench_intake.c.email.like(pattern))
        elif kind in ("outcry", "statements"):
            query = (
                select(func.count(func.distinct(Letter.id)))
                .join(Delivery, Delivery.letter_id == Letter.id)
                .where(Letter.signer_email.like(pattern), Delivery.channel == Channel.confirmation)
            )
        else:
            return 0
        return int(conn.execute(query).scalar_one())


def sent_of_run(url: str, run: str) -> int:
    """Confirmation e-mails of this run already sent (the embedded default sends them as
    it goes; with a broker and no worker, none are)."""
    from sqlalchemy import func, select

    from app.core.db import engine_for
    from app.models import Channel, Delivery, DeliveryStatus, Letter

    with engine_for(url).connect() as conn:
        query = (
            select(func.count())
            .select_from(Delivery)
            .join(Letter, Delivery.letter_id == Letter.id)
            .where(
                Letter.signer_email.like(f"s{run}-%"),
                Delivery.channel == Channel.confirmation,
                Delivery.status == DeliveryStatus.sent,
            )
        )
        return int(conn.execute(query).scalar_one())


def letters_of_run(url: str, run: str) -> int:
    from sqlalchemy import func, select

    from app.core.db import engine_for
    from app.models import Letter

    with engine_for(url).connect() as conn:
        query = select(func.count()).where(Letter.signer_email.like(f"s{run}-%"))
        return int(conn.execute(query).scalar_one())


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants still running, and
    of the children it has waited for."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / ticks  # utime stime cutime cstime
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending += [int(c) for c in children]
    return total


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on this machine (the database's share)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:13]) / ticks
    return total


def wrk(port: int, connections: int, seconds: int, run: str) -> dict[str, Any]:
    threads = min(2, connections)
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
            "--",
            PATH,
            run,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 90,
    )
    line = result.stdout.strip().splitlines()[-1]
    data: dict[str, Any] = json.loads(line)
    data["rate"] = data["requests"] / data["seconds"]
    return data


# --- open loop: a fixed rate, latency from the scheduled time -------------------------------


@dataclass
class OpenLoop:
    latencies: list[float] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)
    errors: int = 0


async def _one(
    port: int, run: str, i: int, scheduled: float, idle: list[Any], out: OpenLoop
) -> None:
    loop = asyncio.get_running_loop()
    body = json.dumps(
        {"name": f"Signer {run}-{i}", "email": f"s{run}-{i}@example.net", "country": "KZ"}
    ).encode()
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        # A connection idle for IDLE_REUSE_SECONDS or more may have been closed by uvicorn
        # (its keep-alive timeout is 5 s) just as this request goes out: not reused.
        while idle and loop.time() - idle[-1][2] >= IDLE_REUSE_SECONDS:
            idle.pop()[1].close()
        if idle:
            reader, writer, _since = idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (header := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        out.latencies.append(loop.time() - scheduled)
        out.codes[status] += 1
        idle.append((reader, writer, loop.time()))
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        out.errors += 1


async def open_loop(port: int, rate: float, seconds: float, run: str) -> OpenLoop:
    loop = asyncio.get_running_loop()
    out = OpenLoop()
    idle: list[Any] = []
    tasks = []
    start_at = loop.time() + 0.1
    for i in range(int(rate * seconds)):
        scheduled = start_at + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        tasks.append(asyncio.create_task(_one(port, run, i, scheduled, idle, out)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    for _reader, writer, _since in idle:
        writer.close()
    return out


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the run -------------------------------------------------------------------------------


def bench_database(db: str, args: argparse.Namespace) -> dict[str, Any]:
    import redis

    scratch = Path(tempfile.mkdtemp(prefix=f"outcry-intake-{db}-"))
    url = database(db, scratch)
    env = environment(url, scratch, args.workers)
    if db == "postgresql":
        redis.Redis.from_url(REDIS_URL).flushdb()
    imported = subprocess.run(
        [sys.executable, "-m", "app.cli", "appeal", "import", str(ROOT / "demo" / f"{SLUG}.yaml")],
        env=env,
        cwd=scratch,
        capture_output=True,
        text=True,
    )
    if imported.returncode:
        raise SystemExit(imported.stderr)
    results: dict[str, Any] = {"rows": [], "open_loop": {}}
    try:
        for connections, round_ in itertools.product(args.connections, range(args.rounds)):
            for kind in args.kinds:
                with serving(kind, env, args.workers, scratch) as server:
                    run = uuid.uuid4().hex[:8]
                    cpu, pg_cpu = cpu_seconds(server.proc.pid), postgres_cpu_seconds()
                    data = wrk(server.port, connections, args.seconds, run)
                    cpu = cpu_seconds(server.proc.pid) - cpu
                    pg_cpu = postgres_cpu_seconds() - pg_cpu
                    if kind == "outcry":
                        data["sent"] = sent_of_run(url, run)
                    time.sleep(1)  # let the last commits land before counting
                data.update(
                    kind=kind,
                    connections=connections,
                    round=round_,
                    accepted=data["codes"].get("202", 0),
                    stored=stored(url, kind, run),
                    letters=letters_of_run(url, run) if kind in ("outcry", "statements") else None,
                    server_cpu_ms=1000 * cpu / max(1, data["requests"]),
                    db_cpu_ms=1000 * pg_cpu / max(1, data["requests"]),
                )
                results["rows"].append(data)
                print(json.dumps(data), flush=True)
        if args.rate:
            for kind in ("outcry", "bare_insert", "statements"):
                run = uuid.uuid4().hex[:8]
                with serving(kind, env, args.workers, scratch) as server:
                    out = asyncio.run(open_loop(server.port, args.rate, args.rate_seconds, run))
                summary = {
                    "kind": kind,
                    "rate": args.rate,
                    "sent": len(out.latencies) + out.errors,
                    "p50_ms": quantile(out.latencies, 0.5) * 1000,
                    "p99_ms": quantile(out.latencies, 0.99) * 1000,
                    "max_ms": max(out.latencies, default=float("nan")) * 1000,
                    "codes": dict(out.codes),
                    "errors": out.errors,
                }
                results["open_loop"][kind] = summary
                print(json.dumps(summary), flush=True)
    finally:
        if db == "postgresql":
            redis.Redis.from_url(REDIS_URL).flushdb()
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def report(db: str, results: dict[str, Any]) -> None:
    """One line per number of connections and kind. With several rounds: the median
    round's rate, latencies and CPU, the answers of all rounds, and the median of the
    ratios to bare_insert's rate in the same round (measured a few seconds apart, so
    the machine's changing load moves them least), with their range."""
    print(f"\n## {db}\n")
    print(
        "| connections | kind | rate/s | p50 ms | p99 ms | answers | 202s / stored |"
        " vs bare_insert | CPU ms/request: web, PostgreSQL |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = results["rows"]
    floor = {(r["connections"], r["round"]): r["rate"] for r in rows if r["kind"] == "bare_insert"}
    floor = floor or {(r["connections"], r["round"]): float("nan") for r in rows}
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["connections"], row["kind"]), []).append(row)
    for (connections, kind), runs in groups.items():
        runs.sort(key=lambda r: r["rate"])
        mid = runs[len(runs) // 2]
        ratios = sorted(r["rate"] / floor[(connections, r["round"])] for r in runs)
        ratio = f"{ratios[len(ratios) // 2]:.2f}"
        if len(ratios) > 1:
            ratio += f" ({ratios[0]:.2f}–{ratios[-1]:.2f})"
        codes: Counter[str] = Counter()
        for r in runs:
            codes.update(r["codes"])
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(codes.items()))
        errors = sum(r["connect_errors"] + r["read_errors"] + r["timeouts"] for r in runs)
        if errors:
            answers += f", socket errors: {errors}"
        accepted, kept = sum(r["accepted"] for r in runs), sum(r["stored"] for r in runs)
        stored = f"{accepted} / {kept}" if kind != "bare" else "—"
        if kind == "outcry" and db == "sqlite":
            stored += f" (sent {sum(r.get('sent', 0) for r in runs)})"
        rate = f"{mid['rate']:.0f}"
        if len(runs) > 1:
            rate += f" ({runs[0]['rate']:.0f}–{runs[-1]['rate']:.0f})"
        print(
            f"| {connections} | {kind} | {rate} | {mid['p50_ms']:.1f} | {mid['p99_ms']:.1f} |"
            f" {answers} | {stored} | {ratio} |"
            f" {mid['server_cpu_ms']:.2f}, {mid['db_cpu_ms']:.2f} |"
        )
    for kind, s in results["open_loop"].items():
        print(
            f"\nopen loop, {kind}, {s['rate']}/s for {s['sent']} requests:"
            f" p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, max {s['max_ms']:.1f} ms,"
            f" answers {s['codes']}, errors {s['errors']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--connections", nargs="+", type=int, default=[16, 64, 256, 1000])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="each kind in turn, this often")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--rate-seconds", type=float, default=15)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    print(
        f"# intake, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()},"
        f" {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, workers {args.workers}",
        flush=True,
    )
    results = {db: bench_database(db, args) for db in args.db}
    for db, result in results.items():
        report(db, result)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
