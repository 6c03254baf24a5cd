"""Two web masters and three workers on one Redis, as a deployment scales out (issue 12).

Real processes on the test session's Redis: the Procfile's gunicorn twice, on two ports, and
three `worker.py`, each with its own scheduler and sweeper threads. What is checked is what a
user would notice, counted from the records, the SendGrid stand-in and the workers' logs:

- Deliveries split across both masters, many of them one event racing to both at once: one
  2xx-new (202) per event, every event stored once, processed once and mailed once.
- SendGrid's 429s put the throttled emails' retries in RQ's scheduled registry a second or
  two ahead; three scheduler threads compete to move them. Each retry runs once: every run
  of a send is one SendGrid request (a retry moved twice would be a run without one).
- Events whose jobs were lost, with three workers sweeping twice a second: each is
  re-queued once (one job in the queue per event, one count in the sweep lines), then
  processed and mailed once.

Nothing is timed: waits are bounds that only end a broken test, and each assertion is made
once the work is finished (queues and registries empty, every record at rest).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from receiver.ingest.inbox import task_id_for
from receiver.store import keys
from receiver.store.embedded import free_port
from tests.events import charge_succeeded, payer
from tests.processes import deliver_body, start_web, start_worker, stop, wait_until
from tests.signing import body_of

# Five processes on two cores: nothing else runs beside them (`make test`).
pytestmark = pytest.mark.alone

EVENTS_QUEUE = "events"
NOTICES_QUEUE = "events-notices"
DRAINED = 180  # bound on the backlog's drain: a loaded 2-core box, the whole suite around it
PAYERS = 40


class Processes:
    """The processes one test starts, each stopped when it ends (kept for their logs)."""

    def __init__(self, config: dict[str, Any], where: Path) -> None:
        self.config = config
        self.where = where
        self.procs: list[Popen[bytes]] = []
        self.worker_logs: list[Path] = []

    def web(self) -> int:
        port = free_port()
        self.procs.append(start_web(self.config, port, self.where / f"web-{port}.log"))
        return port

    def worker(self, *args: str) -> Popen[bytes]:
        log = self.where / f"worker-{len(self.worker_logs)}.log"
        self.worker_logs.append(log)
        proc = start_worker(self.config, log, *args)
        self.procs.append(proc)
        return proc

    def lines(self, msg: str = "", logger: str = "") -> list[dict[str, Any]]:
        """The workers' JSON log lines saying `msg`, or written by `logger`."""
        found = []
        for log in self.worker_logs:
            for line in log.read_text(errors="replace").splitlines():
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and (doc.get("msg") == msg or doc.get("logger") == logger):
                    found.append(doc)
        return found

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            stop(proc)


@pytest.fixture
def procs(redis: Any, sendgrid: Any, config: dict[str, Any], tmp_path: Path) -> Iterator[Processes]:
    """Requested after Redis and SendGrid, so its processes stop before those are emptied."""
    started = Processes(config, tmp_path)
    try:
        yield started
    finally:
        started.stop()


def deliveries(port: int, body: bytes) -> list[int | None]:
    """One delivery as 1099Policy makes it: again on no answer (a few times), as its retries
    would; every answer, in order."""
    answers: list[int | None] = []
    for _ in range(4):
        answers.append(deliver_body(port, body, timeout=30))
        if answers[-1] is not None:
            break
    return answers


def race(ports: list[int], body: bytes) -> list[int | None]:
    """The same event to every port at once (released together)."""
    gate = threading.Barrier(len(ports))
    answers: list[list[int | None]] = [[] for _ in ports]

    def one(n: int) -> None:
        gate.wait(10)
        answers[n] = deliveries(ports[n], body)

    lanes = [threading.Thread(target=one, args=(n,)) for n in range(len(ports))]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join(180)
    return [a for each in answers for a in each]


def charge(n: int, prefix: str) -> tuple[str, bytes]:
    """Invoice `prefix`_n and its signed-to-be body, paid by one of many contractors (with one
    payer, the workers' coverage transactions WATCH the same keys and keep retrying)."""
    invoice = f"{prefix}_{n}"
    return invoice, body_of(charge_succeeded(invoice, payer(n, PAYERS, "many")))


def stored_event(invoice: str) -> str:
    return keys.event("1099policy", f"ev_paid_{invoice}")


