"""A tiny stand-in for 1099Policy's contractor, quote and events API, for tests.

Serves ``GET /api/v1/contractors/<id>`` from ``server.contractors`` (a dict of id -> object)
over real HTTP on 127.0.0.1 and a free port, so tests run the official ``ten99policy`` client
end to end. Unknown ids get the 404 1099Policy sends:
``{"message": ..., "error_code": "invalid_contractor_id"}``. Other paths get a 404 with
``error_code: "not_found"``.

``GET /api/v1/quotes/<id>`` serves ``server.quotes`` the same way (the quote object, whose
``contractor`` names its contractor); unknown ids get 1099Policy's 404 with
``error_code: "invalid_quote_id"``.

``GET /api/v1/events`` lists ``server.events`` newest first (the list is kept oldest first,
as events happen), ``limit`` per page (default 10, at most 100), with ``starting_after``
paging and ``has_more``; ``server.fail_events_after(n)`` answers 500 from the (n+1)th events
request on, and ``server.ignore_starting_after = True`` makes paging do nothing (the first page
again), as an API that does not support it would.

``server.fail_with(500)`` answers every request with that status until ``server.reset()``;
``server.hang()`` makes requests wait (up to ``max_hang`` seconds, or until ``reset()``/
``stop()``) without answering, to exercise client timeouts. Every request is recorded in
``server.requests`` (method, path, headers with lower-cased names, ``authorization``).

Pass ``tls=(certfile, keyfile)`` to serve HTTPS instead.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

CONTRACTOR_PREFIX = "/api/v1/contractors/"
QUOTE_PREFIX = "/api/v1/quotes/"
EVENTS_PATH = "/api/v1/events"


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line (it would print paths into test output)."""

    def send_json(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: Ten99PolicyServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class Ten99PolicyServer:
    """The stub server; use as a context manager or call start()/stop()."""

    def __init__(self, tls: tuple[str, str] | None = None, max_hang: float = 10.0) -> None:
        self.contractors: dict[str, dict[str, Any]] = {}
        self.quotes: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []  # oldest first
        self.ignore_starting_after = False
        self._events_ok: int | None = None
        self.before_events_page: Any = None  # called with the request's number, from 1
        self._events_served = 0
        self.max_hang = max_hang
        self._tls = tls
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._status: int | None = None
        self._release = threading.Event()
        self._hanging = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Ten99PolicyServer:
        self._httpd = _HTTPServer(self)
        if self._tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self._tls)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = self._thread = None

    def __enter__(self) -> Ten99PolicyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API base URL (no trailing slash), as ``ten99policy.api_base`` expects."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def fail_with(self, status: int) -> None:
        with self._lock:
            self._status = status

    def fail_events_after(self, pages: int | None) -> None:
        """Answer 500 to events requests after `pages` more have been answered (None: never)."""
        with self._lock:
            self._events_ok = pages

    def _events_page(self, handler: _Handler) -> None:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(handler.path).query)
        limit = min(int(query.get("limit", ["10"])[0]), 100)
        after = query.get("starting_after", [None])[0]
        with self._lock:
            if self._events_ok is not None:
                if self._events_ok <= 0:
                    handler.send_json(500, {"message": "down", "error_code": "server_error"})
                    return
                self._events_ok -= 1
            self._events_served += 1
            served = self._events_served
            newest_first = list(reversed(self.events))
        if self.before_events_page is not None:
            self.before_events_page(served)
            with self._lock:
                newest_first = list(reversed(self.events))
        start = 0
        if after and not self.ignore_starting_after:
            ids = [e["id"] for e in newest_first]
            start = ids.index(after) + 1 if after in ids else len(ids)
        page = newest_first[start : start + limit]
        has_more = start + limit < len(newest_first)
        handler.send_json(200, {"object": "list", "data": page, "has_more": has_more})

    def hang(self) -> None:
        with self._lock:
            self._hanging = True
            self._release.clear()

    def reset(self) -> None:
        """Forget contractors, records and failure modes; release hanging requests."""
        self._release.set()
        with self._lock:
            self.contractors.clear()
            self.quotes.clear()
            self.events.clear()
            self.ignore_starting_after = False
            self._events_ok = None
            self._events_served = 0
            self.before_events_page = None
            self._requests.clear()
            self._status = None
            self._hanging = False

    def _handle(self, handler: _Handler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._requests.append(
                {
                    "method": handler.command,
                    "path": handler.path,
                    "headers": headers,
                    "authorization": headers.get("authorization"),
                }
            )
            status, hanging = self._status, self._hanging
        if hanging:
            self._release.wait(self.max_hang)
            handler.close_connection = True
            return
        if status is not None:
            handler.send_json(status, {"message": "internal error", "error_code": "server_error"})
            return
        path = handler.path.split("?", 1)[0]
        if path == EVENTS_PATH:
            self._events_page(handler)
            return
        for prefix, objects, what in (
            (CONTRACTOR_PREFIX, self.contractors, "contractor"),
            (QUOTE_PREFIX, self.quotes, "quote"),
        ):
            if path.startswith(prefix):
                self._retrieve(handler, path[len(prefix) :], objects, what)
                return
        handler.send_json(404, {"message": "Not found", "error_code": "not_found"})

    def _retrieve(
        self, handler: _Handler, object_id: str, objects: dict[str, dict[str, Any]], what: str
    ) -> None:
        """One object by id, or 1099Policy's 404 (`invalid_<what>_id`)."""
        with self._lock:
            found = objects.get(object_id)
        if found is None:
            handler.send_json(
                404,
                {
                    "message": f"{what.capitalize()} {object_id} not found",
                    "error_code": f"invalid_{what}_id",
                },
            )
            return
        handler.send_json(200, {"id": object_id, **found})
