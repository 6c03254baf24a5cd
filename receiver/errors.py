"""One exception tree for the service, each class mapped to an HTTP status and a short code.

Exceptions carry evidence (which header, which field) but never secrets, bodies or personal
data: their `detail` is what the sender sees in the JSON error body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .logs import record

log = logging.getLogger("receiver.requests")


class ReceiverError(Exception):
    """Root of every error the service answers with a JSON body."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str | None = None, **evidence: Any) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.evidence = evidence

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the client."""
        out: dict[str, Any] = {"error": self.code}
        if self.detail:
            out["detail"] = self.detail
        return out


class SignatureError(ReceiverError):
    """Missing, malformed or wrong signature, or a timestamp outside the tolerance; `problem`
    says which, for the log (the client sees only the detail): one of SIGNATURE_PROBLEMS."""

    status_code = 401
    code = "invalid_signature"

    def __init__(self, detail: str | None = None, problem: str = "malformed") -> None:
        if problem not in SIGNATURE_PROBLEMS:
            raise ValueError(f"unknown signature problem {problem!r}")
        super().__init__(detail, problem=problem)
        self.problem = problem


# no signature header; one that cannot be read; none of the secrets signed the body; signed
# outside WEBHOOK_TOLERANCE_SECONDS (a replay, or a clock that is off)
SIGNATURE_PROBLEMS = ("no_header", "malformed", "no_matching_secret", "timestamp_outside_tolerance")


class PayloadError(ReceiverError):
    """Authentic body that is not a usable event (not JSON, no type, bad field)."""

    status_code = 400
    code = "invalid_payload"


class BadRequest(ReceiverError):
    """A query parameter or request field the API cannot use."""

    status_code = 400
    code = "bad_request"


class Unauthorized(ReceiverError):
    """No valid credentials: a bearer token for the API, a console user for the console."""

    status_code = 401
    code = "unauthorized"
    challenge = 'Bearer realm="api"'  # RFC 6750; the console asks for Basic


class ConsoleUnauthorized(Unauthorized):
    """No known console user (HTTP Basic, or the trusted header of the SSO proxy)."""

    challenge = 'Basic realm="console", charset="UTF-8"'


class Forbidden(ReceiverError):
    """A known user asking for what their role does not allow (a viewer's action), or a
    console form posted without its CSRF token."""

    status_code = 403
    code = "forbidden"


class Conflict(ReceiverError):
    """The thing exists but is not in a state that allows the action (retry a sent notice)."""

    status_code = 409
    code = "conflict"


class UnsupportedMediaType(ReceiverError):
    """An ops API action not sent as JSON: a cross-site form could otherwise post it with
    the browser's remembered Basic credentials."""

    status_code = 415
    code = "unsupported_media_type"


class NotFound(ReceiverError):
    """The thing asked for does not exist."""

    status_code = 404
    code = "not_found"


class PayloadTooLarge(ReceiverError):
    """Body longer than WEBHOOK_MAX_BYTES; refused before it is read."""

    status_code = 413
    code = "payload_too_large"


class TooManyRequests(ReceiverError):
    """Too many failed console sign-ins from this address or for this name; refused before
    any password hash is computed, with the seconds to wait in Retry-After."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, detail: str | None = None, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(ReceiverError):
    """Storage (Redis) unreachable: the sender should retry later."""

    status_code = 503
    code = "unavailable"
    retry_after = 5


class NotConfigured(ReceiverError):
    """An optional endpoint whose setting is unset: 503, so the sender keeps retrying until
    an operator sets it, and monitoring sees a server-side fault rather than a wrong URL."""

    status_code = 503
    code = "not_configured"


class ConfigError(Exception):
    """A setting is missing or malformed; raised at start-up, never at request time."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"configuration error: {name} {problem}")
        self.name = name


WEBHOOK_PATH = "/webhooks/"  # /webhooks/<source>: 1099policy, platform, sendgrid


def register_error_handlers(app: Any, on_refusal: Callable[[str, str], None] | None = None) -> None:
    """Answer every error, ours or Flask's (404, 405, 413), with a JSON body; `on_refusal`
    hears (source, error code) of each of ours that a webhook endpoint gave (the metrics)."""
    from flask import jsonify, request
    from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

    def _ours(exc: ReceiverError) -> Any:
        # The code and status only: details may name a header, never hold data. A webhook's
        # refusal names its sender (`source=1099policy`) and, for a signature, which problem;
        # another endpoint's names its path. Ids of the sender are not known yet.
        webhook = request.path.startswith(WEBHOOK_PATH)
        source = request.path.removeprefix(WEBHOOK_PATH)
        where: dict[str, str] = {"source": source} if webhook else {"path": request.path}
        if isinstance(exc, SignatureError):
            where["problem"] = exc.problem
        record(
            log,
            "refused",
            logging.WARNING,
            reason=exc.code,
            http_status=exc.status_code,
            **where,
        )
        if webhook and on_refusal is not None:
            on_refusal(source, exc.code)
        response = jsonify(exc.body())
        response.status_code = exc.status_code
        if isinstance(exc, Unavailable | TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):  # a 401 names the scheme it wants
            response.headers["WWW-Authenticate"] = exc.challenge
        return response

    def _http(exc: HTTPException) -> Any:
        if isinstance(exc, RequestEntityTooLarge):
            return _ours(PayloadTooLarge())
        code = (exc.name or "error").lower().replace(" ", "_")
        response = jsonify({"error": code, "detail": exc.description})
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    app.register_error_handler(ReceiverError, _ours)
    app.register_error_handler(HTTPException, _http)
