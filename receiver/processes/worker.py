"""The worker process: RQ jobs (events, notices), the due-job scheduler, and the sweeper.

`receiver-worker` (or the repository's `python -u worker.py`, a thin entry to `main`) reads
every setting from the environment. It uses RQ's SimpleWorker,
which runs tasks in-process instead of forking per task (3x the throughput here; see the
docs/performance.md), so templates and the HTTP client are built once.

One SimpleWorker uses at most one core, and less: part of each task is spent waiting for Redis
and SendGrid. The process runs WORKER_PROCESSES of them (default: two per CPU it may run on,
which drained a backlog about 1.2x faster than one per CPU here; `--processes` overrides), each
a forked child with its own runtime, under a small supervisor: a child that dies is started
again (after 1 s, doubling to 30 s while it keeps dying), a stop signal is passed on once to
every child (the first a warm stop, the next a cold one, as for a single RQ worker), and a
child whose supervisor died stops warm. Children run in their own process group, so a
terminal's Ctrl-C reaches them only through it.

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
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing import get_context
from multiprocessing.process import BaseProcess
from typing import Any

from receiver.config import Config, load_config
from receiver.logs import configure as configure_logs
from receiver.logs import record
from receiver.pipeline import tasks
from receiver.pipeline.reconcile import run_scheduled
from receiver.pipeline.runtime import Runtime, build
from receiver.pipeline.scheduler import DueJobMover, schedule_forever
from receiver.pipeline.sweeper import sweep
from receiver.store import format as data_format
from receiver.store.connection import Stopping, build_redis, stop_waiting
from receiver.store.format import DataFormatError
from receiver.store.workers import RQ_WORKER_TTL, ReceiverWorker

SWEEP_INTERVAL_SECONDS = 30.0
RECONCILE_TICK_SECONDS = 60.0  # how often a worker asks whether a reconcile run is due
RESTART_DELAYS = (1.0, 30.0)  # a dead child's restart delay: first, and the cap of doubling
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STEADY_SECONDS = 60.0  # a child that lived this long died for a new reason: delay starts over
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


class StoppableWorker(ReceiverWorker):
    """RQ's SimpleWorker whose stop signals also end the patient Redis client's waiting
    (store/connection.py `stop_waiting`): asked to stop while Redis is unreachable, RQ's own
    clean-up (its worker key, its registries) would otherwise retry until Redis came back."""

    def request_stop(self, signum: int, frame: Any) -> None:
        stop_waiting()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def request_force_stop(self, signum: int, frame: Any) -> None:
        stop_waiting()
        super().request_force_stop(signum, frame)


def _processes(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("0 (two per CPU) or more")
    return n


def _ttl(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("a whole number of seconds, 1 or more")
    return n


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--sweep-interval", type=float, default=SWEEP_INTERVAL_SECONDS)
    parser.add_argument(
        "--queues",
        type=_queue_kinds,
        default=list(QUEUE_KINDS),
        help="queues to work, in priority order (default: notices,events)",
    )
    parser.add_argument(
        "--worker-ttl",
        type=_ttl,
        default=RQ_WORKER_TTL,
        help=f"RQ's worker TTL in seconds (default {RQ_WORKER_TTL}): an idle worker heartbeats"
        " every TTL - 15 s (at least every 1 s) and counts as alive for twice the TTL after",
    )
    parser.add_argument(
        "--processes",
        type=_processes,
        default=None,
        help="worker processes (default: WORKER_PROCESSES; 0: two per CPU)",
    )
    return parser.parse_args(argv)


def process_count(configured: int) -> int:
    """`configured`, or with 0 two per CPU this process may run on (its affinity mask, which
    a container's cpuset narrows; a CPU quota does not: set WORKER_PROCESSES there). Two,
    because a task waits on Redis and SendGrid round trips for part of its time."""
    return configured or 2 * len(os.sched_getaffinity(0)) or 1


def main(argv: list[str] | None = None) -> None:
    """Build the runtime from the environment and work until stopped: in this process, or in
    several supervised ones."""
    args = _parse(argv)
    for stream in (sys.stdout, sys.stderr):  # a line at a time, as `python -u` did
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    cfg = load_config()
    configure_logs(cfg.LOG_FORMAT, cfg.LOG_LEVEL)
    try:  # before any task runs: data of a later release is not ours to touch
        data_format.ensure(build_redis(cfg, patient=True))
    except DataFormatError as exc:
        sys.exit(f"worker: {exc}")
    n = process_count(cfg.WORKER_PROCESSES if args.processes is None else args.processes)
    if n == 1:
        _work(cfg, args)
    else:
        sys.exit(_supervise(cfg, args, n))


def _die_with_parent(sig: int) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux; elsewhere a
    no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        pass


def _work(cfg: Config, args: argparse.Namespace) -> None:
    """One RQ SimpleWorker with its scheduler, sweeper and reconcile threads, until it stops."""
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
    worker = StoppableWorker(
        queues,
        connection=rt.redis,
        serializer=rt.queue.serializer,
        worker_ttl=args.worker_ttl,
    )
    try:
        worker.work(burst=args.burst, logging_level="WARNING")
    except Stopping:  # what RQ's clean-up left undone, the sweeper and RQ's TTLs redo
        record(logging.getLogger("receiver.worker"), "stopped with redis unreachable")
    finally:
        stop.set()
        try:
            mover.release()
        except Stopping:
            pass


def _child(cfg: Config, args: argparse.Namespace, parent: int) -> None:
    """A supervised worker process: its own process group, and a warm stop if orphaned."""
    os.setpgid(0, 0)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)  # until RQ's worker installs its own handlers
    _die_with_parent(signal.SIGTERM)  # a warm stop: the task in hand is finished
    if os.getppid() != parent:  # it died before the line above
        return
    _work(cfg, args)


def _supervise(cfg: Config, args: argparse.Namespace, n: int) -> int:
    """Run `n` worker processes until stopped (or, with --burst, until each has drained);
    return the exit code: the first non-zero of the children's, in burst mode."""
    log = logging.getLogger("receiver.worker")
    fork = get_context("fork")
    parent = os.getpid()
    signals: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def start() -> BaseProcess:
        proc = fork.Process(target=_child, args=(cfg, args, parent), daemon=False)
        proc.start()
        return proc

    children: list[BaseProcess | None] = [start() for _ in range(n)]
    started = [time.monotonic()] * n
    record(log, "worker processes", processes=n)
    delays = [RESTART_DELAYS[0]] * n
    restart_at: list[float | None] = [None] * n
    forwarded = 0
    code = 0
    while any(c is not None and c.is_alive() for c in children) or (
        not signals and not args.burst and any(t is not None for t in restart_at)
    ):
        for signum in signals[forwarded:]:
            for c in children:
                if c is not None and c.pid is not None and c.is_alive():
                    os.kill(c.pid, signal.SIGTERM if signum == signal.SIGINT else signum)
            forwarded += 1
        for i, c in enumerate(children):
            if c is None or c.is_alive():
                continue
            exitcode = c.exitcode or 0
            code = code or (exitcode if exitcode > 0 else 1 if exitcode else 0)
            children[i] = None
            if not args.burst and not signals:
                record(log, "worker process died", logging.WARNING, exit_code=exitcode)
                if time.monotonic() - started[i] > STEADY_SECONDS:
                    delays[i] = RESTART_DELAYS[0]
                restart_at[i] = time.monotonic() + delays[i]
                delays[i] = min(delays[i] * 2, RESTART_DELAYS[1])
        for i, at in enumerate(restart_at):
            if at is not None and time.monotonic() >= at and not signals:
                children[i], restart_at[i], started[i] = start(), None, time.monotonic()
        time.sleep(0.2)
    return code if args.burst else 0
