"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from redis.exceptions import RedisError, ResponseError
from rq import Worker

from ..store.connection import RQ_WORKER_TTL

bp = Blueprint("health", __name__)

# A worker counts as seen while RQ would still keep its key: the TTL plus RQ's 60 s of grace
# after its last heartbeat. Our workers heartbeat every 45 s when idle (store/connection.py).
WORKER_SEEN_SECONDS = RQ_WORKER_TTL + 60


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Ready when Redis answers and does not say its append-only persistence is off.

    Accepting an event into a Redis that keeps nothing on disk would make a 2xx a promise we
    cannot keep across a Redis restart, so a known-off AOF is reported as not ready. Managed
    Redis services that refuse CONFIG report `unknown` and count as ready.
    """
    redis = current_app.extensions["redis"]
    body: dict[str, Any] = {"redis": "down", "appendonly": "unknown", "workers_seen": 0}
    try:
        redis.ping()
        body["redis"] = "up"
        try:
            aof = redis.config_get("appendonly").get("appendonly")
            body["appendonly"] = {"yes": "on", "no": "off"}.get(aof, "unknown")
        except ResponseError:
            pass
        cfg = current_app.config["RECEIVER"]
        cutoff = current_app.extensions["clock"]() - WORKER_SEEN_SECONDS
        workers = Worker.all(connection=redis)
        body["workers_seen"] = sum(
            1 for w in workers if w.last_heartbeat and w.last_heartbeat.timestamp() >= cutoff
        )
        body["queue"] = cfg.QUEUE_NAME
    except RedisError:
        return {**body, "ready": False}, 503
    ready = body["appendonly"] != "off"
    return {**body, "ready": ready}, 200 if ready else 503
