"""Liveness and readiness."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rq import Worker

from receiver import create_app
from receiver.store.connection import RQ_WORKER_TTL
from receiver.store.embedded import RedisServer

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
