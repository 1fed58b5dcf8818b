"""Run `outcry serve` and `outcry worker` as real processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]


def outcry_env(**values: str) -> dict[str, str]:
    """The environment for an outcry process: this checkout's code, OUTCRY_* from `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCRY_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    # A browser driven by a test fills the signing form in milliseconds: the bots' timing
    # trap would take it for one (tests/web/test_formtrap.py tests the trap itself).
    env["OUTCRY_FORM_MIN_SECONDS"] = "0"
    env.update({f"OUTCRY_{k.upper()}": v for k, v in values.items()})
    return env


def outcry(*args: str, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `python -m app.cli …` in its own process group, output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_outcry(
    *args: str, env: dict[str, str], cwd: Path, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an outcry command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal the process group and wait; SIGKILL if it will not go."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    except ProcessLookupError:
        pass


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout}s:\n{log.read_text()}")


@contextmanager
def serving(env: dict[str, str], cwd: Path) -> Iterator[str]:
    """`outcry serve` on a free port; yields its base URL."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    proc = outcry("serve", "--port", str(port), env=env, cwd=cwd, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", proc, log)
        yield base
    finally:
        stop(proc)


def wait_until(predicate: object, timeout: float = 60, interval: float = 0.1) -> None:
    """Poll `predicate()` until true."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def idle(_parent: int) -> None:
    """A DeliveryProcess target that does nothing until it is stopped."""
    time.sleep(3600)


def deaf(_parent: int) -> None:
    """A DeliveryProcess target that ignores SIGTERM."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(3600)
