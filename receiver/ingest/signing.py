"""How each sender signs a delivery: the other side of verify.py.

Used where this service is the sender (the `coverage.updated` push) and by the
`send-test-event` command, which signs sample events as 1099Policy and the platform would. The
tests keep their own known-answer signers, computed with `hmac` alone, so a change here cannot
silently change what verify.py accepts.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from standardwebhooks import Webhook


def tv1_header(secret: str, body: bytes, timestamp: int) -> str:
    """1099Policy's `t=<unix>,v1=<hex>`: HMAC-SHA256 over `<t>.<body>`, keyed with the secret
    string as it is (prefix included)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def standard_webhooks_headers(
    secret: str, msg_id: str, body: str, timestamp: int
) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers of Standard
    Webhooks v1, signed with the `standardwebhooks` package."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body),
    }
