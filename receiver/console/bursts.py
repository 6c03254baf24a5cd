"""What a notice of a burst of re-prices coalesced: the events, their amounts, the window.

A change notice (`premium_increase_*`, `premium_decrease_*`) and an updated reminder have the
cause `reprice:<invoice>@<burst>` (notices/bills.py); the re-prices that joined the burst are
kept beside the ledger (notices/ledger.py `remember_reprice`). The console's notice page and
`GET /api/ops/notices/<id>` show them with the burst's window: its first and last re-price,
when it ends (while the ledger still knows it), and when the notice was decided (its burst
closed and its amounts read) and sent. Nothing is made up: an amount or a time that is not
known is None, and the page leaves it out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..notices.ledger import Ledger

# The re-prices listed (the latest of the burst); a longer burst says how many it had.
LISTED = 100


def coalesced(ledger: Ledger, rec: Mapping[str, str]) -> dict[str, Any] | None:
    """The burst a record's notice is about, or None for a record of another cause."""
    cause = rec.get("cause", "")
    if not cause.startswith("reprice:"):
        return None
    invoice, burst_id = _burst_of(cause.removeprefix("reprice:"), _guard(rec))
    events = [_reprice(doc) for doc in ledger.reprices(invoice, burst_id)]
    times = [e["at"] for e in events if e["at"] is not None]
    return {
        "invoice": invoice,
        "id": burst_id,
        "count": len(events),
        "events": events[-LISTED:],
        "from_cents": events[0]["before_cents"] if events else None,
        "to_cents": events[-1]["after_cents"] if events else None,
        "first_at": min(times) if times else None,
        "last_at": max(times) if times else None,
        "ends_at": _ends(ledger, invoice, burst_id),
        "decided_at": _number(rec.get("decided_at")),
        "sent_at": _number(rec.get("sent_at")),
    }


def _guard(rec: Mapping[str, str]) -> dict[str, Any]:
    try:
        guard = json.loads(rec.get("guard") or "{}")
    except ValueError:
        return {}
    return guard if isinstance(guard, dict) else {}


def _burst_of(rest: str, guard: Mapping[str, Any]) -> tuple[str, str]:
    """(invoice, burst id) of a cause's `<invoice>@<burst>`: the guard names the invoice, so
    an `@` in either id does not split it wrongly."""
    invoice = str(guard.get("invoice") or "")
    if invoice and rest.startswith(f"{invoice}@"):
        return invoice, rest[len(invoice) + 1 :]
    invoice, _, burst_id = rest.partition("@")
    return invoice, burst_id


def _ends(ledger: Ledger, invoice: str, burst_id: str) -> int | None:
    """When the burst ends (its notices' due time), while the ledger still holds it."""
    entry = ledger.get(invoice) if invoice else None
    for burst in (entry.burst, entry.prior) if entry is not None else ():
        if burst is not None and burst.id == burst_id:
            return burst.due
    return None


def _reprice(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "source": str(doc.get("source") or ""),
        "id": str(doc.get("id") or ""),
        "before_cents": _cents(doc.get("before")),
        "after_cents": _cents(doc.get("after")),
        "at": _number(doc.get("at")),
        "created": _number(doc.get("created")),
    }


def _cents(value: Any) -> int | None:
    """An amount as kept, or None when it is not a possible one (never shown as $0.00)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _number(value: Any) -> float | None:
    """A Unix time as kept (a record's field is a string), or None when unknown."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None