def busy(redis: Any, events: list[str]) -> list[str]:
    """What is not at rest yet: queued, scheduled or running jobs, unfinished events or
    notices (nothing when every event is done and every notice finished)."""
    found = []
    for name in (EVENTS_QUEUE, NOTICES_QUEUE):
        if redis.llen(f"rq:queue:{name}"):
            found.append(f"queued on {name}")
        for registry in (ScheduledJobRegistry, StartedJobRegistry):
            jobs = registry(name, connection=redis).get_job_ids(cleanup=False)
            if jobs:
                found.append(f"{registry.__name__} of {name}: {jobs[:3]}")
    for pending in (keys.EVENTS_PENDING, keys.NOTICES_PENDING):
        if redis.zcard(pending):
            found.append(f"{pending}: {redis.zrange(pending, 0, 2)}")
    pipe = redis.pipeline(transaction=False)
    for key in events:
        pipe.hget(key, "status")
    undone = [key for key, status in zip(events, pipe.execute(), strict=True) if status != b"done"]
    if undone:
        found.append(f"{len(undone)} events not done: {undone[:3]}")
    return found


class LockWatch:
    """Samples the scheduler locks' holders from a thread until stopped."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.seen: dict[str, list[str]] = {EVENTS_QUEUE: [], NOTICES_QUEUE: []}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.02):
            for name, holders in self.seen.items():
                holder = self.redis.get(keys.scheduler_lock(name))
                if holder is not None and (not holders or holders[-1] != holder.decode()):
                    holders.append(holder.decode())

    def stop(self) -> dict[str, list[str]]:
        self.done.set()
        self.thread.join(10)
        return self.seen


def test_two_masters_three_workers_one_email_per_event_and_each_retry_run_once(
    procs, redis, sendgrid, config
):
    # The sweeper stays out of the way (its default), so every run of a send is the event
    # task's or a scheduled retry's, moved by a scheduler thread.
    config.update(SWEEP_AFTER_SECONDS="300")
    began = time.monotonic()
    workers = [procs.worker("--sweep-interval", "1") for _ in range(3)]
    ports = [procs.web(), procs.web()]
    throttled = 12
    sendgrid.script(*[("status", 429)] * throttled)  # the first sends: retry in a second or two
    watch = LockWatch(redis)

    bodies = dict(charge(n, "in_many") for n in range(120))
    invoices = list(bodies)

    def send(n: int) -> list[int | None]:
        inv = invoices[n]
        if n % 3 == 0:  # a duplicate racing across the two masters
            return race(ports, bodies[inv])
        answers = deliveries(ports[n % 2], bodies[inv])
        if n % 5 == 0:  # a redelivery, after the first was answered, to the other master
            answers += deliveries(ports[(n + 1) % 2], bodies[inv])
        return answers

    with ThreadPoolExecutor(8) as pool:
        answers = dict(zip(invoices, pool.map(send, range(len(invoices))), strict=True))
    events = [stored_event(inv) for inv in invoices]
    sent = time.monotonic()
    settled = wait_until(lambda: not busy(redis, events), timeout=DRAINED)
    holders = watch.stop()
    rested = time.monotonic()

    # Every event: answered 2xx, one 202 (unless an answer was lost to a timeout), stored once
    # with the others counted as its duplicates.
    for inv, got in answers.items():
        assert set(got) - {None} <= {200, 202} and got[-1] in (200, 202), (inv, got)
        if None not in got:
            assert got.count(202) == 1, (inv, got)
            assert redis.hget(stored_event(inv), "duplicates") == str(len(got) - 1).encode()
    assert len(list(redis.scan_iter("event:1099policy:*", count=1000))) == len(invoices)
    assert settled, busy(redis, events)

    # Processed once each, by whichever worker.
    processed = Counter(
        line["event_id"] for line in procs.lines("event processed") if line["outcome"] == "done"
    )
    assert processed == Counter(f"ev_paid_{inv}" for inv in invoices)

    # One email per event, and every run of a send was one SendGrid request.
    mailed = Counter(m["body"]["custom_args"]["notice_record"] for m in sendgrid.accepted)
    assert len(mailed) == len(invoices) and set(mailed.values()) == {1}
    requests = sendgrid.requests
    asked = Counter(r["body"]["custom_args"]["notice_record"] for r in requests)
    runs = Counter(line["record_id"] for line in procs.lines(logger="receiver.delivery.sending"))
    retried = {
        r["body"]["custom_args"]["notice_record"] for r in requests if r["outcome"] == "scripted"
    }
    assert len([r for r in requests if r["outcome"] == "scripted"]) == throttled
    assert retried and retried <= set(mailed)
    assert runs == asked, {
        rid: (runs[rid], asked[rid])
        for rid in runs.keys() | asked.keys()
        if runs[rid] != asked[rid]
    }

    # Each scheduler lock was held by one of these workers at a time: the holder changes only
    # when its lock runs out (a holder stalled for seconds), so none is seen twice. Without
    # the lock, every thread "held" it and the holder changed at every tick.
    pids = {str(w.pid) for w in workers}
    for name, seen in holders.items():
        assert seen and {h.split(":")[1] for h in seen} <= pids, (name, seen, pids)
        assert len(seen) == len(set(seen)), (name, seen)
    print(
        f"{sum(len(a) for a in answers.values())} deliveries of {len(invoices)} events, "
        f"{len(sendgrid.accepted)} emails, {len(retried)} throttled and retried; scheduler "
        f"lock holders in turn: { {n: len(s) for n, s in holders.items()} }; started and "
        f"delivered in {sent - began:.1f} s, at rest {rested - sent:.1f} s later"
    )
    assert [w.poll() for w in workers] == [None] * 3


def test_three_sweepers_recover_each_lost_job_once(procs, redis, sendgrid, config):
    config.update(SWEEP_AFTER_SECONDS="1")
    began = time.monotonic()
    port = procs.web()
    bodies = dict(charge(n, "in_lost") for n in range(100))
    invoices = list(bodies)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda inv: deliver_body(port, bodies[inv], 30), invoices))
    assert set(answers) == {202}
    # Every job is lost (a Redis failover that dropped the queue, an operator clearing it).
    job_ids = {task_id_for(stored_event(inv)) for inv in invoices}
    assert set(x.decode() for x in redis.lrange("rq:queue:events", 0, -1)) == job_ids
    redis.delete("rq:queue:events", *(f"rq:job:{j}" for j in job_ids))

    # Three workers of the notices queue only: they sweep, and nothing takes the events'
    # jobs off the events queue, so what the sweeps queued stays there to be counted.
    stranded = time.monotonic()
    sweepers = [procs.worker("--queues", "notices", "--sweep-interval", "0.5") for _ in range(3)]

    def queued() -> Counter[str]:
        return Counter(x.decode() for x in redis.lrange("rq:queue:events", 0, -1))

    assert wait_until(lambda: set(queued()) >= job_ids, timeout=60), len(queued())
    # Then at least one more sweep over every event: each is seen with its job waiting.
    after = time.time()
    assert wait_until(
        lambda: redis.zrange(keys.EVENTS_PENDING, 0, 0, withscores=True)[0][1] > after, timeout=60
    )
    assert queued() == Counter(job_ids)
    swept = time.monotonic()
    sweeps = procs.lines("sweep")
    assert sum(s["events"] for s in sweeps) == len(invoices), sweeps
    assert sum(s["notices"] for s in sweeps) == 0

    # A worker of the events queue processes them: once each, one email each.
    procs.worker("--queues", "events", "--sweep-interval", "0.5")
    events = [stored_event(inv) for inv in invoices]
    assert wait_until(lambda: not busy(redis, events), timeout=DRAINED), busy(redis, events)
    print(
        f"{len(sweeps)} sweeps re-queued {len(invoices)} lost jobs; stranded in "
        f"{stranded - began:.1f} s, re-queued and seen waiting {swept - stranded:.1f} s "
        f"later, processed {time.monotonic() - swept:.1f} s after that"
    )
    processed = Counter(
        line["event_id"] for line in procs.lines("event processed") if line["outcome"] == "done"
    )
    assert processed == Counter(f"ev_paid_{inv}" for inv in invoices)
    mailed = Counter(m["body"]["custom_args"]["notice_record"] for m in sendgrid.accepted)
    assert len(mailed) == len(invoices) and set(mailed.values()) == {1}
    assert [w.poll() for w in sweepers] == [None] * 3
