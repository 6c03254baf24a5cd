"""The ops API under /api/ops: the JSON the console pages are built on (see console_auth.py
for who may call it, and views/ops_openapi.py for its document in /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from ..console import actions, events, notices, replays
from ..console.health import health
from ..console.paging import parse_limit
from ..console.timeline import find_by_email, timeline
from ..errors import BadRequest, NotFound
from ..ingest.envelopes import SOURCES
from .console_auth import (
    audit_log,
    authenticate,
    current_user,
    require_json,
    require_operator,
    runtime,
)

bp = Blueprint("ops_api", __name__, url_prefix="/api/ops")


@bp.before_request
def _who() -> None:
    authenticate()


def _body() -> dict[str, Any]:
    """An action's JSON object, from an operator (403 for a viewer, 415 if not JSON)."""
    require_operator()
    require_json()
    body = request.get_json(silent=True)
    if body is None:
        body = {} if not request.get_data() else None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _event_ids(source: str, event_id: str) -> None:
    if source not in SOURCES:
        raise NotFound("no such source")
    if not 0 < len(event_id) <= 200:
        raise BadRequest("event id is malformed")


@bp.get("/events")
def list_events() -> dict[str, Any]:
    f = events.parse_filter(request.args)
    got = events.page(
        runtime().redis, f, parse_limit(request.args.get("limit")), request.args.get("cursor")
    )
    return {"items": got.items, "next_cursor": got.next_cursor}


@bp.get("/events/<source>/<path:event_id>")
def event_detail(source: str, event_id: str) -> dict[str, Any]:
    _event_ids(source, event_id)
    return notices.event_or_404(runtime(), source, event_id)


@bp.post("/events/<source>/<path:event_id>/replay")
def replay_event(source: str, event_id: str) -> dict[str, Any]:
    body = _body()
    _event_ids(source, event_id)
    reason = actions.reason_of(body.get("reason"), required=False)
    return actions.replay_event(
        runtime(), audit_log(), current_user().name, source, event_id, reason
    )


@bp.post("/replays")
def bulk_replay() -> tuple[dict[str, Any], int]:
    body = _body()
    raw_filter = body.get("filter", {})
    if not isinstance(raw_filter, dict):
        raise BadRequest("filter must be a JSON object")
    dry_run = body.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise BadRequest("dry_run must be true or false")
    f = events.parse_filter(raw_filter)
    reason = actions.reason_of(body.get("reason"), required=not dry_run)
    answer = actions.bulk_replay(runtime(), audit_log(), current_user().name, f, dry_run, reason)
    return answer, 200 if dry_run else 202


@bp.get("/replays/<replay_id>")
def bulk_replay_progress(replay_id: str) -> dict[str, Any]:
    found = replays.progress(runtime(), replay_id) if len(replay_id) <= 40 else None
    if found is None:
        raise NotFound("no such bulk replay")
    return found


@bp.get("/notices")
def list_notices() -> dict[str, Any]:
    f = notices.parse_notice_filter(request.args)
    rt = runtime()
    got = notices.page(
        rt.redis, f, rt.clock(), parse_limit(request.args.get("limit")), request.args.get("cursor")
    )
    return {"items": got.items, "next_cursor": got.next_cursor}


@bp.get("/notices/<rid>")
def notice_detail(rid: str) -> dict[str, Any]:
    return notices.record_or_404(runtime(), rid)


@bp.post("/notices/<rid>/retry")
def retry_notice(rid: str) -> dict[str, Any]:
    reason = actions.reason_of(_body().get("reason"), required=True)
    return actions.retry_notice(runtime(), audit_log(), current_user().name, rid, reason)


@bp.post("/notices/<rid>/cancel")
def cancel_notice(rid: str) -> dict[str, Any]:
    reason = actions.reason_of(_body().get("reason"), required=False)
    return actions.cancel_notice(runtime(), audit_log(), current_user().name, rid, reason)


def _contractor_id(contractor_id: str) -> str:
    if not events.ID.fullmatch(contractor_id):
        raise BadRequest("contractor id is malformed")
    return contractor_id


@bp.get("/contractors")
def find_contractors() -> dict[str, Any]:
    email = request.args.get("email", "")
    if "@" not in email or len(email) > 320:
        raise BadRequest("email must be an email address")
    return {"items": find_by_email(runtime().redis, email)}


@bp.get("/contractors/<contractor_id>/timeline")
def contractor_timeline(contractor_id: str) -> dict[str, Any]:
    rt = runtime()
    cid = _contractor_id(contractor_id)
    return {"contractor": cid, "items": timeline(rt.redis, cid, rt.clock())}


@bp.get("/health")
def ops_health() -> dict[str, Any]:
    return health(runtime())


@bp.get("/audit")
def audit() -> dict[str, Any]:
    """The console's actions, newest first."""
    page = audit_log().page(request.args.get("cursor"), parse_limit(request.args.get("limit")))
    return {"items": page.items, "next_cursor": page.next_cursor}
