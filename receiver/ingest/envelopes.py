"""Event envelopes: parse the three shapes 1099Policy uses, and the platform's, into one form.

Pure functions of the raw body. The result names the event's de-duplication id:
- 1099Policy shapes A and B carry a top-level `id` (`ev_...` / `evt_...`): that is the id.
- Shape C has no top-level `id`: the id is derived as `derived_` + the first 32 hex characters
  of SHA-256 over `type|object id|created`, so a retried delivery of the same event maps to
  the same id while two different events of one object (different `created`) do not.
- Platform events use the Standard Webhooks `webhook-id` header as their id.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import PayloadError

SOURCES = ("1099policy", "platform")

TEN99POLICY_TYPES = frozenset(
    {
        "application.created",
        "application.started",
        "application.complete",
        "application.expired",
        "application.ineligible",
        "application.manual_review",
        "application.manual_review_approved",
        "policy.active",
        "policy.active.media",
        "policy.cancelled",
        "policy.reactivated",
        "assignment.active",
        "assignment.cancelled",
        "certificate.flagged",
        "certificate.approved",
        "certificate.denied",
        "certificate.error",
        "invoice.charge_card_failed",
        "invoice.charge_card_succeeded",
        "category_code.added",
    }
)
# CreatorIQ's creators, as the platform reports them (receiver/creatoriq/sync.py).
CREATOR_TYPES = frozenset({"creator.accepted", "creator.updated"})
PLATFORM_TYPES = frozenset(
    {"contractor.updated", "assignment.created", "invoice.created", "invoice.updated"}
    | CREATOR_TYPES
)
KNOWN_TYPES = {"1099policy": TEN99POLICY_TYPES, "platform": PLATFORM_TYPES}
MAX_UNIX = 253402300799  # 9999-12-31T23:59:59Z
_DIGITS = re.compile(r"[0-9]{1,15}")
# A 1099Policy event id: the shapes its senders use (ev_..., derived_..., a:b.c), nothing that
# could read as a path (`/`, `..`) or break a log line (control characters).
EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,255}")


@dataclass(frozen=True)
class Event:
    """A parsed, verified event: what the pipeline needs, independent of envelope shape."""

    source: str
    id: str
    type: str
    created: int | None
    object: dict[str, Any]
    received_at: float | None = None  # when the inbox stored it (set by the event task)

    @property
    def known(self) -> bool:
        """Whether a handler exists for this type; unknown types are stored as `ignored`."""
        return self.type in KNOWN_TYPES[self.source]


def to_unix(value: Any, field: str) -> int | None:
    """Accept Unix seconds (int, or ASCII digits in a string) or an ISO-8601 string, within
    years 1970-9999 (so milliseconds are refused, not misread); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{field} is not a timestamp")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int):
        if not 0 <= value <= MAX_UNIX:
            raise PayloadError(f"{field} is not a timestamp in seconds")
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError(f"{field} is not a timestamp") from None
        if parsed.tzinfo is None:
            # 1099Policy's ISO examples carry no zone; its API is UTC throughout.
            parsed = parsed.replace(tzinfo=UTC)
        return to_unix(int(parsed.timestamp()), field)
    raise PayloadError(f"{field} is not a timestamp")


def _object_of(data: Any) -> dict[str, Any]:
    """Shape B nests the resource under `data.object`; shapes A and C put it in `data`."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PayloadError("data is not an object")
    inner = data.get("object")
    return inner if isinstance(inner, dict) else data


def parse(body: bytes, source: str, message_id: str | None = None) -> Event:
    """Parse a verified body into an Event, or raise PayloadError naming the problem."""
    doc = load_json(body)
    _check_text(body, doc)
    if not isinstance(doc, dict):
        raise PayloadError("body is not a JSON object")
    etype = doc.get("type")
    if not isinstance(etype, str) or not etype.strip():
        raise PayloadError("no event type")
    obj = _object_of(doc.get("data"))
    created = to_unix(doc.get("created"), "created")
    if source == "platform":
        if not message_id:
            raise PayloadError("no webhook-id")
        if etype in CREATOR_TYPES:
            _check_creator_event(obj)
        return Event(source, message_id, etype, created, obj)
    event_id = doc.get("id")
    if event_id is None:
        event_id = derived_id(etype, obj.get("id"), created)
    elif not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id) or ".." in event_id:
        raise PayloadError("id must be 1-255 letters, digits, _ - . or : (and no ..)")
    return Event(source, event_id, etype, created, obj)


def _check_creator_event(obj: dict[str, Any]) -> None:
    """A CreatorIQ event needs its `creator` and `campaign` objects, each with an id (what
    makes its alerts once-only), and `rep_email`, when given, as text. Every other field may
    be missing or wrong: that is what the sync check reports to the rep, not a 400."""
    for name in ("creator", "campaign"):
        part = obj.get(name)
        if not isinstance(part, dict):
            raise PayloadError(f"data.{name} is not an object")
        part_id = part.get("id")
        if not isinstance(part_id, str) or not part_id.strip() or len(part_id) > 255:
            raise PayloadError(f"data.{name}.id is not a string of 1-255 characters")
    if obj.get("rep_email") is not None and not isinstance(obj.get("rep_email"), str):
        raise PayloadError("data.rep_email is not a string")


def load_json(body: bytes) -> Any:
    """json.loads that fails only with PayloadError (non-UTF-8, malformed, absurdly nested)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PayloadError("body is not JSON") from None


def is_text(doc: Any) -> bool:
    """Whether every string in a parsed JSON document is text.

    JSON can carry an unpaired UTF-16 surrogate as an escape (`"\\ud800"`), and Python's JSON
    reader also lets through one encoded in the bytes themselves. Either is valid JSON but not
    text: nothing later could hash, store, render or send it.
    """
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(body: bytes, doc: Any) -> None:
    """Refuse a document that is not text (see `is_text`): accepted with a 2xx, it would fail
    every processing retry. Only bodies that could hold a surrogate (an escape, or any
    non-ASCII byte) are walked, so the common body costs a substring search and an ASCII
    check."""
    if (b"\\u" in body or not body.isascii()) and not is_text(doc):
        raise PayloadError("body contains an unpaired surrogate, which is not text")


def derived_id(etype: str, object_id: Any, created: int | None) -> str:
    """The de-duplication id of an envelope without a top-level `id` (shape C)."""
    if not isinstance(object_id, str) or created is None:
        raise PayloadError("event has no id, and no data id and created to derive one from")
    digest = hashlib.sha256(f"{etype}|{object_id}|{created}".encode()).hexdigest()
    return "derived_" + digest[:32]
