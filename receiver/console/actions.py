"""The operator's actions, each checked, done once and kept in the audit log; the ops API and
the console pages both call these, so a page and a curl call do exactly the same thing."""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, Conflict, NotFound
from ..pipeline.processing import replay
from ..pipeline.runtime import Runtime
from . import replays
from .audit import AuditLog
from .events import EventFilter
from .notices import valid_id

MAX_REASON = 500
_REPLAY_REFUSALS = {
    "processing": "a worker is processing it right now; try again shortly",
    "ignored": "its type has no handler; replaying it would do nothing",
}


def reason_of(raw: Any, required: bool) -> str:
    """The operator's reason text, checked."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str) or len(raw) > MAX_REASON:
        raise BadRequest(f"reason must be text of at most {MAX_REASON} characters")
    if required and not raw.strip():
        raise BadRequest("reason is required for this action")
    return raw.strip()


def replay_event(
    rt: Runtime, audit: AuditLog, user: str, source: str, event_id: str, reason: str
) -> dict[str, Any]:
    outcome = replay(rt, source, event_id)
    if outcome == "missing":
        raise NotFound("no such event is stored (or it is past EVENT_RETENTION_DAYS)")
    if outcome != "queued":
        raise Conflict(_REPLAY_REFUSALS.get(outcome, f"the event is {outcome}"))
    audit.record(user, "replay", {"source": source, "id": event_id}, 1, reason)
    return {
        "source": source,
        "id": event_id,
        "result": "queued",
        "detail": "queued for processing again; state converges and no email already sent "
        "goes out again",
    }


def bulk_replay(
    rt: Runtime, audit: AuditLog, user: str, f: EventFilter, dry_run: bool, reason: str
) -> dict[str, Any]:
    if dry_run:
        return replays.dry_run(rt, f)
    started = replays.start(rt, f, user, reason)
    audit.record(user, "bulk_replay", {"filter": f.as_dict(), "replay": started["id"]}, 0, reason)
    return started


def _notice_action(
    rt: Runtime, audit: AuditLog, user: str, rid: str, reason: str, action: str
) -> dict[str, Any]:
    if not valid_id(rid):
        raise BadRequest("a notice record id is nt_ and 32 hex digits")
    why = f"{action} by {user}" + (f": {reason}" if reason else "")
    moved = rt.records.retry(rid, why) if action == "retry" else rt.records.cancel(rid, why)
    if moved == "missing":
        raise NotFound("no such notice record")
    if moved == "no_address":
        raise Conflict("the record has no address to send to")
    if moved != "moved":
        allowed = (
            "a failed one can be retried"
            if action == "retry"
            else "a pending, scheduled or awaiting-contact one can be cancelled"
        )
        raise Conflict(f"the notice is {moved}; only {allowed}")
    audit.record(user, action, {"notice": rid}, 1, reason)
    return {"id": rid, "result": "pending" if action == "retry" else "cancelled"}


def retry_notice(rt: Runtime, audit: AuditLog, user: str, rid: str, reason: str) -> dict[str, Any]:
    """A failed record (interrupted ones too: the operator decides) is sent again, once."""
    return _notice_action(rt, audit, user, rid, reason, "retry")


def cancel_notice(rt: Runtime, audit: AuditLog, user: str, rid: str, reason: str) -> dict[str, Any]:
    """A pending, scheduled or awaiting-contact record is never sent."""
    return _notice_action(rt, audit, user, rid, reason, "cancel")
