"""(d) A backlog drain: N events queued while no worker runs, then the Procfile's workers.

The shape after an outage, a reconcile run or a bulk replay (issue 13). N signed charge
events (one email each) are POSTed through gunicorn while no worker runs; gunicorn is
stopped; then the Procfile's worker (`worker.py --burst`: two processes per CPU) starts and
drains everything. Reported: time to
the first email and to the last, measured from the workers' start (their start-up included)
at the SendGrid stand-in's clock, and events+emails per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis as redis_lib

from . import app as bench_app
from .load import charge_events, paced
from .notices import WORKER_DESC, _worker_argv, get_json, start_stand_in_and_web, worker_env
from .procs import Group, Proc
from .receive import RECEIVE

BACKLOG_QUEUE = "bench-backlog"


def backlog(
    group: Group,
    r: redis_lib.Redis,
    redis_url: str,
    n: int,
    processes: int | None = None,
    at: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The drain; `processes` overrides the worker's default (`--processes`), and `at`, when
    given, is called at "start" (an empty Redis), "accepted" and "drained" (bench/scaling.py
    measures Redis there)."""
    mark = at or (lambda _moment: None)
    r.flushall()
    started: list[Proc] = []
    try:
        sg_url, control, gunicorn, port = start_stand_in_and_web(
            group, redis_url, BACKLOG_QUEUE, started
        )
        events = charge_events(n, bench_app.TEN99_SECRET, tag=f"bl{int(time.time())}")
        mark("start")
        sent = paced("127.0.0.1", port, RECEIVE, events, rate=1000.0).sent
        queued = sum(1 for s in sent if s.status == 202)
        group.stop(gunicorn)
        mark("accepted")

        env = worker_env(redis_url, BACKLOG_QUEUE, sg_url)
        argv = _worker_argv(True) + ([] if processes is None else ["--processes", str(processes)])
        t0 = time.time()
        workers = [group.start("worker-backlog", argv, env)]
        started.extend(workers)
        codes = [w.wait(max(1.0, 600 - (time.time() - t0))) for w in workers]
        wall = time.time() - t0
        mark("drained")
        times = get_json(f"{control}/times")
        mails = sorted(m["time"] for m in times["mails"])
        first = mails[0] - t0 if mails else 0.0
        last = mails[-1] - t0 if mails else 0.0
        return {
            "events": n,
            "queued_202": queued,
            "workers": WORKER_DESC if processes is None else f"{processes} processes",
            "mails": len(mails),
            "first_email_s": round(first, 2),
            "last_email_s": round(last, 2),
            "workers_done_s": round(wall, 2),
            "events_per_s": round(len(mails) / last, 1) if last else 0.0,
            "verified": queued == n and len(mails) == n and all(c == 0 for c in codes),
        }
    finally:
        for proc in reversed(started):
            group.stop(proc)
