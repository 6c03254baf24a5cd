"""The raw request body, read within WEBHOOK_MAX_BYTES before anything else looks at it.

Signatures are computed over the exact bytes, so the body is read once, raw, straight from the
server's input stream (Flask's `get_data` would buffer it a second time).
"""

from __future__ import annotations

from flask import Request

from ..errors import PayloadTooLarge


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
