"""Gunicorn settings of the web process; gunicorn loads this file from the working directory.

The worker model is here rather than on the Procfile's command line so it can be changed
without editing anything: GUNICORN_CMD_ARGS overrides this file (the command line would not
let it). gthread 2x4 copes with slow clients when gunicorn is exposed directly; behind a
buffering proxy `GUNICORN_CMD_ARGS="-k sync -w 4"` measured more throughput and a lower p99
here (README, Speed). WEB_CONCURRENCY sets the number of processes.
"""

import os

bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
control_socket_disable = True  # gunicorn >= 25; older versions ignore unknown settings


def post_worker_init(worker: object) -> None:
    """Each web process logs as its app's LOG_FORMAT says (receiver/logs.py), as the workers
    do. The app is loaded by now; its settings are the ones create_app checked."""
    from receiver.logs import configure

    settings = getattr(getattr(worker, "wsgi", None), "config", {}).get("RECEIVER")
    configure(getattr(settings, "LOG_FORMAT", "json"), getattr(settings, "LOG_LEVEL", "info"))
