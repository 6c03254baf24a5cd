"""The two webhook endpoints: verify, parse, hand to the inbox, answer per the contract."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Flask, Request, Response, current_app, request

from .. import events
from ..errors import PayloadTooLarge

bp = Blueprint("webhooks", __name__)


def _receive(source: str) -> Response:
    # The hot path: each proxy lookup (`current_app.x`, `request.x`) costs a context-var
    # lookup, so both objects are resolved once.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    cfg = app.config["RECEIVER"]
    body = read_body(req, cfg.WEBHOOK_MAX_BYTES)
    now = cfg.extra.get("CLOCK", time.time)()
    headers = req.headers
    message_id = app.extensions["verifiers"][source].verify(body, headers, now=now)
    event = events.parse(body, source, message_id)
    result = app.extensions["inbox"].accept(event, body, headers, now=now)
    status = 200 if result.status == "duplicate" else 202
    answer = json.dumps({"id": result.id, "status": result.status})
    return app.response_class(answer, status=status, mimetype="application/json")


def read_body(req: Request, limit: int) -> bytes:
    """Read the raw body, refusing it on its declared length before reading anything, and
    when it is streamed without one (chunked), as soon as it passes `limit`."""
    length = req.content_length
    environ = req.environ
    if length is not None:
        if length > limit:
            raise PayloadTooLarge()
        # The server's input stream, read for exactly the declared length.
        return bytes(environ["wsgi.input"].read(length)) if length else b""
    if not environ.get("wsgi.input_terminated"):
        return b""  # neither a length nor a terminated (chunked) stream: no body
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
    return b"".join(chunks)


@bp.post("/webhooks/1099policy")
def ten99policy() -> Response:
    """Receive a 1099Policy event (t/v1 signature)."""
    return _receive("1099policy")


@bp.post("/webhooks/platform")
def platform() -> Response:
    """Receive a platform event (Standard Webhooks signature)."""
    return _receive("platform")
