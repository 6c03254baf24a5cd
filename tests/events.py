"""Sample events as 1099Policy and the platform send them."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

SENDGRID_T0 = int(time.time())  # one timestamp for SendGrid events, so repeats match


def charge_succeeded(invoice: str = "in_1", contractor: Any = None, **extra: Any) -> dict:
    person = (
        contractor
        if contractor is not None
        else {
            "id": "cn_1",
            "email": "maya@example.com",
            "first_name": "Maya",
            "last_name": "Thompson",
        }
    )
    return {
        "id": f"ev_paid_{invoice}",
        "type": "invoice.charge_card_succeeded",
        "created": int(time.time()),
        "data": {
            "id": invoice,
            "object": "invoice",
            "premium_due": 4325,
            "job": "jb_1",
            "contractor": person,
            **extra,
        },
    }


def payer(n: int, payers: int, tag: str) -> dict[str, str]:
    """Contractor `n % payers` of a test's many: payers spread as a platform's are (with one,
    concurrent workers' coverage transactions WATCH the same keys and keep retrying)."""
    k = n % payers
    return {
        "id": f"cn_{tag}_{k}",
        "email": f"payer{k}@example.com",
        "first_name": "Pat",
        "last_name": "Lee",
    }


def daytime_zone(now: float | None = None) -> str:
    """A fixed-offset zone where it is early afternoon right now, so reminders to a person
    living there are never held back by quiet hours (21:00-08:00) whenever the suite runs."""
    hour = time.gmtime(now).tm_hour
    offset = (13 - hour + 12) % 24 - 12  # local = UTC + offset, offset in -12..11
    # Etc/GMT signs are inverted: Etc/GMT-3 is UTC+3.
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


MAYA = {
    "id": "cn_1",
    "email": "maya@example.com",
    "first_name": "Maya",
    "last_name": "Thompson",
    "timezone": daytime_zone(),
}
JOB = {
    "id": "jb_1",
    "name": "Deck repair",
    "custom_metadata": {"po_contact_email": "rep@agency.example"},
}


def platform_event(etype: str, obj: dict, created: int | None = None) -> dict:
    return {"type": etype, "created": int(time.time()) if created is None else created, "data": obj}


def assignment_created(premium: int = 1200, withhold: bool = False, **extra: Any) -> dict:
    return platform_event(
        "assignment.created",
        {
            "id": "an_1",
            "contractor": MAYA,
            "job": JOB,
            "premium_due": premium,
            "withhold_premium": withhold,
            "charge_at": int(time.time()) + 86400,
            **extra,
        },
    )


def invoice(
    etype: str,
    premium: int,
    created: int,
    invoice_id: str = "in_1",
    withhold: bool = False,
    contractor: Any = None,
    **extra: Any,
) -> dict:
    return platform_event(
        etype,
        {
            "id": invoice_id,
            "contractor": MAYA if contractor is None else contractor,
            "job": JOB,
            "premium_due": premium,
            "withhold_premium": withhold,
            "charge_at": created + 3600,
            **extra,
        },
        created=created,
    )


def sg_event(
    event: str,
    rid: str | None,
    *,
    ts: int = SENDGRID_T0,
    email: str = "maya@example.com",
    **extra: Any,
) -> dict[str, Any]:
    """One event as SendGrid reports it; custom args (notice_record) are top-level keys."""
    out: dict[str, Any] = {
        "email": email,
        "timestamp": ts,
        "event": event,
        "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "category": ["payment_confirmation"],
        **extra,
    }
    if rid is not None:
        out["notice_record"] = rid
    return out
