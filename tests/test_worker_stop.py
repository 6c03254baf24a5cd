"""Stop means stop: a worker asked to stop while Redis is unreachable exits, supervisor and
children alike, instead of waiting for Redis to come back (issue 19).

Real processes: `worker.py --processes 2` (a supervisor and two forked RQ workers) on a Redis
of the test's own, which the test kills before it stops the worker. The bound only ends a
broken test (before the fix the processes retried for as long as anyone waited).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import Worker

from receiver.store.embedded import RedisServer
from tests.processes import start_worker, stop, wait_until

BOUND = 40.0  # seconds: a connect timeout, a socket timeout and a backoff fit many times over


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # exited, not yet reaped by its parent


def _running_workers(
    own_redis: RedisServer, config: dict[str, Any], tmp_path: Path
) -> tuple[Any, list[int]]:
    config["REDIS_URL"] = own_redis.url
    supervisor = start_worker(config, tmp_path / "worker.log", "--processes", "2")
    client = own_redis.client()
    assert wait_until(lambda: len(Worker.all(connection=client)) == 2), (
        tmp_path / "worker.log"
    ).read_text()[-2000:]
    children = _children(supervisor.pid)
    assert len(children) == 2
    return supervisor, children


def _end(supervisor: Any, children: list[int]) -> None:
    """Whatever the test's outcome, nothing it started outlives it."""
    stop(supervisor)
    for child in children:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_sigterm_with_redis_gone_ends_the_supervisor_and_its_children(
    own_redis: RedisServer, config: dict[str, Any], tmp_path: Path
) -> None:
    supervisor, children = _running_workers(own_redis, config, tmp_path)
    try:
        own_redis.stop()
        supervisor.send_signal(signal.SIGTERM)
        assert wait_until(lambda: all(_gone(c) for c in children), BOUND), "children linger"
        supervisor.wait(BOUND)
    finally:
        _end(supervisor, children)


def test_children_of_a_killed_supervisor_stop_with_redis_gone(
    own_redis: RedisServer, config: dict[str, Any], tmp_path: Path
) -> None:
    supervisor, children = _running_workers(own_redis, config, tmp_path)
    try:
        own_redis.stop()
        supervisor.kill()  # no chance to pass the stop on: the children are told by the kernel
        supervisor.wait(10)
        assert wait_until(lambda: all(_gone(c) for c in children), BOUND), "orphans linger"
    finally:
        _end(supervisor, children)
