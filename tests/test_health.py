"""Liveness and readiness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Worker

from receiver import create_app
from receiver.store.embedded import RedisServer
from receiver.store.workers import RQ_WORKER_TTL
from tests.console_users import basic, enable
from tests.processes import start_worker, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_readyz_reports_persistence_and_workers(client, redis, drain):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json["redis"] == "up"
    assert r.json["appendonly"] == "on"  # the test Redis runs with AOF, as production should
    assert r.json["workers_seen"] == 0
    drain()  # a burst worker registers and leaves
    assert client.get("/readyz").json["ready"] is True


def test_readyz_refuses_an_unknown_requirement(client):
    r = client.get("/readyz?require=everything")
    assert r.status_code == 400 and r.json["error"] == "bad_request"
    assert "require" in r.json["detail"]


def test_readyz_reports_role_and_replicas_and_the_acks_it_cannot_get(client, config, redis):
    r = client.get("/readyz")
    assert (r.json["role"], r.json["replicas"]) == ("master", 0)
    # One replica asked for, none there: every delivery would be a 503.
    strict = create_app({**config, "REDIS_MIN_REPLICA_ACKS": "1"}).test_client()
    r = strict.get("/readyz")
    assert r.status_code == 503 and r.json["ready"] is False and r.json["replicas"] == 0


def test_readyz_not_ready_when_redis_keeps_nothing(config, tmp_path):
    server = RedisServer(tmp_path / "volatile", appendonly=False).start()
    try:
        client = create_app({**config, "REDIS_URL": server.url}).test_client()
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json["appendonly"] == "off" and r.json["ready"] is False
    finally:
        server.stop()


def test_an_idle_worker_is_not_reported_missing(config, client, redis, test_clock):
    """RQ's default would let an idle worker stay silent for 405 s; ours heartbeats within
    RQ_WORKER_TTL - 15 s, and /readyz counts it for as long as RQ keeps its key."""
    env = {**os.environ, **{k: str(v) for k, v in config.items()}}
    worker = subprocess.Popen(
        [sys.executable, "worker.py", "--processes", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not Worker.all(connection=redis) and time.monotonic() < deadline:
            time.sleep(0.1)
        [seen] = Worker.all(connection=redis)
        # The TTL RQ put on the worker's key says how often it will heartbeat while idle.
        assert 0 < redis.ttl(seen.key) <= RQ_WORKER_TTL + 60
        assert client.get("/readyz").json["workers_seen"] == 1
        last = seen.last_heartbeat.timestamp()
        # Just before its next heartbeat is due, and a little after, it still counts.
        test_clock.freeze(last + RQ_WORKER_TTL - 15)
        assert client.get("/readyz").json["workers_seen"] == 1
        test_clock.freeze(last + RQ_WORKER_TTL + 55)
        assert client.get("/readyz").json["workers_seen"] == 1
        # Silent past the time RQ would drop its key: missing.
        test_clock.freeze(last + RQ_WORKER_TTL + 65)
        assert client.get("/readyz").json["workers_seen"] == 0
    finally:
        worker.terminate()
        worker.wait(15)


@pytest.fixture
def console_on(config):
    enable(config)


def test_workers_that_stalled_past_their_ttl_are_counted_again_when_they_resume(
    console_on, config, client, redis, tmp_path
):
    """A worker stopped (SIGSTOP) longer than its TTL, then resumed: RQ's registry has
    dropped it for good, its own heartbeat record counts it again. Meanwhile Health shows the
    alarm and /readyz says processing stopped. The TTL is 2 s here (heartbeats every 1 s,
    counted 4 s after each) instead of sleeping out the default 60."""
    worker = start_worker(config, tmp_path / "worker.log", "--worker-ttl", "2")
    try:
        assert wait_until(lambda: client.get("/readyz").json["workers_seen"] == 1)
        assert client.get("/readyz").json["processing"] == "running"
        [rq_worker] = Worker.all(connection=redis)
        os.kill(worker.pid, signal.SIGSTOP)
        # What Redis does TTL + 60 s after the stalled worker's last heartbeat: its key
        # expires, and RQ's next listing drops it from its registry.
        redis.pexpire(rq_worker.key, 1)
        assert wait_until(lambda: Worker.all(connection=redis) == [])
        assert wait_until(lambda: client.get("/readyz").json["workers_seen"] == 0)
        ready = client.get("/readyz")
        # The web still accepts and stores deliveries: ready; the body says nothing runs.
        assert ready.status_code == 200 and ready.json["processing"] == "stopped"
        required = client.get("/readyz?require=workers")
        assert required.status_code == 503 and required.json["ready"] is False
        page = client.get("/admin/health", headers=basic("vic")).get_data(as_text=True)
        assert 'role="alert"' in page and "No worker is running" in page

        os.kill(worker.pid, signal.SIGCONT)
        assert wait_until(lambda: client.get("/readyz").json["workers_seen"] == 1)
        assert Worker.all(connection=redis) == []  # RQ's own count would still say 0
        assert client.get("/readyz?require=workers").status_code == 200
        page = client.get("/admin/health", headers=basic("vic")).get_data(as_text=True)
        assert "No worker is running" not in page
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        stop(worker)
    # A worker that stops cleanly leaves the count at once.
    assert client.get("/readyz").json["workers_seen"] == 0
