"""worker.py as the Procfile runs it: several worker processes under one supervisor.

Real processes on the test session's Redis: the supervisor forks its children, restarts one
that dies, passes a stop on, and leaves no child behind when it is killed itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Worker

from receiver.processes.worker import _processes, process_count
from tests.events import charge_succeeded

ROOT = Path(__file__).resolve().parent.parent


def start(config, *args: str, script: str = "worker.py") -> subprocess.Popen[bytes]:
    env = {**os.environ, **{k: str(v) for k, v in config.items()}}
    return subprocess.Popen(
        [sys.executable, script, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def pids(redis) -> set[int]:
    return {w.pid for w in Worker.all(connection=redis)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# A hang detector, not a speed bound; it must stay under RQ's pub/sub poll of 60 s, which is what
# a worker whose teardown waited for that thread took to exit (issue 18, redis-py 8.2). One exits
# in a few seconds here, its start-up included.
EXIT_BOUND_SECONDS = 30
# worker.py as is, and with the pub/sub race of RQ's teardown made certain (tests/racing_worker.py).
WORKER_SCRIPTS = ["worker.py", "tests/racing_worker.py"]


def test_processes_setting():
    assert process_count(3) == 3
    assert process_count(0) == 2 * len(os.sched_getaffinity(0))
    assert _processes("0") == 0
    with pytest.raises(Exception, match="two per CPU"):
        _processes("-1")


def test_a_dead_worker_process_is_replaced_and_a_stop_reaches_every_one(config, redis):
    sup = start(config, "--processes", "2")
    try:
        assert wait_for(lambda: len(pids(redis)) == 2), sup.stderr
        first = pids(redis)
        assert sup.pid not in first  # the supervisor itself runs no worker
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # RQ keeps a killed worker's key until its TTL: wait for a new pid beside the survivor.
        assert wait_for(lambda: len(pids(redis) - first) == 1)
        assert (first - {victim}) <= pids(redis)
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(30) == 0
        survivors = (pids(redis) | first) - {victim}
        assert wait_for(lambda: not any(alive(p) for p in survivors), 10)
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(10)


def test_worker_processes_stop_when_their_supervisor_is_killed(config, redis):
    sup = start(config, "--processes", "2")
    try:
        assert wait_for(lambda: len(pids(redis)) == 2)
        children = pids(redis)
        sup.kill()
        sup.wait(10)
        assert wait_for(lambda: not any(alive(p) for p in children), 15)
    finally:
        if sup.poll() is None:
            sup.kill()


def test_a_burst_of_two_processes_drains_the_queue_and_exits(config, send, redis, sendgrid):
    for i in range(20):
        assert send.ten99(charge_succeeded(f"in_b{i}")).status_code == 202
    sup = start(config, "--burst", "--processes", "2")
    assert sup.wait(60) == 0, sup.stderr.read() if sup.stderr else ""
    assert len(sendgrid.wait_for(20, timeout=10)) == 20  # its stand-in may record the last late
    assert redis.llen("rq:queue:events") == 0


def test_a_killed_worker_leaves_nothing_that_takes_the_next_job(config, send, redis, sendgrid):
    """Nothing the worker started may keep its Redis socket (blocked in BLPOP on the queues)
    open after it is killed. RQ's forked scheduler did: Redis handed the next event's job to
    the dead worker, and no email went out until the sweeper found the event minutes later."""
    first = start(config, "--processes", "1")
    try:
        assert wait_for(lambda: len(pids(redis)) == 1)
        time.sleep(1.0)  # its scheduler forked, the worker blocked in BLPOP
        first.kill()
        first.wait(10)
        assert send.ten99(charge_succeeded("in_after_kill")).status_code == 202
        second = start(config, "--processes", "1")
        try:
            assert len(sendgrid.wait_for(1, timeout=20)) == 1
        finally:
            second.terminate()
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()


def exit_code(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """`proc`'s exit code, or None (and it is killed) if it is still running after `timeout`."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return None


def stderr_of(proc: subprocess.Popen[bytes]) -> str:
    return proc.stderr.read().decode()[-3000:] if proc.stderr else ""


@pytest.mark.parametrize("script", WORKER_SCRIPTS)
def test_a_burst_worker_with_nothing_to_do_exits(config, redis, script):
    """`worker.py --burst` on empty queues takes no task and exits: RQ's teardown stops its
    pub/sub thread, which must not wait out its 60 s poll (redis-py 8.2's stop() joins it)."""
    t0 = time.monotonic()
    proc = start(config, "--burst", "--processes", "1", script=script)
    code = exit_code(proc, EXIT_BOUND_SECONDS)
    assert code == 0, f"exit {code} after {time.monotonic() - t0:.1f}s\n{stderr_of(proc)}"


@pytest.mark.parametrize("script", WORKER_SCRIPTS)
def test_an_idle_worker_exits_on_sigterm(config, redis, script):
    """A worker waiting for jobs (RQ's BLPOP) stops warm on SIGTERM and exits."""
    proc = start(config, "--processes", "1", script=script)
    try:
        assert wait_for(lambda: pids(redis) == {proc.pid}), stderr_of(proc)
        time.sleep(0.5)  # past its start-up: blocked in BLPOP on the queues
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = exit_code(proc, EXIT_BOUND_SECONDS)
        assert code == 0, f"exit {code} after {time.monotonic() - t0:.1f}s\n{stderr_of(proc)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
