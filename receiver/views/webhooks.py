"""The two webhook endpoints: verify, parse, hand to the inbox, answer per the contract."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, request

from .. import events
from ..errors import PayloadTooLarge

bp = Blueprint("webhooks", __name__)


def _receive(source: str) -> tuple[dict[str, Any], int]:
    cfg = current_app.config["RECEIVER"]
    # Refuse on the declared length before reading anything; a body streamed without a
    # length is capped by MAX_CONTENT_LENGTH as it is read.
    if request.content_length is not None and request.content_length > cfg.WEBHOOK_MAX_BYTES:
        raise PayloadTooLarge()
    body = request.get_data(cache=False)
    clock = cfg.extra.get("CLOCK", time.time)
    message_id = current_app.extensions["verifiers"][source].verify(
        body, request.headers, now=clock()
    )
    event = events.parse(body, source, message_id)
    result = current_app.extensions["inbox"].accept(event, body, request.headers, now=clock())
    status = 200 if result.status == "duplicate" else 202
    return {"id": result.id, "status": result.status}, status


@bp.post("/webhooks/1099policy")
def ten99policy() -> tuple[dict[str, Any], int]:
    """Receive a 1099Policy event (t/v1 signature)."""
    return _receive("1099policy")


@bp.post("/webhooks/platform")
def platform() -> tuple[dict[str, Any], int]:
    """Receive a platform event (Standard Webhooks signature)."""
    return _receive("platform")
