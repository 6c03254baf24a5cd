"""Gunicorn settings of the web process, loaded as a module (`receiver-web` passes
`-c python:receiver.processes.gunicorn_settings`), so they hold from any working directory.

The worker model is here rather than on the Procfile's command line so it can be changed
without editing anything: GUNICORN_CMD_ARGS overrides this file (the command line would not
let it). WEB_CONCURRENCY sets the number of processes.

gevent: every connection is a greenlet, not one of a few threads, so slow or silent clients
(a byte a second of headers, a trickled body, a connection that never speaks) cost a little
memory each and never hold back the deliveries behind them; gthread 2x4 was starved by 8 such
connections (docs/security.md, Slow clients). It also measured 15-25% more receive throughput here.
`keepalive` bounds the wait for a request's line and headers, on a new connection as on a
kept-alive one (gunicorn's async workers read them under a timeout of that many seconds; 0
would disable it, so it is never 0). Behind a buffering proxy, which delivers whole requests,
`GUNICORN_CMD_ARGS="-k sync -w 4"` measured well too (docs/security.md).
"""

import os

bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = 1000  # per process: open connections, slow ones included
keepalive = 5  # seconds for a request's line and headers to arrive (see above)
control_socket_disable = True  # gunicorn >= 25; older versions ignore unknown settings


def post_worker_init(worker: object) -> None:
    """Each web process logs as its app's LOG_FORMAT says (receiver/logs.py), as the workers
    do. The app is loaded by now; its settings are the ones create_app checked."""
    from receiver.logs import configure

    settings = getattr(getattr(worker, "wsgi", None), "config", {}).get("RECEIVER")
    configure(getattr(settings, "LOG_FORMAT", "json"), getattr(settings, "LOG_LEVEL", "info"))
