"""SendGrid's Event Webhook: verify a signed batch, apply it to the notice records, answer.

The batch is applied inline (delivery/sendgrid_events.py says why and what "applied" means);
the answer is 200 with how many events ended in each outcome, or the error of the other
webhooks: 401 for anything that does not verify, 413 over WEBHOOK_MAX_BYTES, 400 for an
authentic body that is not a JSON array, 503 when Redis is down (SendGrid retries for 24 h).

Without SENDGRID_WEBHOOK_PUBLIC_KEY the endpoint answers 503 `not_configured` and reads
nothing: unverifiable events are never applied, and SendGrid keeps retrying (for 24 h) until
an operator sets the key, while monitoring sees a server-side fault rather than a wrong URL.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from ..errors import NotConfigured
from ..ingest.body import read_body
from ..store.metrics import WEBHOOKS

bp = Blueprint("sendgrid_events", __name__)


@bp.post("/webhooks/sendgrid")
def sendgrid_events() -> tuple[dict[str, Any], int]:
    """Receive one SendGrid Event Webhook batch (ECDSA-signed JSON array)."""
    verifier = current_app.extensions.get("sendgrid_verifier")
    if verifier is None:
        raise NotConfigured("SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    cfg = current_app.config["RECEIVER"]
    clock = current_app.extensions["clock"]
    req = request._get_current_object()  # type: ignore[attr-defined]
    body = read_body(req, cfg.WEBHOOK_MAX_BYTES)
    verifier.verify(body, req.headers, now=clock())
    applied = current_app.extensions["sendgrid_events"].apply(body, now=clock())
    metrics = current_app.extensions["metrics"]
    metrics.add(metrics.count(WEBHOOKS, ("sendgrid", "accepted", "")))
    return applied, 200
