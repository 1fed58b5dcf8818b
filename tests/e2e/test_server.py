"""`outcry serve` as a crowd meets it: slow clients cut off, several processes on one port,
and one delivery process beside them."""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import httpx2 as httpx
import pytest

from app.core import paths
from tests.conftest import SECRET
from tests.support.processes import (
    outcry,
    outcry_env,
    run_outcry,
    serving,
    stop,
    wait_http,
    wait_until,
)
from tests.support.smtp import free_port

pytestmark = pytest.mark.e2e


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return outcry_env(
        database_url=f"sqlite:///{tmp_path / 'outcry.db'}",
        outbox_dir=str(tmp_path / "outbox"),
        secret_key=SECRET,
        **extra,
    )


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (read returns EOF or a reset)."""
    sock.settimeout(60)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def test_a_client_that_stops_mid_request_is_cut_off(tmp_path: Path) -> None:
    with serving(env(tmp_path, request_read_seconds="1"), tmp_path) as base:
        port = int(base.rsplit(":", 1)[1])
        stalled = []
        for n in range(30):
            sock = socket.create_connection(("127.0.0.1", port))
            if n % 3 == 1:  # half the headers
                sock.sendall(b"POST /api/v1/appeals/x/letters HTTP/1.1\r\nHost: x\r\n")
            elif n % 3 == 2:  # all the headers, a tenth of the body
                sock.sendall(
                    b"POST /api/v1/appeals/x/letters HTTP/1.1\r\nHost: x\r\n"
                    b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name"'
                )
            stalled.append(sock)  # n % 3 == 0: connected, says nothing
        # Meanwhile everyone else is served.
        assert httpx.get(f"{base}/api/v1/appeals", timeout=30).status_code == 200
        assert all(closed_by_server(sock) for sock in stalled)
        for sock in stalled:
            sock.close()
        # A keep-alive connection between requests is cut off too (uvicorn's own timer).
        with httpx.Client(timeout=30) as client:
            assert client.get(f"{base}/healthz").status_code == 200


def test_several_web_processes_share_one_port(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = outcry(
        "serve", "--port", str(port), "--workers", "2", env=env(tmp_path), cwd=tmp_path, log=log
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)

        # uvicorn logs each web process it starts, with its pid.
        def started() -> set[str]:
            return set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))

        wait_until(lambda: len(started()) == 2)
        pids = started()
        answers = {
            httpx.get(f"http://127.0.0.1:{port}/api/v1/appeals", timeout=30).status_code
            for _ in range(10)
        }
        assert answers == {200}
        assert "2 web processes" in log.read_text()
    finally:
        stop(proc)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def delivering(log: Path) -> list[int]:
    """The pids of the delivery processes started so far, from their first log line."""
    return [int(pid) for pid in re.findall(r"delivery process (\d+): delivering", log.read_text())]


def sign(base: str, n: int) -> None:
    answer = httpx.post(
        f"{base}/api/v1/appeals/almaty-coach-factory/letters",
        json={"name": f"Signer {n}", "email": f"signer{n}@example.net", "country": "GB"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text


def confirmations(outbox: Path) -> int:
    return len(list(outbox.glob("outcry.confirm.*.eml")))


def test_one_delivery_process_sends_for_every_web_process(tmp_path: Path) -> None:
    """Without a broker, the web processes take letters in and one process of its own
    sends them; one that dies is started again, and all go when the server stops."""
    environment = env(tmp_path)
    demo = paths.demo_dir() / "almaty-coach-factory.yaml"
    assert run_outcry("db", "upgrade", env=environment, cwd=tmp_path).returncode == 0
    imported = run_outcry("appeal", "import", str(demo), env=environment, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = outcry(
        "serve", "--port", str(port), "--workers", "2", env=environment, cwd=tmp_path, log=log
    )
    outbox = tmp_path / "outbox"
    try:
        wait_http(f"{base}/healthz", proc, log)
        wait_until(lambda: len(delivering(log)) == 1)
        [first] = delivering(log)
        web = {int(p) for p in re.findall(r"Started server process \[(\d+)\]", log.read_text())}
        assert first not in web
        for n in range(6):
            sign(base, n)
        wait_until(lambda: confirmations(outbox) == 6)

        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(delivering(log)) == 2)
        second = delivering(log)[1]
        sign(base, 6)
        wait_until(lambda: confirmations(outbox) == 7)
        assert len(delivering(log)) == 2
    finally:
        stop(proc)
    assert all(gone(pid) for pid in (*web, second))


def gone(pid: int) -> bool:
    """No such process, or one that has ended and waits to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize(
    ("sig", "exit_code", "said"),
    [
        # `kill PID`: the server stops its delivery process before it ends itself.
        (signal.SIGTERM, 128 + signal.SIGTERM, "stopping"),
        # As the kernel's OOM killer would: the delivery process finds its parent gone.
        (signal.SIGKILL, -signal.SIGKILL, "the server is gone; stopping"),
    ],
)
def test_the_server_stopped_alone_takes_its_delivery_process_with_it(
    tmp_path: Path, sig: int, exit_code: int, said: str
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = outcry("serve", "--port", str(port), env=env(tmp_path), cwd=tmp_path, log=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        wait_until(lambda: len(delivering(log)) == 1)
        [pid] = delivering(log)
        proc.send_signal(sig)
        assert proc.wait(60) == exit_code
        if sig == signal.SIGTERM:
            assert gone(pid)  # the server waited for it
        wait_until(lambda: gone(pid))
        assert f"delivery process {pid}: {said}" in log.read_text()
    finally:
        stop(proc)
