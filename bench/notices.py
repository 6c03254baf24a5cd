"""Part 2: notice throughput against an RQ no-op baseline, and webhook-to-SendGrid latency.

(a) Baseline: M no-op jobs (`bench.jobs.noop`, JSON serializer) drained by the Procfile's
    `python worker.py --burst` (two SimpleWorker processes per CPU): the service's own worker
    (its runtime, sweeper thread and scheduler), so the baseline is RQ's per-job cost in
    exactly the processes that send notices.
(b) Notices: M `payment_confirmation` records created with `NoticeRecords.create` (one Lua call
    each), drained by the same worker processes, each sending through the real `SendGridMailer`
    to the SendGrid stand-in started standalone (`tests/sendgrid_server.py`).
    jobs/s = finished jobs / (last ended_at - first started_at), as in the baselines doc, so
    worker start-up is excluded; the ratio notices/no-op is the figure to track.
(c) End to end: the bench app under gunicorn plus the Procfile's worker, long-running; K signed
    `invoice.charge_card_succeeded` deliveries at a paced rate; latency = the SendGrid
    stand-in's accept time of the mail minus the time the sender read its 202, matched by the
    mail's `notice_record` custom arg (via bench/sg_server.py, the same server class).

CPU of the workers (rusage of the reaped burst processes), redis-server and the SendGrid
stand-in is recorded so that a low ratio can be attributed.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import statistics
import time
import urllib.request
from typing import Any

import redis as redis_lib
from rq import Queue, Worker
from rq.serializers import JSONSerializer
from rq.utils import utcparse

from receiver.clock import system_clock
from receiver.delivery.records import NoticeRecords, record_id
from receiver.delivery.samples import SAMPLE_CONTEXTS
from receiver.notices.contacts import Contact
from receiver.processes.worker import process_count
from receiver.store.connection import build_queue, notice_queue_name

from . import app as bench_app
from .load import charge_events, paced, percentile
from .procs import ROOT, VENV_BIN, CpuMeter, Group, Proc, free_port, wait_http
from .receive import RECEIVE, start_gunicorn

NOOP_QUEUE = "bench-noop"
NOTICE_QUEUE = "bench-notices"
E2E_QUEUE = "bench-e2e"
# The Procfile's worker: ONE `worker.py`, which runs two RQ SimpleWorkers per CPU (WORKER_PROCESSES
# unset, or as set in the environment) under its supervisor. WORKERS: how many processes that is.
WORKERS = process_count(int(os.environ.get("WORKER_PROCESSES") or 0))
WORKER_DESC = f"python worker.py --burst ({WORKERS} processes, RQ SimpleWorker)"


def worker_env(redis_url: str, queue: str, sendgrid_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "QUEUE_NAME": queue,
        "SENDGRID_API_KEY": "SG.bench",
        "SENDGRID_API_HOST": sendgrid_url,
        "TEN99POLICY_WEBHOOK_SECRETS": bench_app.TEN99_SECRET,
        "PLATFORM_WEBHOOK_SECRETS": bench_app.PLATFORM_SECRET,
        "EMAIL_FROM": bench_app.EMAIL_FROM,
        "PYTHONPATH": str(ROOT),
    }


def _worker_argv(burst: bool) -> list[str]:
    return [str(VENV_BIN / "python"), "-u", "worker.py"] + (["--burst"] if burst else [])


def start_sendgrid(group: Group, standalone: bool) -> tuple[Proc, str, str | None]:
    """The SendGrid stand-in in its own process; returns (proc, base url, control url)."""
    port = free_port()
    py = str(VENV_BIN / "python")
    if standalone:
        proc = group.start("sendgrid", [py, "tests/sendgrid_server.py", "--port", str(port)])
        control = None
    else:
        cport = free_port()
        proc = group.start(
            "sendgrid-e2e",
            [py, "bench/sg_server.py", "--port", str(port), "--control-port", str(cport)],
        )
        control = f"http://127.0.0.1:{cport}"
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/__stats", proc)
    return proc, url, control


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def job_span(r: redis_lib.Redis, queue: str) -> dict[str, Any]:
    """Finished/failed counts and first start -> last end over the queue's finished jobs."""
    q = Queue(queue, connection=r, serializer=JSONSerializer)
    ids = q.finished_job_registry.get_job_ids()
    failed = q.failed_job_registry.count
    starts, ends = [], []
    pipe = r.pipeline(transaction=False)
    for jid in ids:
        pipe.hmget(f"rq:job:{jid}", "started_at", "ended_at")
    for started, ended in pipe.execute() if ids else []:
        if started and ended:
            starts.append(utcparse(started.decode()).timestamp())
            ends.append(utcparse(ended.decode()).timestamp())
    span = (max(ends) - min(starts)) if starts else 0.0
    return {
        "finished": len(ids),
        "failed": failed,
        "left_in_queue": q.count,
        "span_s": round(span, 3),
        "jobs_per_s": round(len(starts) / span, 1) if span else 0.0,
    }


