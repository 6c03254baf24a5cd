"""The ops API's part of /api/openapi.json (views/openapi.py merges it in).

Summaries (events, notices, audit entries) are closed schemas, so a field added without being
documented fails the tests that validate real answers; bodies, headers and coverage history
entries are the stored data's own shape and stay open.
"""

from __future__ import annotations

from typing import Any

from ..console.events import STATUSES
from ..console.notices import STATES
from .openapi_schema import closed as _closed
from .openapi_schema import ref as _ref

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_NUM = {"type": "number"}
_NNUM = {"type": ["number", "null"]}
_INT = {"type": "integer"}
_OPEN = {"type": "object"}


def _page(item: str) -> dict[str, Any]:
    return _closed({"items": {"type": "array", "items": _ref(item)}, "next_cursor": _NSTR})


SCHEMAS: dict[str, Any] = {
    "OpsEvent": _closed(
        {
            "source": {"enum": ["1099policy", "platform"]},
            "id": _STR,
            "type": _STR,
            "status": {"enum": list(STATUSES)},
            "received_at": _NUM,
            "attempts": _INT,
            "last_error": _NSTR,
            "contractor": _NSTR,
            "retry_at": {
                **_NNUM,
                "description": "A `received` event after a failed try: when it is tried again",
            },
        }
    ),
    "OpsNotice": _closed(
        {
            "id": _STR,
            "notice": _STR,
            "state": {"enum": list(STATES)},
            "recipient": {"type": "string", "description": "contractor:<id> or rep:<email>"},
            "to": {**_NSTR, "description": "Masked in lists (m***@example.com)"},
            "created_at": _NUM,
            "updated_at": _NUM,
            "send_at": _NNUM,
            "attempts": _INT,
            "delivery": {**_NSTR, "description": "What SendGrid last reported"},
            "last_error": _NSTR,
        }
    ),
    "OpsAuditEntry": _closed(
        {
            "id": _STR,
            "at": _NUM,
            "user": _STR,
            "action": {"enum": ["replay", "bulk_replay", "bulk_replay_done", "retry", "cancel"]},
            "target": _OPEN,
            "affected": _INT,
            "reason": _STR,
        }
    ),
    "OpsReplayAnswer": _closed(
        {"source": _STR, "id": _STR, "result": {"const": "queued"}, "detail": _STR}
    ),
    "OpsNoticeAction": _closed({"id": _STR, "result": {"enum": ["pending", "cancelled"]}}),
    "OpsDryRun": _closed(
        {
            "dry_run": {"const": True},
            "count": _INT,
            "more": {
                "type": "boolean",
                "description": "the preview stopped at its budget of stored events looked at: "
                "count is a lower bound",
            },
            "capped": {"type": "boolean"},
            "cap": _INT,
            "sample": {
                "type": "array",
                "items": _closed(
                    {
                        "source": _STR,
                        "id": _STR,
                        "type": _STR,
                        "status": {"enum": list(STATUSES)},
                        "last_error": _NSTR,
                    }
                ),
            },
            "same_error": {
                **_NSTR,
                "description": "The error every chosen event last failed with, when they all "
                "failed the same way: a replay is likely to fail again until its cause is fixed",
            },
        }
    ),
    "OpsBulkReplay": _closed(
        {
            "id": _STR,
            "filter": _OPEN,
            "cap": _INT,
            "user": _STR,
            "reason": _STR,
            "state": {"enum": ["queued", "running", "done"]},
            "matched": _INT,
            "queued": _INT,
            "skipped": _INT,
            "created_at": _NUM,
            "finished_at": _NNUM,
        }
    ),
}
SCHEMAS["OpsEventDetail"] = {
    **SCHEMAS["OpsEvent"],
    "properties": {
        **SCHEMAS["OpsEvent"]["properties"],
        "created": {"type": ["integer", "null"]},
        "updated_at": _NUM,
        "duplicates": _INT,
        "replays": _INT,
        "headers": {"type": "object", "description": "As received, without signatures"},
        "body": {"description": "The stored body (JSON)"},
        "outcome": _closed(
            {
                "notices": {"type": "array", "items": _ref("OpsNotice")},
                "coverage": {
                    "type": "array",
                    "items": _OPEN,
                    "description": "The contractor's coverage history entries this event wrote",
                },
            }
        ),
    },
    "required": [*SCHEMAS["OpsEvent"]["required"], "outcome", "body", "headers"],
}
SCHEMAS["OpsNoticeDetail"] = {
    **SCHEMAS["OpsNotice"],
    "properties": {
        **SCHEMAS["OpsNotice"]["properties"],
        "to": {**_NSTR, "description": "The full address (a detail view)"},
        "cause": _STR,
        "message_id": _NSTR,
        "errors": {"type": "array", "description": "SendGrid's errors[] of a refused send"},
        "retried_by": _NSTR,
        "accepted_by": _NSTR,
        "resend_at": {
            **_NNUM,
            "description": "An interrupted send waiting for SendGrid's events: when it is "
            "sent again, once, if none came (only with the Event Webhook configured)",
        },
        "resent_at": {**_NNUM, "description": "When an interrupted send was sent again"},
        "delivery_events": _closed(
            {
                "count": _INT,
                "latest": _NSTR,
                "at": _NNUM,
                "reason": _NSTR,
                "type": _NSTR,
                "log": {
                    "type": "array",
                    "description": "SendGrid's events, the newest 20, in time order",
                    "items": _closed({"event": _STR, "at": _NUM, "reason": _NSTR}),
                },
            }
        ),
        "suppression": {
            "oneOf": [_closed({"reason": _STR, "at": _INT}), {"type": "null"}],
        },
        "email": {
            "oneOf": [_closed({"subject": _STR, "html": _STR, "text": _STR}), {"type": "null"}],
            "description": "Rendered now, as a send now would render it",
        },
        "render_error": _NSTR,
        "waiting": {
            "oneOf": [
                _closed({"contractor": _STR, "lookups": {"type": "boolean"}, "next_lookup": _NNUM}),
                {"type": "null"},
            ],
            "description": "An awaiting_contact record: the contractor whose email it waits "
            "for, whether 1099Policy's API is asked (an API key is set), and when next",
        },
    },
    "required": [
        *SCHEMAS["OpsNotice"]["required"],
        "email",
        "delivery_events",
        "suppression",
        "burst",
    ],
}
_NCENTS = {"type": ["integer", "null"], "description": "Cents; null when not known"}
SCHEMAS["OpsNoticeDetail"]["properties"]["burst"] = {
    "oneOf": [
        _closed(
            {
                "invoice": _STR,
                "id": {"type": "string", "description": "The burst's first event's id"},
                "count": {"type": "integer", "description": "Re-prices the burst coalesced"},
                "events": {
                    "type": "array",
                    "description": "Its re-prices (the latest 100), in the order applied",
                    "items": _closed(
                        {
                            "source": _STR,
                            "id": _STR,
                            "before_cents": _NCENTS,
                            "after_cents": _NCENTS,
                            "at": {**_NNUM, "description": "When it was processed"},
                            "created": {**_NNUM, "description": "The event's own time"},
                        }
                    ),
                },
                "from_cents": {**_NCENTS, "description": "The premium before the burst"},
                "to_cents": {**_NCENTS, "description": "Where its latest re-price left it"},
                "first_at": _NNUM,
                "last_at": _NNUM,
                "ends_at": {
                    **_NNUM,
                    "description": "When the burst ends (its notices are due); null once the "
                    "ledger no longer holds it",
                },
                "decided_at": {
                    **_NNUM,
                    "description": "When the send closed the burst and read its amounts",
                },
                "sent_at": {**_NNUM, "description": "When SendGrid accepted the notice"},
            }
        ),
        {"type": "null"},
    ],
    "description": "A notice of a burst of re-prices (cause reprice:<invoice>@<burst>): "
    "the events it coalesced, their amounts and its window; null for other notices",
}
SCHEMAS["OpsTimelineItem"] = _closed(
    {
        "at": _NUM,
        "kind": {"enum": ["event", "coverage", "notice", "delivery"]},
        "event": _ref("OpsEvent"),
        "coverage": _OPEN,
        "notice": _ref("OpsNotice"),
        "delivery": _closed({"notice": _STR, "state": _STR}),
    },
    ["at", "kind"],
)
SCHEMAS["OpsHealth"] = {
    "type": "object",
    "required": [
        "queues",
        "workers_seen",
        "oldest_unprocessed_event_seconds",
        "events_retrying",
        "oldest_overdue_notice_seconds",
        "failed_last_hour",
        "redis_persistence",
        "last_reconcile",
    ],
    "properties": {
        "queues": {"type": "object"},
        "workers_seen": _INT,
        "oldest_unprocessed_event_seconds": {
            **_NNUM,
            "description": "Age of the oldest unprocessed event not waiting for a retry",
        },
        "events_retrying": {
            **_INT,
            "description": "Unprocessed events waiting for a retry after a failed try "
            "(of the oldest 2000 unprocessed)",
        },
        "oldest_overdue_notice_seconds": _NNUM,
        "failed_last_hour": _closed({"events": _INT, "notices": _INT}),
        "redis_persistence": _OPEN,
        "last_reconcile": _NNUM,
    },
}
for _name in ("OpsEvent", "OpsNotice", "OpsAuditEntry"):
    SCHEMAS[_name + "Page"] = _page(_name)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_AUTH_ERRORS = {
    "401": _error("No console user (HTTP Basic, or the SSO proxy's header)"),
    "404": _error("Not found, or the console is off (CONSOLE_USERS unset)"),
}
_ACTION_ERRORS = {
    **_AUTH_ERRORS,
    "400": _error("A malformed body or field"),
    "403": _error("A viewer: actions need the operator role"),
    "409": _error("Not in a state that allows it"),
    "415": _error("Not sent as application/json"),
}
_SECURITY: list[dict[str, list[str]]] = [{"console": []}]


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_PAGING = [
    _q("cursor", "next_cursor of the previous page"),
    _q("limit", "1-200, default 50", {"type": "integer", "minimum": 1, "maximum": 200}),
]
_EVENT_FILTERS = [
    _q("source", "1099policy or platform", {"enum": ["1099policy", "platform"]}),
    _q("type", "An event type, or a prefix like invoice.*"),
    _q("status", "The event's status", {"enum": list(STATUSES)}),
    _q("contractor", "A contractor id"),
    _q("since", "Received at or after (Unix seconds or ISO-8601)"),
    _q("until", "Received at or before (Unix seconds or ISO-8601)"),
]
_FILTER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        p["name"]: p["schema"] if p["name"] in ("source", "status") else {"type": "string"}
        for p in _EVENT_FILTERS
    },
}
_REASON = {"type": "string", "maxLength": 500}


