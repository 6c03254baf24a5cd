"""The coverage JSON API for the platform, bearer-token protected, and its OpenAPI document.

The token check comes first, so a caller without a token learns nothing, not even whether a
contractor exists. Errors go through the service's error tree (JSON bodies).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, request
from redis.exceptions import RedisError

from ..coverage import document as coverage
from ..coverage.store import load
from ..errors import BadRequest, NotFound, PayloadError, Unavailable
from ..ingest.envelopes import to_unix
from .auth import authorize
from .openapi import ID_PATTERN, document

bp = Blueprint("coverage_api", __name__)
_ID = re.compile(ID_PATTERN)
_MAX_AT_LENGTH = 40


def _at(raw: str | None, now: int) -> int:
    if raw is None:
        return now
    if not raw.strip() or len(raw) > _MAX_AT_LENGTH:
        raise BadRequest("at must be Unix seconds or an ISO-8601 time")
    try:
        at = to_unix(raw, "at")
    except PayloadError:
        raise BadRequest("at must be Unix seconds or an ISO-8601 time") from None
    if at is None or at < 0:
        raise BadRequest("at must be Unix seconds or an ISO-8601 time")
    return at


@bp.get("/api/contractors/<contractor_id>/coverage")
def contractor_coverage(contractor_id: str) -> dict[str, Any]:
    """Everything current (plus `covered_now`), or with `job`: covered for it at `at`?"""
    cfg = current_app.config["RECEIVER"]
    authorize(cfg.API_TOKENS)
    job, raw_at = request.args.get("job"), request.args.get("at")
    if not _ID.fullmatch(contractor_id):
        raise BadRequest("contractor id is malformed")
    if job is not None and not _ID.fullmatch(job):
        raise BadRequest("job must be a job id")
    if raw_at is not None and job is None:
        raise BadRequest("at is only meaningful with job")
    now = int(current_app.extensions["clock"]())
    at = _at(raw_at, now)
    try:
        doc = load(current_app.extensions["redis"], contractor_id)
    except RedisError as exc:
        raise Unavailable("storage unavailable") from exc
    if doc is None:
        raise NotFound("no coverage is known for this contractor")
    if job is not None:
        return {"contractor": contractor_id, "job": job, "at": at, **coverage.covered(doc, job, at)}
    return {**coverage.public(doc), "covered_now": coverage.covered_now(doc, now)}


@bp.get("/api/openapi.json")
def openapi() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document (public: it describes, it holds no data)."""
    return document()
