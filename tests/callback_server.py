"""The platform's side of `coverage.updated`: a real HTTP server that verifies every delivery.

Signatures are checked with the `standardwebhooks` package (its own verify, tolerance and
all), as a platform would. `script(500, ...)` makes the next answers fail, to test retries.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class CallbackServer:
    def __init__(self, secret: str = SECRET) -> None:
        self.hook = Webhook(secret)
        self.lock = threading.Lock()
        self.attempts: list[dict[str, Any]] = []  # every request, verified or not
        self.delivered: list[dict[str, Any]] = []  # verified and answered 2xx
        self._script: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = server._answer(body, headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/coverage"

    def _answer(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            payload = self.hook.verify(body, headers)
            verified = True
        except Exception:
            payload, verified = None, False
        with self.lock:
            attempt = {
                "id": headers.get("webhook-id"),
                "verified": verified,
                "body": json.loads(body) if verified else None,
                "raw": body,
            }
            self.attempts.append(attempt)
            if not verified:
                return 401
            status = self._script.pop(0) if self._script else 204
            if 200 <= status < 300:
                self.delivered.append(attempt)
            assert payload is not None
            return status

    def script(self, *statuses: int) -> None:
        with self.lock:
            self._script.extend(statuses)

    def __enter__(self) -> CallbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
