"""A contractor's coverage document, and whether it covers a job at a moment. Pure.

The document keeps, per application session, policy, assignment, certificate and card-charged
invoice, the object's current state, plus a history of what each event said. 1099Policy
delivers late, twice and out of order, so `apply` is a merge that does not care about order:

- **Newer wins, per field.** Every event has an order key `(created, event id)`: the
  envelope's `created` (else the object's `updated`/`created`, else 0), ties broken by the
  event id so two events of the same second still have a fixed order. Each field of a state
  (status, dates, coverage types, each certificate URL, ...) holds the value of the newest
  event that *gave* that field, and remembers that event's key in `_as_of`. An older event can
  only fill in a field no newer event gave (shape-B payloads are abbreviated and would
  otherwise erase the certificate URLs); `null` means "not said", never "cleared".
- **History is a set.** One entry per event id, sorted by order key, each with the status the
  event reported and the one before it (recomputed from the sorted list), capped to the newest
  HISTORY_LIMIT entries.

Both are a maximum per field and a sorted set, so applying any permutation of the same events,
with repeats, gives the same document (tests/test_coverage.py proves it with hypothesis).

Which contractor an event belongs to is `attribute`'s business; the store (coverage/store.py)
uses it to find the document, parking events whose contractor is not known yet.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from ..errors import PayloadError
from ..ingest.envelopes import Event, to_unix

KINDS = {
    "application": "applications",
    "policy": "policies",
    "assignment": "assignments",
    "certificate": "certificates",
    "invoice": "invoices",
}
# The status each event type implies when the payload itself does not say.
IMPLIED_STATUS = {
    "application.created": "created",
    "application.started": "started",
    "application.complete": "complete",
    "application.expired": "expired",
    "application.ineligible": "ineligible",
    "application.manual_review": "manual_review",
    "application.manual_review_approved": "manual_review_approved",
    "policy.active": "active",
    "policy.active.media": "active",
    "policy.reactivated": "active",
    "policy.cancelled": "cancelled",
    "assignment.active": "active",
    "assignment.cancelled": "cancelled",
    "certificate.flagged": "flagged",
    "certificate.approved": "approved",
    "certificate.denied": "denied",
    "certificate.error": "error",
    "invoice.charge_card_succeeded": "charge_succeeded",
    "invoice.charge_card_failed": "charge_failed",
}
COVERAGE_TYPES = frozenset(IMPLIED_STATUS)
# Kinds whose payload carries the object's own status; for sessions and invoices a payload
# `status` would describe something else, so the event type is the status.
_PAYLOAD_STATUS = {"policy", "assignment", "certificate"}
FIELDS = (
    "status",
    "effective_date",
    "end_date",
    "cancellation_date",
    "coverage_types",
    "job",
    "policy",
    "quote",
    "invoice",
    "bind",
    "step",
    "filename",
)
_URL_FIELDS = ("pdf_url", "gl_coi_pdf_url", "wc_coi_pdf_url")
# 1099Policy sometimes sends certificate paths relative to its storage bucket's host.
STORAGE_ORIGIN = "https://storage.googleapis.com"
HISTORY_LIMIT = 200
# A state that was bound covers its dates; these statuses also end it early (see `window`).
_BOUND = {"active", "expired", "cancelled", "inactive"}
_ENDED = {"expired", "cancelled", "inactive"}

Key = tuple[int, str]


@dataclass(frozen=True)
class Attribution:
    """Whose event this is: the contractor it names, and the ids that lead to one.

    `refs` are namespaced ids (`quote:qt_..`, `policy:pl_..`, `application:ias_..`, ...) in a
    fixed order: the object's own id first. Jobs are not refs: one job has many contractors.
    """

    contractor: str | None
    refs: tuple[str, ...]


def family(event_type: str) -> str | None:
    """`policy` for `policy.active.media`, ...; None for types that carry no coverage."""
    return event_type.split(".", 1)[0] if event_type in COVERAGE_TYPES else None


def id_of(value: Any) -> str | None:
    """An id given as a string or as an embedded object with an `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    return value.strip() if isinstance(value, str) and value.strip() else None


def attribute(event: Event) -> Attribution:
    """Assignments, certificates and invoices name their contractor; sessions do once the
    contractor is known; policies never do (policy -> quote -> contractor), so their refs
    are what the store maps to a contractor learned from another event."""
    kind, obj = family(event.type), event.object
    if kind is None:
        return Attribution(None, ())
    quote = obj.get("quote")
    contractor = id_of(obj.get("contractor"))
    if contractor is None and isinstance(quote, dict):
        contractor = id_of(quote.get("contractor"))
    refs: list[str] = []
    for role, value in (
        (kind, obj.get("id")),
        ("quote", quote),
        ("policy", obj.get("policy")),
        ("invoice", obj.get("invoice")),
    ):
        ref = id_of(value)
        if ref and f"{role}:{ref}" not in refs:
            refs.append(f"{role}:{ref}")
    return Attribution(contractor, tuple(refs))


def order_key(event: Event) -> Key:
    """Newer-than order of events: `created`, then the event id."""
    created = event.created
    if created is None:
        created = when(event.object.get("updated")) or when(event.object.get("created"))
    return (created or 0, event.id)


def when(value: Any) -> int | None:
    """A timestamp (int, ISO or digits), or None when absent or unreadable."""
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    try:
        return to_unix(value, "timestamp")
    except PayloadError:
        return None


def _types(value: Any) -> list[str] | None:
    """`coverage_type` as a list, a wrapped `{"coverage_type": [...]}` or one string."""
    if isinstance(value, dict):
        value = value.get("coverage_type")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return None
    types = sorted({v.strip().lower() for v in value if isinstance(v, str) and v.strip()})
    return types or None


def url(value: Any) -> str | None:
    """An http(s) URL, a bucket-relative path made absolute, else None (never javascript:)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith(("https://", "http://")):
        return text
    if text.startswith("/bound-policies/"):
        return STORAGE_ORIGIN + text
    return None


def _status(kind: str, event_type: str, obj: dict[str, Any]) -> str:
    implied = IMPLIED_STATUS[event_type]
    if kind not in _PAYLOAD_STATUS:
        return implied
    if kind == "assignment" and obj.get("cancelled") is True:
        return "cancelled"
    raw = obj.get("status")
    if isinstance(raw, str) and raw.strip():
        return raw.strip().lower()
    active = obj.get("is_active")
    if isinstance(active, bool) and active != (implied == "active"):
        return "active" if active else "inactive"
    return implied


def facts(event: Event) -> dict[str, Any]:
    """What one event says about its object; None where it says nothing."""
    kind = family(event.type)
    if kind is None:
        return {}
    obj = event.object
    certificates = obj.get("certificates")
    urls = {**obj, **certificates} if isinstance(certificates, dict) else obj
    bind = obj.get("bind")
    return {
        "status": _status(kind, event.type, obj),
        "effective_date": when(obj.get("effective_date")),
        "end_date": when(obj.get("end_date")) or when(obj.get("expiration_date")),
        "cancellation_date": when(obj.get("cancellation_date")),
        "coverage_types": _types(obj.get("coverage_type", obj.get("coverage_types"))),
        "job": id_of(obj.get("job")),
        "policy": id_of(obj.get("policy")),
        "quote": id_of(obj.get("quote")),
        "invoice": id_of(obj.get("invoice")),
        "bind": bind if isinstance(bind, bool) else None,
        "step": obj.get("step") if isinstance(obj.get("step"), str) else None,
        "filename": obj.get("filename") if isinstance(obj.get("filename"), str) else None,
        **{f"documents.{name}": url(urls.get(name)) for name in _URL_FIELDS},
    }


def empty(contractor: str) -> dict[str, Any]:
    """The document of a contractor nothing is known about yet."""
    return {"contractor": contractor, **{k: {} for k in KINDS.values()}, "history": []}


def _new_state(object_id: str) -> dict[str, Any]:
    return {
        "id": object_id,
        **dict.fromkeys(FIELDS),
        "documents": {},
        "last_event": None,
        "_as_of": {},
    }


def apply(doc: dict[str, Any], event: Event) -> dict[str, Any]:
    """The document after `event` (a new dict; `doc` is not changed). Order-independent."""
    kind = family(event.type)
    object_id = id_of(event.object.get("id"))
    if kind is None or object_id is None:
        return doc
    out = copy.deepcopy(doc)
    key = order_key(event)
    state = out[KINDS[kind]].setdefault(object_id, _new_state(object_id))
    said = facts(event)
    for name, value in said.items():
        seen = state["_as_of"].get(name)
        if value is None or (seen is not None and tuple(seen) > key):
            continue
        if name.startswith("documents."):
            state["documents"][name.removeprefix("documents.")] = value
        else:
            state[name] = value
        state["_as_of"][name] = list(key)
    if said.get("status") == "active":
        # The earliest report of it being active (a minimum: order-independent) is when
        # coverage started for an object whose payloads carry no effective date.
        first = state.get("_active_since")
        state["_active_since"] = key[0] if first is None else min(first, key[0])
    last = state["last_event"]
    if last is None or (last["created"], last["id"]) <= key:
        state["last_event"] = {"id": event.id, "type": event.type, "created": key[0]}
    out["history"] = _history(
        out["history"],
        {
            "event": event.id,
            "type": event.type,
            "created": key[0],
            "kind": kind,
            "object": object_id,
            "status": said["status"],
        },
    )
    return out


def _history(history: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Add `entry` to the set, keep the newest HISTORY_LIMIT, recompute `previous`."""
    by_id = {h["event"]: h for h in history}
    by_id.setdefault(entry["event"], entry)
    kept = sorted(by_id.values(), key=lambda h: (h["created"], h["event"]))[-HISTORY_LIMIT:]
    last: dict[tuple[str, str], str] = {}
    out = []
    for h in kept:
        ident = (h["kind"], h["object"])
        out.append({**h, "previous": last.get(ident)})
        last[ident] = h["status"]
    return out


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as the API and the page show it: lists sorted by id, no bookkeeping."""
    out: dict[str, Any] = {"contractor": doc["contractor"]}
    for plural in KINDS.values():
        out[plural] = [
            {k: v for k, v in state.items() if not k.startswith("_")}
            for _, state in sorted(doc[plural].items())
        ]
    out["history"] = doc["history"]
    return out


def current(doc: dict[str, Any]) -> dict[str, Any]:
    """The current state without history: what a change notification is about."""
    return {k: v for k, v in public(doc).items() if k != "history"}


def window(state: dict[str, Any]) -> tuple[int, int | None] | None:
    """[start, end) in which a bound object covers, or None if it never did.

    Start is `effective_date`, else the first time 1099Policy reported it active. End is
    `end_date`, cut short by a cancellation (`cancellation_date`, else the time of the event
    that reported it); None is open-ended.
    """
    status = state.get("status")
    if status not in _BOUND or state.get("bind") is False:
        return None
    told = state["_as_of"].get("status", [None])[0]
    first_active = state.get("_active_since")
    start = state.get("effective_date")
    if start is None:
        start = first_active if first_active is not None else (None if status in _ENDED else told)
    end = state.get("end_date")
    if status in _ENDED:
        stopped = state.get("cancellation_date") or told
        end = stopped if end is None else min(end, stopped)
    if start is None:
        return None
    return (start, end)


def _covers(state: dict[str, Any], at: int) -> bool:
    span = window(state)
    return span is not None and span[0] <= at and (span[1] is None or at < span[1])


def policy_jobs(doc: dict[str, Any], policy: dict[str, Any]) -> list[str]:
    """A policy covers the job of its quote; the application session says which it is."""
    jobs = {policy["job"]} if policy.get("job") else set()
    for app in doc["applications"].values():
        same = app.get("policy") == policy["id"] or (
            policy.get("quote") and app.get("quote") == policy["quote"]
        )
        if same and app.get("job"):
            jobs.add(app["job"])
    return sorted(jobs)


def _by(kind: str, state: dict[str, Any], job: str | None) -> dict[str, Any]:
    span = window(state)
    return {
        "kind": kind,
        "id": state["id"],
        "job": job,
        "status": state["status"],
        "effective_date": state["effective_date"],
        "end_date": state["end_date"],
        "covered_until": span[1] if span else None,
        "coverage_types": state["coverage_types"],
        "policy": state.get("policy"),
    }


def _covering(doc: dict[str, Any], at: int) -> list[dict[str, Any]]:
    """Every assignment and policy covering at `at`, one entry per job it covers."""
    found = [
        _by("assignment", a, a.get("job")) for a in doc["assignments"].values() if _covers(a, at)
    ]
    for policy in doc["policies"].values():
        if _covers(policy, at):
            jobs: list[str | None] = [*policy_jobs(doc, policy)] or [None]
            found.extend(_by("policy", policy, job) for job in jobs)
    return found


def _rank(by: dict[str, Any]) -> tuple[bool, int, str]:
    """Prefer the assignment (it is per job), then the latest start, then the id."""
    return (by["kind"] == "assignment", by["effective_date"] or 0, by["id"])


def covered(doc: dict[str, Any], job: str, at: int) -> dict[str, Any]:
    """Whether `job` is covered at `at`, and by which assignment or policy.

    A policy whose job is not known yet (no application session names it) covers no job:
    the answer never claims coverage the document cannot show. Certificates are the
    contractor's own insurance under review and carry no dates; card charges only explain
    why an assignment is not active yet; neither counts. Answers come from each object's
    current state, so a cancelled-then-reactivated policy counts as active for its whole
    term (the gap is in the history, not in the answer).
    """
    matches = [b for b in _covering(doc, at) if b["job"] == job]
    return {"covered": bool(matches), "by": max(matches, key=_rank) if matches else None}


def covered_now(doc: dict[str, Any], now: int) -> dict[str, Any]:
    """Whether anything covers the contractor at `now`, and everything that does."""
    found = sorted(_covering(doc, now), key=lambda b: (b["job"] or "", b["kind"], b["id"]))
    return {"covered": bool(found), "at": now, "by": found}