def job_stages(r: redis_lib.Redis, queue: str) -> dict[str, dict[str, float]]:
    """Where the end-to-end time goes, per job kind (event / notice), p50 and p99 in ms:
    created -> enqueued (non-zero only for jobs that waited in RQ's scheduler), enqueued ->
    started (queue wait) and started -> ended (the job itself). Over the events queue `queue`
    and its notices queue."""
    ids = []
    for name in (queue, notice_queue_name(queue)):
        q = Queue(name, connection=r, serializer=JSONSerializer)
        ids += q.finished_job_registry.get_job_ids()
    pipe = r.pipeline(transaction=False)
    for jid in ids:
        pipe.hmget(f"rq:job:{jid}", "created_at", "enqueued_at", "started_at", "ended_at")
    spans: dict[str, dict[str, list[float]]] = {}
    for jid, row in zip(ids, pipe.execute() if ids else [], strict=True):
        if not all(row):
            continue
        c, e, s, d = (utcparse(v.decode()).timestamp() for v in row)
        kind = "event_job" if jid.startswith("ev-") else "notice_job"
        into = spans.setdefault(kind, {"scheduled": [], "queued": [], "run": []})
        into["scheduled"].append(e - c)
        into["queued"].append(s - e)
        into["run"].append(d - s)
    out: dict[str, dict[str, float]] = {}
    for kind, parts in spans.items():
        for name, values in parts.items():
            values.sort()
            out.setdefault(kind, {})[f"{name}_p50"] = round(percentile(values, 50) * 1000, 1)
            out[kind][f"{name}_p99"] = round(percentile(values, 99) * 1000, 1)
    return out


def drain(
    group: Group,
    env: dict[str, str],
    meter_roots: dict[str, list[int]],
    timeout: float,
    tag: str,
) -> dict[str, Any]:
    """Run the Procfile's worker (burst) until the queues are empty; wall time and CPU."""
    meter = CpuMeter(meter_roots).start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    workers = [group.start(f"worker-{tag}", _worker_argv(True), env)]
    deadline = t0 + timeout
    codes = []
    for w in workers:
        codes.append(w.wait(max(0.1, deadline - time.monotonic())))
    wall = time.monotonic() - t0
    for w in workers:
        group.stop(w)  # no-op for exited workers; a stuck one is stopped here
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = meter.stop()
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu["workers"] = round(
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3
    )
    cpu["workers_sys"] = round(after.ru_stime - before.ru_stime, 3)
    ours = sum(v for k, v in cpu.items() if k != "machine" and not k.endswith("_sys"))
    ours += (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    cpu["other"] = round(cpu["machine"] - ours, 3)
    if any(c != 0 for c in codes):
        tails = "\n".join(
            f"--- {w.name} (exit {c})\n{w.tail()}" for w, c in zip(workers, codes, strict=True)
        )
        raise RuntimeError(f"burst workers did not finish cleanly within {timeout}s:\n{tails}")
    return {"wall_s": round(wall, 3), "cpu_s": cpu}


def enqueue_noops(r: redis_lib.Redis, m: int) -> float:
    q = Queue(NOOP_QUEUE, connection=r, serializer=JSONSerializer)
    t0 = time.monotonic()
    for start in range(0, m, 500):
        q.enqueue_many(
            [
                Queue.prepare_data("bench.jobs.noop", args=(i,), result_ttl=3600)
                for i in range(start, min(m, start + 500))
            ]
        )
    return time.monotonic() - t0


def _contact(email: str, i: int) -> Contact:
    return Contact(email=email, first_name="Contractor", last_name=str(i))


def create_notices(r: redis_lib.Redis, m: int) -> float:
    # The workers run with QUEUE_NAME=NOTICE_QUEUE: their notices queue is the one below.
    queue = build_queue(r, notice_queue_name(NOTICE_QUEUE))
    notices = NoticeRecords(r, queue, 30, system_clock)
    base = SAMPLE_CONTEXTS["payment_confirmation"]
    t0 = time.monotonic()
    for i in range(m):
        context = copy.deepcopy(base)
        email = f"c{i}@example.com"
        context["recipient"]["email"] = email
        created = notices.create(
            "payment_confirmation",
            f"charge:in_{i}",
            f"contractor:cn_{i}",
            _contact(email, i),
            context,
        )
        if not created:
            raise RuntimeError(f"notice {i} already existed: Redis was not empty")
    return time.monotonic() - t0


def notice_states(r: redis_lib.Redis, limit: int = 1_000_000) -> dict[str, Any]:
    states: dict[str, int] = {}
    done: list[float] = []
    keys = []
    for key in r.scan_iter(match="notice:*", count=5000):
        keys.append(key)
        if len(keys) >= limit:
            break
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "state", "updated_at")
    for state, updated in pipe.execute() if keys else []:
        s = state.decode() if state else "?"
        states[s] = states.get(s, 0) + 1
        if s == "accepted":
            done.append(float(updated))
    span = (max(done) - min(done)) if len(done) > 1 else 0.0
    return {"states": states, "records_per_s": round((len(done) - 1) / span, 1) if span else 0.0}


