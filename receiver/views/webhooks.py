"""The two webhook endpoints: verify, parse, hand to the inbox, answer per the contract."""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Flask, Request, Response, current_app, request

from ..ingest import envelopes
from ..ingest.body import read_body
from ..logs import record

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)


def _receive(source: str) -> Response:
    # The hot path: each proxy lookup (`current_app.x`, `request.x`) costs a context-var
    # lookup, so both objects are resolved once.
    started = time.perf_counter()
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    cfg = app.config["RECEIVER"]
    body = read_body(req, cfg.WEBHOOK_MAX_BYTES)
    now = app.extensions["clock"]()
    headers = req.headers
    message_id = app.extensions["verifiers"][source].verify(body, headers, now=now)
    event = envelopes.parse(body, source, message_id)
    result = app.extensions["inbox"].accept(event, body, headers, now=now)
    status = 200 if result.status == "duplicate" else 202
    if log.isEnabledFor(logging.DEBUG):  # usually off: then its fields are not even built
        record(
            log,
            "webhook",
            logging.DEBUG,
            source=source,
            event_id=event.id,
            type=event.type,
            outcome=result.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    # json.dumps({"id": ..., "status": ...}) byte for byte; only the id needs escaping.
    answer = f'{{"id": {json.dumps(result.id)}, "status": "{result.status}"}}'
    return app.response_class(answer, status=status, mimetype="application/json")


@bp.post("/webhooks/1099policy")
def ten99policy() -> Response:
    """Receive a 1099Policy event (t/v1 signature)."""
    return _receive("1099policy")


@bp.post("/webhooks/platform")
def platform() -> Response:
    """Receive a platform event (Standard Webhooks signature)."""
    return _receive("platform")
