"""RQ's entry points, and the one place a worker process keeps its runtime.

RQ runs a task by importing the dotted path stored in its job hash and calling it with JSON
arguments, so a task cannot be handed objects. The worker process (processes/worker.py)
calls `install(build(cfg))` before it starts working; a process that runs tasks without doing
so (`rq worker` started by hand) builds the runtime from the environment on first use. Every
other module receives what it needs as typed arguments.

The dotted paths below are stored in Redis with every queued and scheduled job. Renaming one
strands those jobs: a rename comes with a data format upgrade that rewrites the stored jobs
(store/format.py, as format 2 did for the paths of releases before 0.2.0).
"""

from __future__ import annotations

from rq import get_current_job

from ..config import load_config
from ..coverage.push import send as push
from ..ingest.inbox import key_for_task
from .processing import process
from .runtime import Runtime, build

_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    """Make `runtime` the one tasks in this process use (None forgets it)."""
    global _current
    _current = runtime


def current() -> Runtime:
    """The installed runtime, built from the environment on first use if none was installed."""
    global _current
    if _current is None:
        _current = build(load_config())
    return _current


def process_event(key: str | None = None) -> str:
    """Process the event stored at `key` (by default, the one the running job's id names);
    return its final status (pipeline/processing.py)."""
    job = get_current_job()
    if key is None:
        if job is None:
            raise RuntimeError("process_event needs a key outside an RQ job")
        key = key_for_task(job.id)
    retries_left = job is not None and (job.retries_left or 0) > 0
    next_try = job.get_retry_interval() if job is not None and retries_left else None
    return process(current(), key, retries_left, next_try_in=next_try)


def send_notice(rid: str) -> str:
    """Send one notice record (delivery/sending.py); return the state it ends in."""
    return current().sender.send(rid)


def push_coverage(msg_id: str, body: str) -> str:
    """Push one queued coverage change to PLATFORM_CALLBACK_URL (coverage/push.py)."""
    rt = current()
    cfg = rt.cfg
    if not cfg.PLATFORM_CALLBACK_URL or not cfg.PLATFORM_CALLBACK_SECRET:
        return "skipped"  # the callback was switched off after the change was queued
    # Signed at the time of sending: the platform checks it against its own clock.
    status = push(cfg.PLATFORM_CALLBACK_URL, cfg.PLATFORM_CALLBACK_SECRET, msg_id, body, rt.clock())
    return f"delivered {status}"


def lookup_quote(quote_id: str) -> str:
    """Find the contractor of coverage events parked under `quote_id` in 1099Policy's API and
    apply them (pipeline/quotes.py); an API failure raises, and RQ retries with backoff."""
    return current().quotes.resolve(quote_id)


def alert_rep(rid: str) -> int:
    """Alert the rep about the suppressed address of contractor notice `rid`."""
    return current().alerts.alert(rid)
