"""Liveness and readiness."""

from __future__ import annotations

from receiver import create_app
from receiver.store.embedded import RedisServer


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


def test_readyz_not_ready_when_redis_keeps_nothing(config, tmp_path):
    server = RedisServer(tmp_path / "volatile", appendonly=False).start()
    try:
        client = create_app({**config, "REDIS_URL": server.url}).test_client()
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json["appendonly"] == "off" and r.json["ready"] is False
    finally:
        server.stop()