def _per_job(d: dict[str, Any], m: int, startup: float) -> dict[str, float]:
    """ms of CPU per job for our processes (workers net of start-up); foreign CPU (other
    sessions on the VM) as cores instead."""
    cpu = dict(d["cpu_s"])
    cpu["workers"] = max(0.0, cpu["workers"] - startup)
    out = {k: round(v / m * 1000, 2) for k, v in cpu.items() if k not in ("machine", "other")}
    out["other_cores"] = round(cpu["other"] / d["wall_s"], 2)
    return out


def _noop_round(
    group: Group, r: redis_lib.Redis, redis_pid: int, env: dict[str, str], m: int, startup: float
) -> dict[str, Any]:
    r.flushall()
    enqueue_s = enqueue_noops(r, m)
    d = drain(group, env, {"redis": [redis_pid]}, timeout=120, tag="noop")
    noop = {**job_span(r, NOOP_QUEUE), **d, "enqueue_s": round(enqueue_s, 2)}
    noop["cpu_ms_per_job"] = _per_job(d, m, startup)
    noop["verified"] = noop["finished"] == m and noop["failed"] == 0
    return noop


def _notice_round(
    group: Group,
    r: redis_lib.Redis,
    redis_pid: int,
    env: dict[str, str],
    m: int,
    startup: float,
    sg: Proc,
    sg_url: str,
) -> dict[str, Any]:
    r.flushall()
    create_s = create_notices(r, m)
    stats0 = get_json(f"{sg_url}/__stats")
    d = drain(group, env, {"redis": [redis_pid], "sendgrid": [sg.pid]}, timeout=150, tag="notice")
    stats1 = get_json(f"{sg_url}/__stats")
    accepted = stats1["accepted"] - stats0["accepted"]
    notices = {
        **job_span(r, notice_queue_name(NOTICE_QUEUE)),
        **d,
        **notice_states(r),
        "create_s": round(create_s, 2),
        "create_per_s": round(m / create_s, 1),
        "sendgrid_accepted": accepted,
        "sendgrid_rejected": stats1["rejected"] - stats0["rejected"],
        "sendgrid_connections": stats1["connections"] - stats0["connections"],
        "accepted_per_wall_s": round(accepted / d["wall_s"], 1),
    }
    notices["cpu_ms_per_notice"] = _per_job(d, m, startup)
    notices["verified"] = (
        notices["finished"] == m
        and notices["failed"] == 0
        and accepted == m
        and notices["states"].get("accepted") == m
    )
    return notices


