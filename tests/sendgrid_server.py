"""A small SendGrid-compatible HTTP server for tests and benchmarks.

Point the official client at it with ``SendGridAPIClient(api_key, host=server.url)``; it
answers ``POST /v3/mail/send`` the way SendGrid does (see tests/contracts/README.md and
docs/sendgrid.md), so tests exercise the real ``sendgrid`` / ``python_http_client`` code
paths: urllib, status-code exception classes, ``X-Message-Id`` and rate-limit headers, timeouts.

What it enforces, and why
-------------------------
SendGrid rejects a bad payload with a 400 and the library does no client-side validation at
all, so a lenient fake would let bugs reach production. This server is deliberately strict:

* ``Authorization: Bearer <key>`` with a non-empty key that is not ``None`` (the library sends
  ``Bearer None`` when no key is configured), else 401.
* The body must be JSON (UTF-8; ``Content-Encoding: gzip`` accepted) and valid against the
  patched schema ``tests/contracts/sendgrid-mail-send.schema.json`` (draft 2020-12,
  format checks on), compiled once per process.
* The rules the schema cannot express (contracts README): at most 1000 recipients across all
  ``to``/``cc``/``bcc`` of the request; every address only once in the whole request
  (case-insensitive); ``text/plain`` content, when present, first and before ``text/html``;
  header names (top level and per personalization) printable ASCII without spaces or colons and
  not reserved (To, From, Subject, Reply-To, CC, BCC, Content-Type, Content-Transfer-Encoding,
  DKIM-Signature, Received, x-sg-id, x-sg-eid; case-insensitive), header values strings; at most
  10 ASCII categories; ``send_at`` (top level and per personalization) at most 72 h ahead.
* As the live API does: a ``subject`` (top level or in every personalization) and ``content``
  unless a ``template_id`` is given.
* Bodies over 30 MB get a 413; other paths 404 (e.g. ``//v3/mail/send`` from a host with a
  trailing slash), other methods 405.

Every error reply is SendGrid-shaped: ``{"errors": [{"message", "field", "help": null}]}``.

Replies: 202, empty body, ``X-Message-Id: <random url-safe id>``. With
``mail_settings.sandbox_mode.enable: true`` a valid request gets 200 and no ``X-Message-Id``
(SendGrid documents none for sandbox mode); it is still recorded as accepted, with
``sandbox: True`` and ``message_id: None``.

Scripted replies
----------------
``server.script(*responses)`` queues replies for the next ``POST /v3/mail/send`` requests, one
each, consumed in order before auth and validation; once the queue is empty the server answers
normally again. Forms:

* ``("status", code)`` / ``("status", code, headers)`` / ``("status", code, headers, body)``:
  answer ``code`` with extra headers; ``body`` is a dict (sent as JSON), str or bytes; by
  default a SendGrid-shaped error body. A 429 always carries ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds, default now + 1); pass
  any of them in ``headers`` to override.
* ``("delay", seconds)``: wait, then handle the request normally (validate, accept, 202).
  Use a delay longer than the client timeout to make the client raise ``TimeoutError``.
* ``("delay", seconds, code[, headers[, body]])``: wait, then answer like ``("status", ...)``.
* ``("drop",)``: read the request, then close the connection without answering (the client
  sees ``http.client.RemoteDisconnected``).

Scripted replies are never counted as accepted, not even a scripted 2xx.

Recorded data
-------------
All properties return snapshots (copies) taken under a lock.

* ``accepted``: one dict per accepted mail: ``body`` (parsed JSON), ``headers`` (request
  headers, names lower-cased), ``message_id``, ``status`` (202 or 200), ``sandbox``, ``time``.
* ``requests``: every request except the ``/__*`` control endpoints, with ``method``, ``path``,
  ``headers``, ``body`` (parsed JSON or None), ``status`` (what the server answered or would
  have answered), ``outcome``, ``errors``, ``message_id``, ``connection`` (serial number of
  the TCP connection, to check keep-alive reuse) and ``time``. ``outcome`` is one of
  ``accepted``, ``rejected`` (400/401/404/405/413 from the server's own checks),
  ``scripted``, ``dropped`` or ``client_disconnected``: the client went away (e.g. timed out)
  before the response could be delivered; ``status``/``message_id`` then say what SendGrid
  would have done, which is exactly the ambiguous case (a real SendGrid may have queued it).
* ``connections``: TCP connections opened so far. ``stats()``: all counters as a dict.
* ``wait_for(count, timeout)``: block until ``count`` mails were accepted, else TimeoutError.
  ``wait_for_requests(count, timeout)``: the same for recorded requests of any outcome (a
  client that timed out returns before the server has recorded its request).
* ``reset()``: clear records, counters and pending scripted replies.

``GET /__stats`` returns the counters as JSON and ``POST /__reset`` resets them (for
benchmarks in another process; each such call opens a connection too).

Standalone: ``python tests/sendgrid_server.py --port 8702`` prints its URL and serves until
interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import secrets
import select
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).resolve().parent / "contracts" / "sendgrid-mail-send.schema.json"
MAIL_SEND_PATH = "/v3/mail/send"
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
MAX_SEND_AT_AHEAD = 72 * 3600
MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_ERRORS = 20
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
        "Content-Type",
        "Content-Transfer-Encoding",
        "DKIM-Signature",
        "Received",
        "x-sg-id",
        "x-sg-eid",
    )
)
RATE_LIMIT_DEFAULTS = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}

Error = dict[str, Any]


def _error(message: str, field: str | None = None) -> Error:
    return {"message": message, "field": field, "help": None}


def _errors_body(*errors: Error) -> dict[str, Any]:
    return {"errors": list(errors)}


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _validator(schema_path: Path) -> Draft202012Validator:
    """Load and compile the schema once per path and process."""
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _dotted(path: Iterable[Any]) -> str | None:
    text = ".".join(str(part) for part in path)
    return text or None


def _schema_error(err: ValidationError) -> Error:
    path = list(err.absolute_path)
    if err.validator in ("required", "additionalProperties") and isinstance(err.instance, dict):
        if err.validator == "required":
            names = [n for n in err.validator_value if n not in err.instance]
        else:
            known = err.schema.get("properties", {})
            names = [n for n in err.instance if n not in known]
        if names:
            path.append(names[0])
    return _error(err.message, _dotted(path))


def _header_errors(headers: Any, where: str) -> list[Error]:
    if not isinstance(headers, dict):
        return []
    errors: list[Error] = []
    for name, value in headers.items():
        field_name = f"{where}.{name}"
        if not name or not all(33 <= ord(ch) <= 126 and ch != ":" for ch in name):
            errors.append(
                _error(
                    f"Header name {name!r} must be printable ASCII without spaces or colons.",
                    field_name,
                )
            )
        elif name.lower() in RESERVED_HEADERS:
            errors.append(
                _error(f"The header {name!r} is reserved and may not be set.", field_name)
            )
        if not isinstance(value, str):
            errors.append(
                _error(
                    f"Invalid type. Expected: string, given: {type(value).__name__}.", field_name
                )
            )
    return errors


def _send_at_error(send_at: Any, where: str, now: float) -> Error | None:
    if isinstance(send_at, int) and send_at > now + MAX_SEND_AT_AHEAD:
        return _error("You cannot schedule a send more than 72 hours in advance.", where)
    return None


def _rule_errors(body: dict[str, Any], now: float) -> list[Error]:
    """The rules the schema cannot express; assumes the body already passed the schema."""
    errors: list[Error] = []
    personalizations: list[dict[str, Any]] = body["personalizations"]

    total = 0
    seen: dict[str, str] = {}
    for i, pers in enumerate(personalizations):
        for kind in ("to", "cc", "bcc"):
            for j, recipient in enumerate(pers.get(kind, [])):
                total += 1
                address = recipient["email"].strip().lower()
                where = f"personalizations.{i}.{kind}.{j}.email"
                if address in seen:
                    errors.append(
                        _error(
                            "Each email address in the request must be unique between to, cc "
                            f"and bcc. {recipient['email']!r} duplicates {seen[address]}.",
                            where,
                        )
                    )
                else:
                    seen[address] = where
        errors.extend(_header_errors(pers.get("headers"), f"personalizations.{i}.headers"))
        err = _send_at_error(pers.get("send_at"), f"personalizations.{i}.send_at", now)
        if err:
            errors.append(err)
    if total > MAX_RECIPIENTS:
        errors.insert(
            0,
            _error(
                f"The total number of recipients must be at most {MAX_RECIPIENTS} (to, cc and "
                f"bcc across all personalizations); got {total}.",
                "personalizations",
            ),
        )

    content = body.get("content", [])
    types = [str(block["type"]).strip().lower() for block in content]
    for i, ctype in enumerate(types):
        if ";" in ctype or "\r" in ctype or "\n" in ctype:
            errors.append(_error("The content type may not contain ';' or CRLF.", f"content.{i}"))
    if "text/plain" in types:
        plain = types.index("text/plain")
        html = types.index("text/html") if "text/html" in types else None
        if plain != 0 or (html is not None and html < plain):
            errors.append(
                _error(
                    "If present, text/plain must be the first content, before text/html.",
                    f"content.{plain}.type",
                )
            )

    errors.extend(_header_errors(body.get("headers"), "headers"))

    categories = body.get("categories", [])
    if len(categories) > MAX_CATEGORIES:
        errors.append(_error("You may not have more than 10 categories per request.", "categories"))
    for i, category in enumerate(categories):
        if not category.isascii():
            errors.append(_error("Categories must be ASCII.", f"categories.{i}"))

    err = _send_at_error(body.get("send_at"), "send_at", now)
    if err:
        errors.append(err)

    if "template_id" not in body:
        if "subject" not in body and not all("subject" in p for p in personalizations):
            errors.append(
                _error(
                    "The subject is required, globally or in every personalization, unless a "
                    "template provides it.",
                    "subject",
                )
            )
        if not content:
            errors.append(
                _error("Unless a valid template_id is provided, content is required.", "content")
            )
    return errors


def validate_mail(
    body: Any, *, schema_path: Path = SCHEMA_PATH, now: float | None = None
) -> list[Error]:
    """Return SendGrid-shaped errors for a parsed mail/send body; empty when valid."""
    validator = _validator(schema_path)
    schema_errors = sorted(
        validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if schema_errors:
        return [_schema_error(e) for e in schema_errors[:MAX_ERRORS]]
    return _rule_errors(body, time.time() if now is None else now)[:MAX_ERRORS]


def is_sandbox(body: Mapping[str, Any]) -> bool:
    settings = body.get("mail_settings") or {}
    return (settings.get("sandbox_mode") or {}).get("enable") is True


# --------------------------------------------------------------------------------------------
# Scripted replies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scripted:
    delay: float = 0.0
    status: int | None = None  # None: after the delay, handle the request normally
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False


def _parse_status(args: tuple[Any, ...], delay: float) -> _Scripted:
    if not 1 <= len(args) <= 3:
        raise ValueError("status form: code[, headers[, body]]")
    code = args[0]
    headers = dict(args[1]) if len(args) > 1 and args[1] is not None else {}
    body = args[2] if len(args) > 2 else None
    if not isinstance(code, int) or not 100 <= code <= 599:
        raise ValueError(f"invalid status code {code!r}")
    return _Scripted(
        delay=delay, status=code, headers={str(k): str(v) for k, v in headers.items()}, body=body
    )


def _parse_script(item: tuple[Any, ...]) -> _Scripted:
    if not isinstance(item, tuple) or not item:
        raise ValueError(f"a scripted reply is a non-empty tuple, got {item!r}")
    kind, args = item[0], item[1:]
    if kind == "status":
        return _parse_status(args, 0.0)
    if kind == "delay":
        if not args or not isinstance(args[0], int | float) or args[0] < 0:
            raise ValueError("delay form: ('delay', seconds[, code[, headers[, body]]])")
        if len(args) == 1:
            return _Scripted(delay=float(args[0]))
        return _parse_status(args[1:], float(args[0]))
    if kind == "drop" and not args:
        return _Scripted(drop=True)
    raise ValueError(f"unknown scripted reply {item!r}")


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: SendGridServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class _ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSendGrid/1.0"
    sys_version = ""
    server: _HTTPServer
    connection_id: int
    target: str

    # -- connection bookkeeping ------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.owner._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: no per-request lines on stderr

    # -- dispatch --------------------------------------------------------------------------

    def parse_request(self) -> bool:
        ok = super().parse_request()
        # http.server folds a leading "//" into "/"; keep the target as sent, so that a client
        # configured with a trailing-slash host ("//v3/mail/send") gets a 404, not a 202.
        parts = self.requestline.split(" ")
        self.target = parts[1] if ok and len(parts) == 3 else self.path
        return ok

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.target == "/__stats":
            self._send_json(200, owner.stats())
            return
        self._other_method()

    def do_POST(self) -> None:
        owner = self.server.owner
        if self.target == "/__reset":
            with contextlib.suppress(_BodyError):  # it closes the connection on a bad body
                self._read_body()
            owner.reset()
            self._send_json(200, owner.stats())
            return
        if self.target != MAIL_SEND_PATH:
            self._other_method()
            return
        owner._handle_mail_send(self)

    def _other_method(self) -> None:
        known = self.target in (MAIL_SEND_PATH, "/__stats", "/__reset")
        try:
            raw = self._read_body()
        except _BodyError as exc:
            self._finish_rejected(exc.status, exc.message, None)
            return
        status = 405 if known else 404
        message = "method not allowed" if known else "not found"
        self._finish_rejected(status, message, _parse_json_or_none(raw))

    do_PUT = do_PATCH = do_DELETE = _other_method

    def _finish_rejected(self, status: int, message: str, body: Any) -> None:
        errors = [_error(message)]
        self.server.owner._finish(
            self, "rejected", status, _errors_body(*errors), body=body, errors=errors
        )

    # -- I/O helpers -----------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise _BodyError(400, "invalid Content-Length") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise _BodyError(413, "payload too large")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.close_connection = True
                raise _BodyError(400, "invalid chunked encoding") from None
            if chunk == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            size += chunk
            if size > MAX_BODY_BYTES:
                self.close_connection = True
                raise _BodyError(413, "payload too large")
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(1024)

    def _client_gone(self) -> bool:
        """True if the peer closed (or reset) its end, i.e. nobody will read our answer."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _wait(self, seconds: float, stopping: threading.Event) -> None:
        """Sleep ``seconds``; end early if the client disconnects or the server stops."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0 and not stopping.is_set():
            try:
                readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.05))
            except (OSError, ValueError):
                return
            if readable and self._client_gone():
                return
            if readable:  # pipelined data: nothing to learn from the socket, just sleep
                stopping.wait(remaining)

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        """Write a full response; raise _ClientGone if the peer is not there to read it."""
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if payload:
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError as exc:
            self.close_connection = True
            raise _ClientGone from exc

    def _send_json(self, status: int, data: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        try:
            self._send(status, {"Content-Type": "application/json", **(headers or {})}, payload)
        except _ClientGone:
            pass


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _body_bytes(body: Any) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), "application/json"


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class SendGridServer:
    """A SendGrid ``POST /v3/mail/send`` look-alike on 127.0.0.1, in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        schema_path: Path = SCHEMA_PATH,
        max_records: int | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._schema_path = schema_path
        _validator(schema_path)  # fail fast on a missing or broken schema
        self._cond = threading.Condition()
        self._max_records = max_records
        self._accepted: deque[dict[str, Any]] = deque(maxlen=max_records)
        self._requests: deque[dict[str, Any]] = deque(maxlen=max_records)
        self._scripts: deque[_Scripted] = deque()
        self._counts = self._zero_counts()
        self._open_sockets: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _zero_counts() -> dict[str, int]:
        return dict.fromkeys(
            (
                "requests",
                "accepted",
                "rejected",
                "scripted",
                "dropped",
                "client_disconnected",
                "connections",
            ),
            0,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SendGridServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sendgrid-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._cond:
            sockets = list(self._open_sockets)
        for sock in sockets:  # wake handler threads parked on idle keep-alive connections
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> SendGridServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without trailing slash, for ``SendGridAPIClient(key, host=url)``."""
        return f"http://{self._host}:{self.port}"

    # -- scripting -------------------------------------------------------------------------

    def script(self, *responses: tuple[Any, ...]) -> None:
        """Queue scripted replies for the next mail/send requests (see module docstring)."""
        parsed = [_parse_script(item) for item in responses]
        with self._cond:
            self._scripts.extend(parsed)

    @property
    def scripts_pending(self) -> int:
        with self._cond:
            return len(self._scripts)

    # -- recorded data ---------------------------------------------------------------------

    @property
    def accepted(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(a) for a in self._accepted]

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(r) for r in self._requests]

    @property
    def connections(self) -> int:
        with self._cond:
            return self._counts["connections"]

    def stats(self) -> dict[str, int]:
        with self._cond:
            return dict(self._counts)

    def reset(self) -> None:
        with self._cond:
            self._accepted.clear()
            self._requests.clear()
            self._scripts.clear()
            self._counts = self._zero_counts()
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until ``count`` mails were accepted; return them. Raise TimeoutError."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._counts["accepted"] >= count, timeout):
                raise TimeoutError(
                    f"expected {count} accepted mails within {timeout}s, "
                    f"got {self._counts['accepted']}"
                )
            return [dict(a) for a in self._accepted]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until ``count`` requests (not /__ calls) were recorded, whatever their outcome."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._counts["requests"] >= count, timeout):
                raise TimeoutError(
                    f"expected {count} recorded requests within {timeout}s, "
                    f"got {self._counts['requests']}"
                )
            return [dict(r) for r in self._requests]

    # -- internals used by the handler -----------------------------------------------------

    def _connection_opened(self, sock: socket.socket) -> int:
        with self._cond:
            self._counts["connections"] += 1
            self._open_sockets.add(sock)
            return self._counts["connections"]

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._cond:
            self._open_sockets.discard(sock)

    def _record(
        self,
        handler: _Handler,
        outcome: str,
        status: int | None,
        *,
        body: Any = None,
        errors: list[Error] | None = None,
        message_id: str | None = None,
        accepted: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        entry = {
            "time": time.time(),
            "method": handler.command,
            "path": handler.target,
            "headers": {k.lower(): v for k, v in handler.headers.items()},
            "body": body,
            "status": status,
            "outcome": outcome,
            "errors": errors,
            "message_id": message_id,
            "connection": handler.connection_id,
        }
        with self._cond:
            self._counts["requests"] += 1
            self._counts[outcome] += 1
            self._requests.append(entry)
            if accepted is not None:
                self._accepted.append(accepted)
            self._cond.notify_all()
        return entry

    def _retract(self, entry: dict[str, Any], accepted: dict[str, Any] | None) -> None:
        """The response could not be delivered: turn the record into client_disconnected."""
        with self._cond:
            self._counts[entry["outcome"]] -= 1
            self._counts["client_disconnected"] += 1
            entry["outcome"] = "client_disconnected"
            if accepted is not None:
                try:
                    self._accepted.remove(accepted)
                except ValueError:
                    pass
            self._cond.notify_all()

    def _finish(
        self,
        handler: _Handler,
        outcome: str,
        status: int,
        data: Any,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        errors: list[Error] | None = None,
        message_id: str | None = None,
        accepted: dict[str, Any] | None = None,
    ) -> None:
        """Record the request, then answer; retract the record if the client is gone."""
        if data is None:
            payload, ctype = b"", None
        else:
            payload, ctype = _body_bytes(data)
        all_headers = dict(headers or {})
        if ctype and not any(k.lower() == "content-type" for k in all_headers):
            all_headers["Content-Type"] = ctype
        if handler._client_gone():
            self._record(
                handler,
                "client_disconnected",
                status,
                body=body,
                errors=errors,
                message_id=message_id,
            )
            handler.close_connection = True
            return
        entry = self._record(
            handler,
            outcome,
            status,
            body=body,
            errors=errors,
            message_id=message_id,
            accepted=accepted,
        )
        try:
            handler._send(status, all_headers, payload)
        except _ClientGone:
            self._retract(entry, accepted)

    def _next_script(self) -> _Scripted | None:
        with self._cond:
            return self._scripts.popleft() if self._scripts else None

    def _handle_mail_send(self, handler: _Handler) -> None:
        try:
            raw = handler._read_body()
        except _BodyError as exc:
            handler._finish_rejected(exc.status, exc.message, None)
            return
        scripted = self._next_script()
        if scripted is not None:
            if scripted.delay:
                # _finish() notices a client that left meanwhile and records it as such.
                handler._wait(scripted.delay, self._stopping)
            if scripted.drop:
                handler.close_connection = True
                self._record(handler, "dropped", None, body=_parse_json_or_none(raw))
                return
            if scripted.status is not None:
                self._answer_scripted(handler, scripted, raw)
                return
        self._answer_normally(handler, raw)

    def _answer_scripted(self, handler: _Handler, scripted: _Scripted, raw: bytes) -> None:
        status = scripted.status
        assert status is not None
        headers = dict(scripted.headers)
        if status == 429:
            lower = {k.lower() for k in headers}
            defaults = {
                **RATE_LIMIT_DEFAULTS,
                "X-RateLimit-Reset": str(int(time.time()) + 1),
            }
            for name, value in defaults.items():
                if name.lower() not in lower:
                    headers[name] = value
        data = scripted.body
        if data is None and status >= 300:
            phrase = "too many requests" if status == 429 else _phrase(status)
            data = _errors_body(_error(phrase))
        body = _parse_json_or_none(raw)
        self._finish(handler, "scripted", status, data, headers=headers, body=body)

    def _answer_normally(self, handler: _Handler, raw: bytes) -> None:
        auth = handler.headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key or key == "None":
            message = (
                "authorization required"
                if not auth
                else "The provided authorization grant is invalid, expired, or revoked"
            )
            errors = [_error(message)]
            self._finish(
                handler,
                "rejected",
                401,
                _errors_body(*errors),
                body=_parse_json_or_none(raw),
                errors=errors,
            )
            return

        body, errors = _decode_json(raw, handler.headers.get("Content-Encoding", ""))
        if not errors:
            errors = validate_mail(body, schema_path=self._schema_path)
        if errors:
            self._finish(handler, "rejected", 400, _errors_body(*errors), body=body, errors=errors)
            return

        sandbox = is_sandbox(body)
        status = 200 if sandbox else 202
        message_id = None if sandbox else secrets.token_urlsafe(16)
        accepted = {
            "time": time.time(),
            "body": body,
            "headers": {k.lower(): v for k, v in handler.headers.items()},
            "message_id": message_id,
            "status": status,
            "sandbox": sandbox,
        }
        self._finish(
            handler,
            "accepted",
            status,
            None,
            headers={} if sandbox else {"X-Message-Id": message_id or ""},
            body=body,
            message_id=message_id,
            accepted=accepted,
        )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def _decode_json(raw: bytes, encoding: str) -> tuple[Any, list[Error]]:
    if encoding.strip().lower() == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return None, [_error("The request body could not be decompressed (gzip).")]
    if not raw:
        return None, [_error("The request body is empty; it must be a JSON object.")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [_error("The request body must be valid UTF-8.")]
    try:
        return json.loads(text), []
    except ValueError as exc:
        return None, [_error(f"The request body must be valid JSON: {exc}.")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake SendGrid server until killed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument(
        "--max-records",
        type=int,
        default=10_000,
        help="keep at most this many recorded requests/mails in memory (counters are exact)",
    )
    args = parser.parse_args(argv)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    server = SendGridServer(args.host, args.port, max_records=args.max_records).start()
    print(server.url, flush=True)
    try:
        while not done.wait(0.1):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
