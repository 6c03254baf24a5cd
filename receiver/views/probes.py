"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from redis.exceptions import RedisError, ResponseError

from ..errors import BadRequest
from ..store.workers import workers_seen

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

    Workers (`workers_seen`, by their own heartbeat records, store/workers.py) do not decide
    `ready`: it is the web process's readiness to accept deliveries, which it stores whether or
    not a worker runs, and a load balancer that took every web process out of rotation because
    the workers stalled would turn a processing delay into refused webhooks. With no worker
    seen the body says `"processing": "stopped"`; a monitor that wants the status code to say
    it asks `/readyz?require=workers`, which is then a 503.
    """
    require = request.args.get("require", "")
    if require not in ("", "workers"):
        raise BadRequest("require: only `workers` may be required (or leave it out)")
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
        body["processing"] = "running" if body["workers_seen"] else "stopped"
        body["queue"] = cfg.QUEUE_NAME
    except RedisError:
        return {**body, "ready": False}, 503
    replicated = body.get("replicas", 0) >= cfg.REDIS_MIN_REPLICA_ACKS or body["role"] == "unknown"
    ready = body["appendonly"] != "off" and replicated
    if ready and require == "workers" and not body["workers_seen"]:
        return {**body, "ready": False}, 503
    return {**body, "ready": ready}, 200 if ready else 503
