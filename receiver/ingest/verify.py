"""Signature checks for the event sources. Pure: bytes, headers, secrets and a clock in.

Every check is *total*: every malformed header, odd timestamp, bad base64/hex or non-UTF-8
body ends in `SignatureError` (401), never in a stray ValueError (500). Timestamps are parsed
strictly (digits only) and checked symmetrically against the tolerance: a timestamp too far in
the future is as suspect as one too old.

- `TV1Verifier`: 1099Policy's "t=<unix>,v1=<hex>" scheme (Stripe's, under 1099Policy's header),
  HMAC-SHA256 keyed with the whole secret string, prefix included.
- `StandardWebhooksVerifier`: Standard Webhooks v1. The HMAC and key decoding come from the
  `standardwebhooks` package (`Webhook.sign`); the header parsing and clock are ours because
  the package leaks ValueError on malformed input and hard-codes its clock and tolerance.
- `SendGridEventVerifier`: SendGrid's Signed Event Webhook (ECDSA P-256), checked by the
  `sendgrid` library's `EventWebhook` helper behind our own header parsing and clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader
from standardwebhooks import Webhook

from ..config import sendgrid_public_key
from ..errors import SignatureError

_DIGITS = re.compile(r"[0-9]{1,12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_B64_SHA256 = re.compile(r"[A-Za-z0-9+/]{43}=")
# Standard Webhooks forbids '.' in the id (it is the field separator of the signed content).
_MSG_ID = re.compile(r"[!-~]{1,255}")


def _ascii(value: str | None, name: str) -> str:
    if not value:
        raise SignatureError(f"missing {name} header", problem="no_header")
    try:
        value.encode("ascii")
    except UnicodeEncodeError:
        raise SignatureError(f"{name} header is not ASCII") from None
    return value


def _check_time(raw: str, now: float, tolerance: int) -> int:
    """Parse a strict integer timestamp and check it lies within `tolerance` of `now`."""
    if not _DIGITS.fullmatch(raw):
        raise SignatureError("timestamp is not an integer number of seconds")
    ts = int(raw)
    if abs(now - ts) > tolerance:
        raise SignatureError(
            "timestamp outside the tolerance", problem="timestamp_outside_tolerance"
        )
    return ts


class TV1Verifier:
    """Verify `t=<unix seconds>,v1=<hex>[,v1=...]` over `<t>.<raw body>`."""

    def __init__(self, secrets: Sequence[str], header: str, tolerance: int) -> None:
        self._keys = [s.encode("utf-8") for s in secrets]
        self.header = header
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> str | None:
        """Return None when the signature is valid (this scheme has no message id).

        Raises:
            SignatureError: missing/malformed header, stale or future timestamp, no match.
        """
        value = _ascii(headers.get(self.header), self.header)
        timestamp: str | None = None
        candidates: list[bytes] = []
        for item in value.split(","):
            key, sep, val = item.partition("=")
            if not sep:
                raise SignatureError(f"malformed {self.header} header")
            if key == "t":
                if timestamp is not None:
                    raise SignatureError("more than one timestamp")
                timestamp = val
            elif key == "v1" and _HEX64.fullmatch(val):
                candidates.append(val.encode("ascii"))
            # Other schemes (v0, ...) are ignored: accepting them would allow a downgrade.
        if timestamp is None:
            raise SignatureError("no timestamp in signature header")
        _check_time(timestamp, now, self.tolerance)
        if not candidates:
            raise SignatureError("no v1 signature in signature header")
        signed = timestamp.encode("ascii") + b"." + body
        for secret_key in self._keys:
            digest = hmac.new(secret_key, signed, hashlib.sha256).hexdigest().encode("ascii")
            if any(hmac.compare_digest(digest, c) for c in candidates):
                return None
        raise SignatureError("no matching signature", problem="no_matching_secret")


class StandardWebhooksVerifier:
    """Verify Standard Webhooks `webhook-id/-timestamp/-signature` headers."""

    def __init__(self, secrets: Sequence[str], tolerance: int) -> None:
        self._hooks = [Webhook(s) for s in secrets]
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> str:
        """Return the `webhook-id` (the sender's message id) when the signature is valid.

        Raises:
            SignatureError: missing/malformed headers, stale or future timestamp, non-UTF-8
                body, no matching `v1` signature.
        """
        msg_id = _ascii(headers.get("webhook-id"), "webhook-id")
        raw_ts = _ascii(headers.get("webhook-timestamp"), "webhook-timestamp")
        value = _ascii(headers.get("webhook-signature"), "webhook-signature")
        if not _MSG_ID.fullmatch(msg_id) or "." in msg_id:
            raise SignatureError("malformed webhook-id header")
        ts = _check_time(raw_ts, now, self.tolerance)
        candidates: list[bytes] = []
        for entry in value.split(" "):
            version, sep, sig = entry.partition(",")
            if not sep:
                raise SignatureError("malformed webhook-signature entry")
            if version == "v1" and _B64_SHA256.fullmatch(sig):
                candidates.append(sig.encode("ascii"))
        if not candidates:
            raise SignatureError("no v1 signature in webhook-signature header")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8") from None
        when = datetime.fromtimestamp(ts, tz=UTC)
        for hook in self._hooks:
            expected = hook.sign(msg_id, when, text).partition(",")[2].encode("ascii")
            if any(hmac.compare_digest(expected, c) for c in candidates):
                return msg_id
        raise SignatureError("no matching signature", problem="no_matching_secret")


# A DER ECDSA P-256 signature is at most 72 bytes: at most 96 base64 characters, padded.
_B64_DER_SIGNATURE = re.compile(
    r"(?:[A-Za-z0-9+/]{4}){1,24}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
)


class SendGridEventVerifier:
    """Verify SendGrid's Signed Event Webhook: ECDSA P-256/SHA-256 over `<timestamp><body>`.

    The signature check is the `sendgrid` library's `EventWebhook` helper. Around it we add
    what it lacks: it has no freshness check (we apply the same symmetric tolerance as the
    other schemes), wants the body as `str` (a non-UTF-8 body is a 401 here, not a TypeError)
    and raises on malformed base64 (we refuse anything but strict base64 of a plausible DER
    length first, and still catch what it raises).
    """

    SIGNATURE = EventWebhookHeader.SIGNATURE
    TIMESTAMP = EventWebhookHeader.TIMESTAMP

    def __init__(self, public_key: str, tolerance: int) -> None:
        self._helper = EventWebhook(sendgrid_public_key(public_key))
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        """Return None when the batch is authentic and fresh.

        Raises:
            SignatureError: missing/malformed headers, stale or future timestamp, non-UTF-8
                body, signature that does not verify.
        """
        signature = _ascii(headers.get(self.SIGNATURE), self.SIGNATURE)
        raw_ts = _ascii(headers.get(self.TIMESTAMP), self.TIMESTAMP)
        _check_time(raw_ts, now, self.tolerance)
        if not _B64_DER_SIGNATURE.fullmatch(signature):
            raise SignatureError(f"malformed {self.SIGNATURE} header")
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8") from None
        try:
            valid = self._helper.verify_signature(payload, signature, raw_ts)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            valid = False
        if not valid:
            raise SignatureError("no matching signature", problem="no_matching_secret")
