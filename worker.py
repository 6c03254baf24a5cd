"""The worker process: RQ jobs (events, notices), the due-job scheduler, and the sweeper.

`python -u worker.py` reads every setting from the environment. It uses RQ's SimpleWorker,
which runs tasks in-process instead of forking per task (3x the throughput here; see the
README's Speed section), so templates and the HTTP client are built once.

It listens on the notices queue before the events queue (RQ dequeues its queues in order), so
an event backlog never holds back emails already decided. `--queues notices` or `--queues
events` dedicates a worker to one of them; keep at least one worker on each (the events queue
also holds jobs queued by releases before the notices queue existed).

Its Redis client is patient (store/connection.py): during a Redis restart or failover every
command waits, retrying with backoff, and the process carries on when Redis is back, saying so
once in the log each way. Scheduled jobs are moved onto their queues by every worker's
scheduler thread under one short lock (pipeline/scheduler.py), not by RQ's forked scheduler.
"""

from __future__ import annotations

import argparse
import logging
import threading

from rq import SimpleWorker

from receiver.config import load_config
from receiver.logs import configure as configure_logs
from receiver.logs import record
from receiver.pipeline import tasks
from receiver.pipeline.reconcile import run_scheduled
from receiver.pipeline.runtime import Runtime, build
from receiver.pipeline.scheduler import DueJobMover, schedule_forever
from receiver.pipeline.sweeper import sweep
from receiver.store.connection import RQ_WORKER_TTL

SWEEP_INTERVAL_SECONDS = 30.0
RECONCILE_TICK_SECONDS = 60.0  # how often a worker asks whether a reconcile run is due
QUEUE_KINDS = ("notices", "events")


def _queue_kinds(value: str) -> list[str]:
    """`notices,events` -> the kinds in that order; each at most once, none unknown."""
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    if not kinds or len(set(kinds)) != len(kinds) or not set(kinds) <= set(QUEUE_KINDS):
        raise argparse.ArgumentTypeError(f"a comma-separated list of {', '.join(QUEUE_KINDS)}")
    return kinds


def _sweep_forever(rt: Runtime, stop: threading.Event, interval: float) -> None:
    log = logging.getLogger("receiver.sweeper")
    while not stop.wait(interval):
        try:
            events, notices = sweep(rt, interval=interval)
            if events or notices:
                record(log, "sweep", logging.WARNING, events=events, notices=notices)
        except Exception:  # a failed sweep is retried at the next tick; the worker goes on
            log.exception("sweep failed")


def _reconcile_forever(rt: Runtime, stop: threading.Event) -> None:
    """Reconcile with 1099Policy's events list now and then (pipeline/reconcile.py)."""
    log = logging.getLogger("receiver.reconcile")
    while not stop.wait(RECONCILE_TICK_SECONDS):
        try:
            run_scheduled(rt)
        except Exception as exc:  # the API or Redis: the next tick after the lock tries again
            record(log, "reconcile", logging.WARNING, outcome="failed", error=type(exc).__name__)


def main(argv: list[str] | None = None) -> None:
    """Build the runtime from the environment and work until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--sweep-interval", type=float, default=SWEEP_INTERVAL_SECONDS)
    parser.add_argument(
        "--queues",
        type=_queue_kinds,
        default=list(QUEUE_KINDS),
        help="queues to work, in priority order (default: notices,events)",
    )
    args = parser.parse_args(argv)
    cfg = load_config()
    configure_logs(cfg.LOG_FORMAT, cfg.LOG_LEVEL)
    rt = build(cfg, patient=True)
    tasks.install(rt)
    stop = threading.Event()
    sweeper = threading.Thread(
        target=_sweep_forever, args=(rt, stop, args.sweep_interval), daemon=True
    )
    sweeper.start()
    threading.Thread(target=_reconcile_forever, args=(rt, stop), daemon=True).start()
    by_kind = {"notices": rt.notice_queue, "events": rt.queue}
    queues = [by_kind[kind] for kind in args.queues]
    mover = DueJobMover(rt, queues)
    if args.burst:
        mover.tick()  # what is due now, once, as RQ's scheduler did for a burst
    else:
        threading.Thread(target=schedule_forever, args=(mover, stop), daemon=True).start()
    worker = SimpleWorker(
        queues,
        connection=rt.redis,
        serializer=rt.queue.serializer,
        worker_ttl=RQ_WORKER_TTL,
    )
    try:
        worker.work(burst=args.burst, logging_level="WARNING")
    finally:
        stop.set()
        mover.release()


if __name__ == "__main__":
    main()
