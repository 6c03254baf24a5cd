"""Sample events as 1099Policy and the platform send them."""

from __future__ import annotations

import time
from typing import Any


def charge_succeeded(invoice: str = "in_1", contractor: Any = None, **extra: Any) -> dict:
    person = contractor if contractor is not None else {
        "id": "cn_1", "email": "maya@example.com", "first_name": "Maya", "last_name": "Thompson",
    }
    return {
        "id": f"ev_paid_{invoice}",
        "type": "invoice.charge_card_succeeded",
        "created": int(time.time()),
        "data": {"id": invoice, "object": "invoice", "premium_due": 4325, "job": "jb_1",
                 "contractor": person, **extra},
    }
