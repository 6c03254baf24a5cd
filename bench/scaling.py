"""(e) Scaling: the figures behind docs/scaling.md (issue 12), `--only scaling`.

Three questions, each answered on this machine in one run:

1. How drain throughput grows with worker processes: the backlog drain of bench/backlog.py
   (N signed charge events, one contractor and one email each, queued while no worker runs)
   with `worker.py --burst --processes P` for each P in PROCESSES.
2. What one Redis primary sustains for the receive path: the accept script alone (the one
   Lua call a delivery costs Redis), ACCEPT_CALLS calls pipelined PIPELINE at a time by one
   client (packed by hiredis, written at once), so Redis, not the client's round trips, is
   what is measured. Reported: calls per
   second and Redis CPU (INFO cpu, user + sys) per call.
3. What an event costs Redis end to end, and what it keeps: during the drain with two
   processes, Redis CPU from the first delivery to the last email over N, and memory
   (MEMORY USAGE of every key, grouped by family) right after the accept and after the drain,
   per event; the contractor's own families (contact, coverage, payments) per contractor.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import redis as redis_lib
from hiredis import pack_command

from receiver.ingest.inbox import Inbox, task_id_for
from receiver.store import keys
from receiver.store.connection import build_queue

from .backlog import backlog
from .procs import Group

PROCESSES = (1, 2, 4)
ACCEPT_CALLS = 40_000
PIPELINE = 1_000
BODY_BYTES = 1024
# Key families kept per contractor rather than per event (receiver/store/keys.py); the
# contractor's event and notice indexes grow with its events and count as the event's.
CONTRACTOR_FAMILIES = ("contractor", "coverage:doc", "coverage:owner", "payments")


def redis_cpu(r: redis_lib.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def memory_by_family(r: redis_lib.Redis) -> dict[str, int]:
    """Bytes held per key family: the key without its last `:` part (`event:1099policy`,
    `coverage:doc`, `rq:job`), by MEMORY USAGE of every key (SAMPLES 0: whole values)."""
    out: dict[str, int] = defaultdict(int)
    for key in r.scan_iter(count=1000):
        family = key.decode(errors="replace").rsplit(":", 1)[0]
        out[family] += int(r.memory_usage(key, samples=0) or 0)
    return dict(out)


def _accept_args(sha: str, i: int, body: bytes, headers: str, stamp: str) -> tuple[Any, ...]:
    """The accept script's call for a new event `i`, as the web process makes it."""
    eid = f"ev_scale_{i}"
    key = keys.event("1099policy", eid)
    return (
        "EVALSHA", sha, 1, key, 30 * 86400, task_id_for(key), stamp, time.time(),
        "1099policy", eid, "invoice.charge_card_succeeded", "", body, headers,
    )  # fmt: skip


def accept_alone(r: redis_lib.Redis, calls: int = ACCEPT_CALLS) -> dict[str, Any]:
    """The accept script, pipelined: Redis's own capacity for the receive path."""
    r.flushall()
    inbox = Inbox(r, build_queue(r, "bench-scaling"), 30)
    source = inbox._accept_script().source  # the very script the web process runs
    sha = r.script_load(source)
    body = json.dumps({"pad": "x" * (BODY_BYTES - 12)}).encode()
    headers = json.dumps({"Content-Type": "application/json"})
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    before_mem = int(r.info("memory")["used_memory"])
    conn = r.connection_pool.get_connection()
    try:
        cpu0, t0 = redis_cpu(r), time.perf_counter()
        for start in range(0, calls, PIPELINE):
            batch = range(start, min(calls, start + PIPELINE))
            # Packed by hiredis and written at once: the client keeps up with Redis.
            conn.send_packed_command(
                [pack_command(_accept_args(sha, i, body, headers, stamp)) for i in batch]
            )
            stored = [conn.read_response() for _ in batch]
            assert all(stored), "the accept script refused a new event"
    finally:
        r.connection_pool.release(conn)
    wall, cpu = time.perf_counter() - t0, redis_cpu(r) - cpu0
    per_event = (int(r.info("memory")["used_memory"]) - before_mem) / calls
    r.flushall()
    return {
        "calls": calls,
        "pipeline": PIPELINE,
        "body_bytes": len(body),
        "events_per_s": round(calls / wall),
        "redis_cpu_us_per_event": round(cpu / calls * 1e6, 1),
        "redis_cpu_share": round(cpu / wall, 2),
        "memory_bytes_per_accepted_event": round(per_event),
    }


def run(group: Group, r: redis_lib.Redis, redis_url: str, n: int) -> dict[str, Any]:
    drains: list[dict[str, Any]] = []
    cpu: dict[str, float] = {}
    memory: dict[str, dict[str, int]] = {}

    def at(moment: str) -> None:  # Redis's CPU and keys at each moment of the measured drain
        cpu[moment] = redis_cpu(r)
        if moment != "start":
            memory[moment] = memory_by_family(r)
            cpu[moment + " census"] = redis_cpu(r)

    for processes in PROCESSES:
        print(f"bench: scaling, drain of {n} with {processes} worker processes ...", flush=True)
        drain = backlog(group, r, redis_url, n, processes, at if processes == 2 else None)
        drains.append({"processes": processes, **drain})
    accepted, drained = memory.get("accepted", {}), memory.get("drained", {})
    # The key census itself costs Redis CPU: it is left out.
    end_to_end = (cpu["accepted"] - cpu["start"]) + (cpu["drained"] - cpu["accepted census"])
    per_contractor = sum(drained.get(f, 0) for f in CONTRACTOR_FAMILIES) / n
    per_event = sum(v for f, v in drained.items() if f not in CONTRACTOR_FAMILIES) / n
    return {
        "drains": drains,
        "accept_alone": accept_alone(r),
        "redis_cpu_us_per_event_end_to_end": round(end_to_end / n * 1e6),
        "memory_per_event_after_accept": round(sum(accepted.values()) / n),
        "memory_per_event_after_drain": round(per_event),
        "memory_per_contractor": round(per_contractor),
        "memory_by_family_after_drain": {f: round(v / n) for f, v in sorted(drained.items())},
        "verified": all(d["verified"] for d in drains),
    }
