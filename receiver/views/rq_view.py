"""RQ's own view of the queues, workers and jobs: the maintained `rq-dashboard` blueprint,
mounted at /admin/rq behind the console's users.

Its pages are read by any console user. Its actions (delete, requeue, empty, compact; one of
them, requeue-all, even answers GET) need the operator role and the `X-Requested-With` header
its own jQuery calls send: the dashboard has no CSRF token, and no cross-site form or image
can send that header. Its JavaScript is its own; the console's pages need none. It reads
through the app's own Redis client, never a URL of its own (`mount`).

Its pages get a bar back to the console at the top, and its queue list's intro paragraph (a
fixed 5em high, overlapping the table below it at phone width) its natural height
(`_way_back`: the dashboard's templates themselves are not changed).

Its pages get the console's headers (`_secure`): its templates insert job descriptions and
tracebacks into the page unescaped, so the Content-Security-Policy allows its own script
files and, by hash, the inline script blocks its templates rendered for this very page, and
nothing else (no inline event handler, no script from elsewhere; `eval` of strings, which its
template library needs). A job it cannot find is a
404, not a 500.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from flask import Flask, Response, abort, jsonify, request, url_for
from markupsafe import escape
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.serializers import JSONSerializer

from ..config import Config
from ..errors import Forbidden, NotFound
from .console_auth import authenticate, require_operator

PREFIX = "/admin/rq"
_ACTIONS = {
    "rq_dashboard.delete_job_view",
    "rq_dashboard.requeue_job_view",
    "rq_dashboard.requeue_all",
    "rq_dashboard.empty_queue",
    "rq_dashboard.compact_queue",
}


def _guard() -> None:
    authenticate()
    if (request.view_args or {}).get("instance_number", 0) != 0:
        abort(404)  # one Redis: the dashboard's other instance numbers name none
    if request.method != "GET" or request.endpoint in _ACTIONS:
        require_operator()
        if request.headers.get("X-Requested-With") != "XMLHttpRequest":
            raise Forbidden("the RQ dashboard's actions are sent by its own page only")


_BAR = (
    "<style>p.fixed.intro{{height:auto}}"
    ".console-back{{background:#243b53;padding:8px 16px;font:15px -apple-system,'Segoe UI',"
    "Helvetica,Arial,sans-serif}}.console-back a{{color:#fff;margin-right:14px}}</style>"
    '<nav class="console-back"><a href="{events}">&larr; Operator\'s console</a>'
    '<a href="{health}">Health</a></nav>'
)


def _way_back(response: Response) -> Response:
    """The dashboard's HTML pages, with the console's bar at the top of the body."""
    if response.mimetype != "text/html" or response.direct_passthrough:
        return response
    page = response.get_data(as_text=True)
    if "<body>" in page:
        bar = _BAR.format(
            events=escape(url_for("console.events_page")),
            health=escape(url_for("console.health_page")),
        )
        response.set_data(page.replace("<body>", "<body>" + bar, 1))
    return response


_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
}
# 'unsafe-eval': underscore compiles the dashboard's own <script type="text/template"> blocks
# with `new Function`; the data it fills them with is interpolated, never evaluated.
_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-eval'{hashes}; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _secure(response: Response) -> Response:
    """The console's headers on every dashboard answer (see the module docstring)."""
    response.headers.update(HEADERS)
    hashes = ""
    if response.mimetype == "text/html" and not response.direct_passthrough:
        page = response.get_data(as_text=True)
        for block in _INLINE_SCRIPT.findall(page):
            digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
            hashes += f" 'sha256-{digest}'"
    response.headers["Content-Security-Policy"] = _CSP.format(hashes=hashes)
    return response


def _no_such_job(exc: NoSuchJobError) -> tuple[Response, int]:
    missing = NotFound("no such job")
    return jsonify(missing.body()), missing.status_code


def label(cfg: Config) -> str:
    """What the dashboard's instance selector shows: where Redis is, without a password or the
    URL's query (the selector is disabled with one instance, but the page holds it)."""
    if cfg.REDIS_SENTINELS:
        return f"sentinel: {cfg.REDIS_SENTINEL_MASTER}"
    url = urlsplit(cfg.REDIS_URL)
    where = url.path if url.scheme == "unix" else f"{url.hostname}:{url.port or 6379}{url.path}"
    return f"{url.scheme}://{where}"


def mount(app: Flask, redis: Redis, cfg: Config) -> None:
    """Register the dashboard on `app` (only when the console is on), reading through `redis`,
    the app's own client (store/connection.py's build_redis): the same server, password, TLS
    and Sentinel as the console's pages, and the same primary after a failover."""
    import rq_dashboard  # type: ignore[import-untyped]
    from rq_dashboard.web import config, push_rq_connection  # type: ignore[import-untyped]

    config.serializer = JSONSerializer  # our jobs are JSON (store/connection.py)
    # Every view of the dashboard reads `current_app.redis_conn`. Its own set-up
    # (`setup_rq_connection`) and its per-request hook (`push_rq_connection`) build a client
    # from RQ_DASHBOARD_REDIS_URL instead, the hook anew on every request, with no TLS
    # options and no Sentinel but its own URL scheme; the hook is left out of this app's
    # hooks (the blueprint itself is not changed) and the URL setting is only a label.
    app.redis_conn = redis  # type: ignore[attr-defined]
    app.config["RQ_DASHBOARD_REDIS_URL"] = (label(cfg),)
    # The guard: the dashboard's requests only (not every request's, the webhooks' included),
    # and before the dashboard's own hooks, which registering the blueprint appends after it.
    app.before_request_funcs.setdefault(rq_dashboard.blueprint.name, []).insert(0, _guard)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    app.after_request_funcs.setdefault(rq_dashboard.blueprint.name, []).extend(
        (_secure, _way_back)  # Flask runs them last first: the bar, then the headers
    )
    # Flask's spec is a defaultdict of defaultdicts: indexing makes the blueprint's entries as
    # Flask's own lookups (by status code, then None) expect them.
    app.error_handler_spec[rq_dashboard.blueprint.name][None][NoSuchJobError] = _no_such_job
    hooks = app.before_request_funcs[rq_dashboard.blueprint.name]
    if push_rq_connection not in hooks:  # a new rq-dashboard: see how it connects now
        raise RuntimeError("rq-dashboard's push_rq_connection hook is gone; see rq_view.py")
    hooks.remove(push_rq_connection)
