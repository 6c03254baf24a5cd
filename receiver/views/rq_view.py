"""RQ's own view of the queues, workers and jobs: the maintained `rq-dashboard` blueprint,
mounted at /admin/rq behind the console's users.

Its pages are read by any console user. Its actions (delete, requeue, empty, compact; one of
them, requeue-all, even answers GET) need the operator role and the `X-Requested-With` header
its own jQuery calls send: the dashboard has no CSRF token, and no cross-site form or image
can send that header. Its JavaScript is its own; the console's pages need none.
"""

from __future__ import annotations

from flask import Flask, request
from rq.serializers import JSONSerializer

from ..errors import Forbidden
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
    if request.blueprint != "rq_dashboard":
        return
    authenticate()
    if request.method != "GET" or request.endpoint in _ACTIONS:
        require_operator()
        if request.headers.get("X-Requested-With") != "XMLHttpRequest":
            raise Forbidden("the RQ dashboard's actions are sent by its own page only")


def mount(app: Flask, redis_url: str) -> None:
    """Register the dashboard on `app` (only when the console is on)."""
    import rq_dashboard  # type: ignore[import-untyped]
    from rq_dashboard.web import config, setup_rq_connection  # type: ignore[import-untyped]

    config.serializer = JSONSerializer  # our jobs are JSON (store/connection.py)
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    setup_rq_connection(app)
    app.before_request(_guard)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