def _json_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": properties,
                    "required": required,
                }
            }
        },
    }


def _get(op: str, summary: str, ok: dict[str, Any], params: list[Any]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op,
            "summary": summary,
            "security": _SECURITY,
            "parameters": params,
            "responses": {"200": ok, "400": _error("A malformed parameter"), **_AUTH_ERRORS},
        }
    }


def _post(
    op: str, summary: str, ok: dict[str, Any], params: list[Any], body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": op,
            "summary": summary,
            "security": _SECURITY,
            "parameters": params,
            "requestBody": body,
            "responses": {"200": ok, **_ACTION_ERRORS},
        }
    }


_EVENT = [_path("source"), _path("event_id")]
PATHS: dict[str, Any] = {
    "/api/ops/events": _get(
        "opsListEvents",
        "Stored events, newest first, filtered",
        _ok("OpsEventPage"),
        [*_EVENT_FILTERS, *_PAGING],
    ),
    "/api/ops/events/{source}/{event_id}": _get(
        "opsGetEvent",
        "One event in full, and its outcome (notices and coverage changes)",
        _ok("OpsEventDetail"),
        _EVENT,
    ),
    "/api/ops/events/{source}/{event_id}/replay": _post(
        "opsReplayEvent",
        "Process the event again: state converges, no email already sent goes out again",
        _ok("OpsReplayAnswer"),
        _EVENT,
        _json_body({"reason": _REASON}, []),
    ),
    "/api/ops/replays": {
        "post": {
            **_post(
                "opsBulkReplay",
                "Replay every event matching a filter: dry run (count and sample), or queue "
                "a run of at most CONSOLE_REPLAY_CAP events (reason required)",
                _ok("OpsDryRun", "The dry run"),
                [],
                _json_body(
                    {"filter": _FILTER_SCHEMA, "dry_run": {"type": "boolean"}, "reason": _REASON},
                    [],
                ),
            )["post"],
        }
    },
    "/api/ops/replays/{replay_id}": _get(
        "opsGetBulkReplay", "A bulk replay's progress", _ok("OpsBulkReplay"), [_path("replay_id")]
    ),
    "/api/ops/notices": _get(
        "opsListNotices",
        "Notice records, newest first, filtered",
        _ok("OpsNoticePage"),
        [
            _q("state", "The state a person sees", {"enum": list(STATES)}),
            _q("notice", "A notice name"),
            _q("contractor", "A contractor id"),
            _q("since", "Created at or after (Unix seconds or ISO-8601)"),
            *_PAGING,
        ],
    ),
    "/api/ops/notices/{record_id}": _get(
        "opsGetNotice",
        "One record with its rendered email, SendGrid's reports and any suppression",
        _ok("OpsNoticeDetail"),
        [_path("record_id")],
    ),
    "/api/ops/notices/{record_id}/retry": _post(
        "opsRetryNotice",
        "Send a failed record again (interrupted ones too); reason required",
        _ok("OpsNoticeAction"),
        [_path("record_id")],
        _json_body({"reason": _REASON}, ["reason"]),
    ),
    "/api/ops/notices/{record_id}/cancel": _post(
        "opsCancelNotice",
        "Never send a pending, scheduled or awaiting-contact record",
        _ok("OpsNoticeAction"),
        [_path("record_id")],
        _json_body({"reason": _REASON}, []),
    ),
    "/api/ops/contractors": _get(
        "opsFindContractors",
        "Contractors whose notices went to an address (ids, masked addresses)",
        {
            "description": "OK",
            "content": {
                "application/json": {
                    "schema": _closed(
                        {
                            "items": {
                                "type": "array",
                                "items": _closed({"contractor": _STR, "email": _STR}),
                            }
                        }
                    )
                }
            },
        },
        [{**_q("email", "An email address"), "required": True}],
    ),
    "/api/ops/contractors/{contractor_id}/timeline": _get(
        "opsContractorTimeline",
        "Events, coverage transitions, notices and delivery reports, newest first",
        {
            "description": "OK",
            "content": {
                "application/json": {
                    "schema": _closed(
                        {
                            "contractor": _STR,
                            "items": {"type": "array", "items": _ref("OpsTimelineItem")},
                        }
                    )
                }
            },
        },
        [_path("contractor_id")],
    ),
    "/api/ops/health": _get("opsHealth", "Is work flowing?", _ok("OpsHealth"), []),
    "/api/ops/audit": _get(
        "opsAuditLog", "The console's actions, newest first", _ok("OpsAuditEntryPage"), _PAGING
    ),
}
# A real bulk run answers 202 with its progress.
PATHS["/api/ops/replays"]["post"]["responses"]["202"] = _ok("OpsBulkReplay", "The run, queued")
