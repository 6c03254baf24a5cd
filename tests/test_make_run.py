"""`make run` (scripts/run_local.py) as a person meets it: one per clone, a child that dies is
named and fails the run, new secrets are announced. Run from a copy of the script in a folder
of its own (a clone's var/ is its state), against the test's Redis."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from receiver.store.embedded import free_port
from tests.processes import ROOT, wait_until


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run_local.py", tmp_path / "scripts" / "run_local.py")
    return tmp_path


def start(clone: Path, config: dict[str, Any], port: int, log: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_SECRETS", "CONSOLE_USERS"))}
    env.update(REDIS_URL=config["REDIS_URL"], PORT=str(port), LOG_LEVEL="warning")
    with (clone / log).open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-u", str(clone / "scripts" / "run_local.py")],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def test_one_make_run_per_clone_and_new_secrets_are_announced(clone, config, redis):
    port = free_port()
    first = start(clone, config, port, "first.log")
    try:
        assert wait_until(lambda: answers(port), 60), (clone / "first.log").read_text()
        said = (clone / "first.log").read_text()
        assert "made new development secrets in" in said and "var/ was deleted" in said
        second = start(clone, config, free_port(), "second.log")
        assert second.wait(60) == 1
        refused = (clone / "second.log").read_text()
        assert f"another `make run` is already running in this clone (pid {first.pid})" in refused
        assert "webhooks" not in refused  # no banner, nothing started
        # The first run is untouched: still serving, and the CLI still finds it.
        assert first.poll() is None and answers(port)
        assert (clone / "var" / "run.env").exists()
    finally:
        assert stop(first) == 0
    assert not (clone / "var" / "run.env").exists()
    # The secrets are kept: a later run makes none and says nothing of them.
    again = start(clone, config, port, "again.log")
    try:
        assert wait_until(lambda: answers(port), 60)
        assert "made new development secrets" not in (clone / "again.log").read_text()
    finally:
        stop(again)


def test_a_child_that_dies_is_named_and_fails_the_run(clone, config, redis):
    port = free_port()
    with socket.socket() as taken:  # the web process cannot bind its port
        taken.bind(("127.0.0.1", port))
        taken.listen()
        run = start(clone, config, port, "run.log")
        try:
            code = run.wait(120)
        finally:
            stop(run)
    said = (clone / "run.log").read_text()
    assert code == 1, said
    assert "make run: the web process (receiver-web) exited with code" in said
    assert "stopping the rest" in said
    assert not (clone / "var" / "run.env").exists()
