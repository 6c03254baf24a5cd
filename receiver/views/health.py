"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from redis.exceptions import RedisError, ResponseError

from ..store.connection import workers_seen

bp = Blueprint("health", __name__)


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

    `role` and `replicas` are what the connected server says of itself (INFO replication):
    behind Sentinel, `master` and its replica count. With REDIS_MIN_REPLICA_ACKS above the
    replicas connected, every delivery would be a 503, so that is not ready either.
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
        try:
            replication = redis.info("replication")
            body["role"] = str(replication.get("role", "unknown"))
            body["replicas"] = int(replication.get("connected_slaves", 0))
        except ResponseError:
            body["role"] = "unknown"
        cfg = current_app.config["RECEIVER"]
        body["workers_seen"] = workers_seen(redis, current_app.extensions["clock"]())
        body["queue"] = cfg.QUEUE_NAME
    except RedisError:
        return {**body, "ready": False}, 503
    replicated = body.get("replicas", 0) >= cfg.REDIS_MIN_REPLICA_ACKS or body["role"] == "unknown"
    ready = body["appendonly"] != "off" and replicated
    return {**body, "ready": ready}, 200 if ready else 503
