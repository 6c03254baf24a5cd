"""The service's own processes, started by tests as a deployment runs them: the Procfile's web
command (`receiver-web`: gunicorn with receiver/processes/gunicorn_settings.py) and
`worker.py`, on loopback, logs to files."""

from __future__ import annotations

import http.client
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.events import charge_succeeded
from tests.signing import body_of, tv1_header

ROOT = Path(__file__).resolve().parent.parent


def procfile_command(name: str) -> list[str]:
    """The Procfile's command for `name`, its program taken from this virtualenv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(name + ":"):
            argv = shlex.split(line.split(":", 1)[1])
            local = Path(sys.executable).parent / argv[0]
            return [str(local) if local.exists() else argv[0], *argv[1:]]
    raise AssertionError(f"no {name} process in the Procfile")


def environment(config: Mapping[str, Any], **extra: Any) -> dict[str, str]:
    env = {**os.environ, **{k: str(v) for k, v in {**config, **extra}.items()}}
    env.pop("GUNICORN_CMD_ARGS", None)  # as shipped
    return env


def start_web(config: Mapping[str, Any], port: int, log: Path) -> subprocess.Popen[bytes]:
    """The Procfile's web process on `port`, answering /healthz."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            procfile_command("web"),
            cwd=ROOT,
            env=environment(config, PORT=port),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, "gunicorn exited: " + log.read_text()[-2000:]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return proc
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("gunicorn did not answer /healthz")
    except BaseException:
        stop(proc)  # no caller holds it yet: it must not outlive the test
        raise


def start_worker(config: Mapping[str, Any], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`python -u worker.py --processes 1` (one RQ worker in this very process, which the
    tests kill and count) with the test's settings, its log lines appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-u", "worker.py", "--processes", "1", *args],
            cwd=ROOT,
            env=environment(config),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def crash_worker(config: Mapping[str, Any], log: Path, point: str) -> None:
    """Run tests/crashing_worker.py (one RQ worker, no supervisor) until it takes a task and
    kills itself at `point`; its log lines appended to `log`."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-u", "tests/crashing_worker.py", point, "--processes", "1"],
            cwd=ROOT,
            env=environment(config),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        code = proc.wait(60)  # only bounds a broken test
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError("the worker never reached its crash point") from None
    assert code == -signal.SIGKILL, log.read_text()[-3000:]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0) -> bool:
    """Poll `predicate` until it holds; False if it never did (the bound only ends a broken
    test; nothing is asserted about how long it took)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def deliver(
    port: int, invoice: str, timeout: float = 5.0, contractor: dict[str, str] | None = None
) -> int | None:
    """One signed charge delivery on a new connection, as 1099Policy sends it; its status,
    None if the connection failed or the answer took longer than the sender's `timeout`.
    `contractor` is the payer (tests/events.py's Maya when None)."""
    return deliver_body(port, body_of(charge_succeeded(invoice, contractor)), timeout)


def deliver_body(port: int, body: bytes, timeout: float = 5.0) -> int | None:
    """`deliver` of a given body: the same bytes to several ports are one event's duplicates."""
    headers = {"Ten99Policy-Signature": tv1_header(body), "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/webhooks/1099policy", body=body, headers=headers)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()
