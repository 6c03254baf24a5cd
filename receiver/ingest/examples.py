"""A realistic example of every event type the service accepts, for trying it by hand.

`flask --app receiver send-test-event TYPE` posts one of these (receiver/cli.py). The shapes
follow docs/event-contract.md and docs/1099policy-domain.md: 1099Policy events carry a
top-level `id` and the object in `data`; platform events carry no id (the Standard Webhooks
`webhook-id` header is their id). Every example of one contractor names the same objects
(quote, policy, job, assignment, invoice), so a sequence of them tells one story.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from typing import Any

from .envelopes import KNOWN_TYPES

DAY = 86400
CONTACT = {
    "email": "maya.thompson@example.com",
    "first_name": "Maya",
    "last_name": "Thompson",
    "timezone": "America/Chicago",
}
DEFAULT_CONTRACTOR = "cn_example"  # Maya Thompson; any other id is a person of its own
# Names for the other ids, picked by the id, so each test contractor has its own inbox and name.
OTHER_NAMES = (
    ("Sam", "Lee"),
    ("Ana", "Ruiz"),
    ("Kofi", "Mensah"),
    ("Priya", "Shah"),
    ("Jonas", "Berg"),
    ("Lena", "Novak"),
    ("Omar", "Haddad"),
    ("Grace", "Okafor"),
)
REP = "rep@platform.example"
JOB = {
    "id": "jb_example",
    "name": "Kitchen remodel, 14 Elm St",
    "custom_metadata": {"po_contact_email": REP},
}


def source_of(event_type: str) -> str:
    """The sender of a type ("1099policy" or "platform"); KeyError for an unknown type."""
    for source, types in KNOWN_TYPES.items():
        if event_type in types:
            return source
    raise KeyError(event_type)


def contact_of(contractor: str) -> dict[str, str]:
    """The sample contact of `contractor`: Maya Thompson for the default id; for another id a
    name of its own and the address `<id>@example.com`, so two test contractors never share an
    inbox or a name (the job stays the same: many contractors work one job)."""
    if contractor == DEFAULT_CONTRACTOR:
        return dict(CONTACT)
    first, last = OTHER_NAMES[hashlib.sha256(contractor.encode()).digest()[0] % len(OTHER_NAMES)]
    local = "".join(c if c.isalnum() or c in "._-" else "-" for c in contractor.lower())
    email = f"{local or 'contractor'}@example.com"
    return {**CONTACT, "email": email, "first_name": first, "last_name": last}


def _creator(contractor: str, now: int) -> dict[str, Any]:
    """A CreatorIQ creator accepted an hour ago whose profile then changed (the sync trigger),
    for a campaign starting in a week: a creator the sync check finds nothing wrong with."""
    contact = contact_of(contractor)
    return {
        "creator": {
            "id": f"ciq_{contractor}",
            "email": contact["email"],
            "first_name": contact["first_name"],
            "last_name": contact["last_name"],
            "home_address": {
                "line1": "14 Elm St",
                "city": "Austin",
                "state": "TX",
                "postal_code": "78701",
                "country": "US",
            },
            "work_state": "TX",
            "work_country": "US",
            "payment_amount": 450000,
            "base_pay": "4500",
            "accepted_at": now - 3600,
            "profile_updated_at": now - 600,
        },
        "campaign": {
            "id": "camp_example",
            "name": "Spring launch",
            "start_date": now + 7 * DAY,
            "end_date": now + 37 * DAY,
        },
        "rep_email": REP,
    }


def _object(event_type: str, contractor: str, now: int) -> dict[str, Any]:
    family, _, action = event_type.partition(".")
    person = {"id": contractor, **contact_of(contractor)}
    invoice = {
        "id": f"in_{contractor}",
        "object": "invoice",
        "contractor": contractor,
        "job": JOB["id"],
        "premium_due": 4325,
        "charge_at": now + DAY,
    }
    if family == "application":
        return {
            "id": f"ias_{contractor}",
            "contractor": person,
            "quote": f"qt_{contractor}",
            "policy": f"pl_{contractor}" if action == "complete" else None,
            "job": JOB["id"],
            "status": action,
        }
    if family == "policy":
        return {
            "id": f"pl_{contractor}",
            "quote": f"qt_{contractor}",
            "status": "cancelled" if action == "cancelled" else "active",
            "effective_date": now,
            "expiration_date": now + 365 * DAY,
            "certificates": {
                "gl_coi_pdf_url": f"https://example.com/certificates/pl_{contractor}-gl.pdf",
            },
            "created": now,
        }
    if family == "assignment" and event_type != "assignment.created":
        obj: dict[str, Any] = {
            "id": f"an_{contractor}",
            "contractor": person,
            "job": JOB["id"],
            "policy": f"pl_{contractor}",
            "coverage_type": ["general", "workers-comp"],
            "bind": True,
            "effective_date": now + DAY,
            "end_date": now + 15 * DAY,
            "invoice": invoice["id"],
            "premium_due": 4325,
        }
        if action == "cancelled":
            obj.update(cancelled=True, cancellation_date=now, cancellation_reason="client_request")
        return obj
    if family == "certificate":
        return {
            "id": f"ci_{contractor}",
            "contractor": contractor,
            "status": action,
            "filename": "client-coi.pdf",
            "created": now,
        }
    if event_type.startswith("invoice.charge_card_"):
        obj = {**invoice, "contractor": person}
        if action == "charge_card_failed":
            obj["failure_message"] = "Your card was declined."
        return obj
    if family == "category_code":
        return {"id": f"cc_{contractor}", "code": "1001", "description": "Carpentry"}
    if event_type == "contractor.updated":
        return person
    if event_type.startswith("creator."):
        return _creator(contractor, now)
    if event_type == "assignment.created":
        return {
            "id": f"an_{contractor}",
            "contractor": person,
            "job": JOB,
            "premium_due": 4325,
            "withhold_premium": False,
            "charge_at": now + 2 * DAY,
            "effective_date": now + 2 * DAY,
        }
    # invoice.created / invoice.updated, as the platform reports a bill
    return {**invoice, "contractor": person, "job": JOB, "withhold_premium": False}


def example(event_type: str, contractor: str, now: int) -> dict[str, Any]:
    """The envelope of one event of `event_type` about `contractor`, created `now`."""
    envelope: dict[str, Any] = {
        "type": event_type,
        "created": now,
        "data": _object(event_type, contractor, now),
    }
    if source_of(event_type) == "1099policy":
        envelope = {"id": f"ev_{secrets.token_hex(12)}", **envelope}
    return envelope


def with_overrides(envelope: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply `key=value` pairs to `data` (dotted keys reach into nested objects; a value that
    parses as JSON is taken as JSON, else as text). Raises ValueError naming a bad pair."""
    out = copy.deepcopy(envelope)
    for pair in assignments:
        path, sep, raw = pair.partition("=")
        if not sep or not path:
            raise ValueError(f"expected key=value, got {pair!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target = out["data"]
        *parents, last = path.split(".")
        for name in parents:
            child = target.get(name)
            if not isinstance(child, dict):
                child = target[name] = {}
            target = child
        target[last] = value
    return out