def throughput(
    group: Group, r: redis_lib.Redis, redis_pid: int, redis_url: str, m: int, rounds: int = 2
) -> dict[str, Any]:
    """(a) and (b), alternated for `rounds` pairs so that the machine's drift (see the
    baselines doc: up to 1.7x within a session) hits both alike; the ratio is taken per pair
    and the median reported."""
    sg, sg_url, _ = start_sendgrid(group, standalone=True)
    pairs = []
    try:
        # Worker start-up and shutdown CPU (imports, templates, registration) on an empty
        # queue, so that the per-job CPU below can be given without it.
        r.flushall()
        idle = drain(group, worker_env(redis_url, NOOP_QUEUE, sg_url), {}, timeout=60, tag="idle")
        startup = idle["cpu_s"]["workers"]
        noop_env = worker_env(redis_url, NOOP_QUEUE, sg_url)
        notice_env = worker_env(redis_url, NOTICE_QUEUE, sg_url)
        for i in range(rounds):
            noop = _noop_round(group, r, redis_pid, noop_env, m, startup)
            notices = _notice_round(group, r, redis_pid, notice_env, m, startup, sg, sg_url)
            rate = noop["jobs_per_s"]
            ratio = round(notices["jobs_per_s"] / rate, 3) if rate else 0.0
            pairs.append({"round": i + 1, "noop": noop, "notices": notices, "ratio": ratio})
    finally:
        group.stop(sg)
    return {
        "jobs": m,
        "workers": WORKER_DESC,
        "worker_startup_cpu_s": startup,
        "rounds": pairs,
        "notices_per_s": statistics.median(p["notices"]["jobs_per_s"] for p in pairs),
        "ratio_notices_over_noop": [p["ratio"] for p in pairs],
    }


def start_stand_in_and_web(
    group: Group, redis_url: str, queue: str, started: list[Proc]
) -> tuple[str, str, Proc, int]:
    """The SendGrid stand-in (with its control port) and gunicorn on `queue`, both added to
    `started` for the caller to stop; returns (stand-in url, control url, gunicorn, port)."""
    sg, sg_url, control = start_sendgrid(group, standalone=False)
    started.append(sg)
    assert control is not None
    gunicorn, port = start_gunicorn(group, redis_url, queue, name=f"gunicorn-{queue}")
    started.append(gunicorn)
    return sg_url, control, gunicorn, port


def end_to_end(
    group: Group, r: redis_lib.Redis, redis_url: str, k: int, rate: float
) -> dict[str, Any]:
    """(c): webhook 202 -> mail at the SendGrid stand-in, with two long-running workers."""
    r.flushall()
    started: list[Proc] = []
    try:
        sg_url, control, _, port = start_stand_in_and_web(group, redis_url, E2E_QUEUE, started)
        env = worker_env(redis_url, E2E_QUEUE, sg_url)
        workers = [group.start("worker-e2e", _worker_argv(False), env)]
        started.extend(workers)
        deadline = time.monotonic() + 20
        while len(Worker.all(connection=r)) < WORKERS:
            if time.monotonic() > deadline or not all(w.alive() for w in workers):
                raise RuntimeError(
                    "e2e workers did not register:\n" + "\n".join(w.tail() for w in workers)
                )
            time.sleep(0.1)

        events = charge_events(k, bench_app.TEN99_SECRET, tag=f"{int(time.time())}")
        sent = paced("127.0.0.1", port, RECEIVE, events, rate).sent
        ok = {s.index: s.answered_at for s in sent if s.status == 202}

        deadline = time.monotonic() + 60
        times: dict[str, Any] = get_json(f"{control}/times")
        while times["stats"]["accepted"] < len(ok) and time.monotonic() < deadline:
            time.sleep(0.2)
            times = get_json(f"{control}/times")
        at = {m["record"]: m["time"] for m in times["mails"]}
        lat = []
        for i, answered in ok.items():
            rid = record_id("payment_confirmation", f"charge:in_{i}", f"contractor:cn_{i}")
            if rid in at:
                lat.append(at[rid] - answered)
        lat.sort()
        stages = job_stages(r, E2E_QUEUE)
        return {
            "events": k,
            "rate": rate,
            "answered_202": len(ok),
            "mails_matched": len(lat),
            "p50_ms": round(percentile(lat, 50) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1),
            "max_ms": round(lat[-1] * 1000, 1) if lat else 0.0,
            "min_ms": round(lat[0] * 1000, 1) if lat else 0.0,
            "verified": len(ok) == k and len(lat) == k,
            "stages_ms": stages,
        }
    finally:
        for proc in reversed(started):
            group.stop(proc)
