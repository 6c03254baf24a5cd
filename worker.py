"""The worker process: RQ jobs (events, notices), RQ's scheduler, and the sweeper.

`python -u worker.py` reads every setting from the environment. It uses RQ's SimpleWorker,
which runs tasks in-process instead of forking per task (3x the throughput here; see the
README's Speed section), so templates and the HTTP client are built once.
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
from receiver.pipeline.runtime import Runtime, build
from receiver.pipeline.sweeper import sweep
from receiver.store.connection import RQ_WORKER_TTL

SWEEP_INTERVAL_SECONDS = 30.0


def _sweep_forever(rt: Runtime, stop: threading.Event, interval: float) -> None:
    log = logging.getLogger("receiver.sweeper")
    while not stop.wait(interval):
        try:
            events, notices = sweep(rt, interval=interval)
            if events or notices:
                record(log, "sweep", logging.WARNING, events=events, notices=notices)
        except Exception:  # a failed sweep is retried at the next tick; the worker goes on
            log.exception("sweep failed")


def main(argv: list[str] | None = None) -> None:
    """Build the runtime from the environment and work until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--sweep-interval", type=float, default=SWEEP_INTERVAL_SECONDS)
    args = parser.parse_args(argv)
    cfg = load_config()
    configure_logs(cfg.LOG_FORMAT, cfg.LOG_LEVEL)
    rt = build(cfg)
    tasks.install(rt)
    stop = threading.Event()
    sweeper = threading.Thread(
        target=_sweep_forever, args=(rt, stop, args.sweep_interval), daemon=True
    )
    sweeper.start()
    worker = SimpleWorker(
        [rt.queue],
        connection=rt.redis,
        serializer=rt.queue.serializer,
        worker_ttl=RQ_WORKER_TTL,
    )
    try:
        worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
    finally:
        stop.set()


if __name__ == "__main__":
    main()
