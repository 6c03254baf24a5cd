"""Build signed deliveries for tests, the way each sender signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

TEN99_SECRET = "whsec_test_secret"
TEN99_OLD_SECRET = "whsec_old_secret"
PLATFORM_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PLATFORM_OLD_SECRET = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="


def body_of(event: dict[str, Any] | bytes) -> bytes:
    return event if isinstance(event, bytes) else json.dumps(event).encode()


def tv1_header(body: bytes, secret: str = TEN99_SECRET, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def sw_signature(body: bytes, msg_id: str, t: int, secret: str = PLATFORM_SECRET) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{t}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sw_headers(
    body: bytes, msg_id: str, secret: str = PLATFORM_SECRET, t: int | None = None
) -> dict[str, str]:
    t = int(time.time()) if t is None else t
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(t),
        "webhook-signature": sw_signature(body, msg_id, t, secret),
    }


# SendGrid's Signed Event Webhook: ECDSA P-256 over timestamp + body.
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_b64(key: Any) -> str:
    """The public key as SendGrid's UI shows it: base64 of the DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(key: Any, body: bytes, timestamp: str) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


class SendGridPoster:
    """Posts Event Webhook batches to the app the way SendGrid does, signed at `clock`'s time
    (the wall clock unless a test hands it its own)."""

    def __init__(self, client: Any, key: Any, clock: Any = time.time) -> None:
        self.client = client
        self.key = key
        self.clock = clock

    def __call__(
        self,
        events: list[Any] | bytes,
        *,
        t: int | None = None,
        key: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = events if isinstance(events, bytes) else json.dumps(events).encode()
        timestamp = str(int(self.clock()) if t is None else t)
        signed = {SIGNATURE: sign(key or self.key, body, timestamp), TIMESTAMP: timestamp}
        signed.update(headers or {})
        return self.client.post(
            "/webhooks/sendgrid", data=body, headers=signed, content_type="application/json"
        )
