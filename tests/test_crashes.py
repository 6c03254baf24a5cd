"""Failures of the parts around us: Redis down, workers killed mid-job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib

from receiver import create_app
from receiver.store import keys
from receiver.store.embedded import RedisServer
from tests.events import charge_succeeded
from tests.processes import wait_until
from tests.signing import body_of, tv1_header

ROOT = Path(__file__).resolve().parent.parent


def test_redis_down_is_503_with_retry_after_and_nothing_stored(config, tmp_path):
    server = RedisServer(tmp_path / "r").start()
    app = create_app({**config, "REDIS_URL": server.url})
    client = app.test_client()
    body = body_of(charge_succeeded("in_down"))
    headers = {"Ten99Policy-Signature": tv1_header(body)}
    assert client.get("/readyz").status_code == 200
    server.stop()
    r = client.post("/webhooks/1099policy", data=body, headers=headers)
    assert r.status_code == 503
    assert r.json == {"error": "unavailable", "detail": "storage unavailable"}
    assert int(r.headers["Retry-After"]) > 0
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["redis"] == "down"
    # Back up from its own AOF: nothing was half-written, and the retry is accepted.
    server = RedisServer(tmp_path / "r", port=server.port).start()
    try:
        stored = redis_lib.Redis.from_url(server.url).keys("*")
        assert [k for k in stored if k != keys.DATA_FORMAT.encode()] == []
        r = client.post("/webhooks/1099policy", data=body, headers=headers)
        assert r.status_code == 202
    finally:
        server.stop()


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    """A worker left running (its test failed or timed out) would reconnect to a later test
    session's Redis if that one got the same port, and take its jobs: kill it."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start_worker(config, *args):
    env = {
        **os.environ,
        **{k: str(v) for k, v in config.items()},
        "SWEEP_AFTER_SECONDS": "1",
        "WORKER_PROCESSES": "1",  # the process that dies is the worker (no supervisor)
    }
    proc = subprocess.Popen(
        [sys.executable, *args, "--sweep-interval", "0.3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _started.append(proc)
    return proc


def test_worker_killed_before_sending_sends_exactly_once_after_restart(
    send, config, sendgrid, redis
):
    event = charge_succeeded("in_kill1")
    assert send.ten99(event).status_code == 202
    crashing = start_worker(config, "tests/crashing_worker.py", "render")
    assert crashing.wait(30) == -9, crashing.stderr.read().decode()[-3000:]
    assert sendgrid.accepted == []
    worker = start_worker(config, "worker.py")
    try:
        sendgrid.wait_for(1, timeout=30)
        time.sleep(1.5)  # two more sweeps: nothing more may go out
        assert len(sendgrid.accepted) == 1
    finally:
        worker.terminate()
        worker.wait(10)


def test_worker_killed_after_sendgrid_accepted_sends_no_second_email(send, config, sendgrid, redis):
    event = charge_succeeded("in_kill2")
    send.ten99(event)
    crashing = start_worker(config, "tests/crashing_worker.py", "sent")
    assert crashing.wait(30) == -9
    assert len(sendgrid.accepted) == 1
    [key] = redis.keys("notice:*")
    assert redis.hget(key, "state") == b"sending"
    worker = start_worker(config, "worker.py")
    try:
        # The lease runs out, the sweeper re-queues, the claim sees the interrupted send.
        assert wait_until(lambda: redis.hget(key, "state") == b"failed", timeout=30)
        assert b"interrupted" in redis.hget(key, "last_error")
        assert len(sendgrid.accepted) == 1
    finally:
        worker.terminate()
        worker.wait(10)


def test_receive_survives_script_flush_and_killed_connections(send, redis):
    """The accept script re-loads itself and reconnects (Redis restarted, failover, idle kill)."""
    assert send.ten99(charge_succeeded("in_a")).status_code == 202
    redis.script_flush()
    assert send.ten99(charge_succeeded("in_b")).status_code == 202
    redis.client_kill_filter(_type="normal", skipme=True)  # drop every other connection
    assert send.ten99(charge_succeeded("in_c")).status_code == 202
    assert len(redis.keys("event:*")) == 3
    assert redis.llen("rq:queue:events") == 3
