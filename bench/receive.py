"""Part 1: the receive path (`POST /webhooks/1099policy`) against a bare endpoint, same app.

What is measured: wrk (closed loop, keep-alive) requests/s and latency for `/__bare` and for
the real webhook endpoint, alternating bare/receive per round so drift hits both alike; the
ratio receive/bare per round is the figure to compare over time. Every receive request is a
new event, and afterwards the event records in Redis are counted: they must equal the 2xx
answers (plus at most the requests in flight when wrk stopped, which the server finished but
wrk no longer counted). Then a fixed-rate run at 300 deliveries/s gives p50/p99 at a load the
service should carry comfortably. CPU per request of gunicorn and redis-server is recorded
from procfs, which is what explains a ratio.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import redis as redis_lib

from . import app as bench_app
from .load import WRK_LUA, Delivery, WrkResult, paced, policy_events, run_wrk, write_for_wrk
from .procs import VENV_BIN, CpuMeter, Group, Proc, free_port, wait_http
from .profile import profile_receive

RECEIVE = bench_app.RECEIVE_PATH
BARE = "/__bare"
# The same receive path with the accept script minus the console's index write (bench/app.py)
WITHOUT_INDEX = bench_app.WITHOUT_INDEX
INDEX = "events:index"
EVENT_MATCH = "event:1099policy:*"
GUNICORN_MODEL = "-k gevent -w 2 --worker-connections 1000"


def start_gunicorn(
    group: Group,
    redis_url: str,
    queue: str,
    name: str = "gunicorn",
    env: dict[str, Any] | None = None,
) -> tuple[Proc, int]:
    """The Procfile's worker model (receiver/processes/gunicorn_settings.py: gevent, 2
    processes) unless BENCH_GUNICORN names another (e.g. "-k gthread -w 2 --threads 4", the
    model before issue 12), access log off, loopback; `env` adds to bench/app.py's settings."""
    port = free_port()
    model = os.environ.get("BENCH_GUNICORN", GUNICORN_MODEL).split()
    argv = [
        str(VENV_BIN / "gunicorn"),
        "--no-control-socket",
        *model,
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "bench.app:create()",
    ]
    settings = {"BENCH_REDIS_URL": redis_url, "BENCH_QUEUE_NAME": queue}
    proc = group.start(name, argv, env={**settings, **{k: str(v) for k, v in (env or {}).items()}})
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)  # a busy shared machine
    return proc, port


def _rusage(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def count_keys(r: redis_lib.Redis, match: str, limit: int = 2_000_000) -> int:
    """Exact key count by SCAN (bounded by `limit` keys)."""
    n = 0
    for _ in r.scan_iter(match=match, count=5000):
        n += 1
        if n >= limit:
            break
    return n


def run(
    wrk: str,
    group: Group,
    r: redis_lib.Redis,
    redis_pid: int,
    redis_url: str,
    work: Path,
    rounds: int = 2,
    seconds: int = 10,
    # Fresh events per round: two wrk threads each walk half; 3,700/s for 10 s has been seen on
    # this box, and one thread may run well ahead of the other, so leave room against a wrap.
    slice_size: int = 90_000,
    warmup: int = 3000,
    paced_rate: float = 300.0,
    paced_seconds: float = 10.0,
    connections: int = 32,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    queue = bench_app.DEFAULT_QUEUE
    gunicorn, port = start_gunicorn(group, redis_url, queue)
    base = f"http://127.0.0.1:{port}"

    # Each round stores through both receive endpoints, each from a slice of its own.
    total = warmup + (2 * rounds + (1 if profile_to else 0)) * slice_size
    t0 = time.monotonic()
    deliveries = policy_events(total, bench_app.TEN99_SECRET, tag=f"{int(time.time())}")
    body_bytes = len(deliveries[0].body)
    data_file, script = work / "deliveries.tsv", work / "walk.lua"
    write_for_wrk(data_file, deliveries)
    script.write_text(WRK_LUA)
    gen_s = time.monotonic() - t0
    del deliveries

    def wrk_run(endpoint: str, offset: int, count: int, secs: int) -> WrkResult:
        return run_wrk(
            wrk,
            base,
            endpoint,
            data_file,
            script,
            offset,
            count,
            threads=2,
            connections=connections,
            seconds=secs,
        )

    # Warm-up: imports, Redis connections, Lua script load; events from their own slice.
    wrk_run(BARE, 0, warmup, 2)
    wrk_run(RECEIVE, 0, warmup, 2)
    wrk_run(WITHOUT_INDEX, 0, warmup, 2)  # duplicates by now: loads its script, connects

    runs: list[dict[str, Any]] = []
    for i in range(rounds):
        # The two receive endpoints swap places every round, so that neither always runs
        # second (the data set grows as the run goes on).
        order = (BARE, RECEIVE, WITHOUT_INDEX) if i % 2 == 0 else (BARE, WITHOUT_INDEX, RECEIVE)
        for endpoint in order:
            offset = warmup + (2 * i + (endpoint == WITHOUT_INDEX)) * slice_size
            before = count_keys(r, EVENT_MATCH)
            indexed_before = r.zcard(INDEX)
            qlen_before = r.llen(f"rq:queue:{queue}")
            meter = CpuMeter({"gunicorn": [gunicorn.pid], "redis": [redis_pid]}).start()
            kids0, self0 = _rusage(resource.RUSAGE_CHILDREN), _rusage(resource.RUSAGE_SELF)
            res = wrk_run(endpoint, offset, slice_size, seconds)
            cpu = meter.stop()
            cpu["wrk"] = round(_rusage(resource.RUSAGE_CHILDREN) - kids0, 3)
            cpu["bench"] = round(_rusage(resource.RUSAGE_SELF) - self0, 3)
            cpu["other"] = round(
                cpu["machine"] - cpu["gunicorn"] - cpu["redis"] - cpu["wrk"] - cpu["bench"], 3
            )
            time.sleep(0.3)  # let requests in flight at wrk's stop finish before counting
            stored = count_keys(r, EVENT_MATCH) - before
            indexed = r.zcard(INDEX) - indexed_before
            queued = r.llen(f"rq:queue:{queue}") - qlen_before
            row: dict[str, Any] = {
                "round": i + 1,
                **asdict(res),
                "ok_2xx": res.ok,
                "records_stored": stored,
                "records_indexed": indexed,
                "jobs_queued": queued,
            }
            row["cpu_us_per_req"] = {
                k: round(v / max(res.requests, 1) * 1e6)
                for k, v in cpu.items()
                if k in ("gunicorn", "gunicorn_sys", "redis", "wrk")
            }
            row["cpu_cores"] = {
                k: round(v / res.seconds, 2) for k, v in cpu.items() if not k.endswith("_sys")
            }
            if endpoint != BARE:
                extra = stored - res.ok
                row["in_flight_at_stop"] = extra
                row["verified"] = (
                    res.non_2xx == 0
                    and res.socket_errors == 0
                    and res.wraps == 0
                    and 0 <= extra <= connections
                    and queued == stored
                    and indexed == (stored if endpoint == RECEIVE else 0)
                )
            runs.append(row)

    ratios, plain_ratios, index_ratios = [], [], []
    for i in range(rounds):
        bare = next(x for x in runs if x["round"] == i + 1 and x["endpoint"] == BARE)
        recv = next(x for x in runs if x["round"] == i + 1 and x["endpoint"] == RECEIVE)
        plain = next(x for x in runs if x["round"] == i + 1 and x["endpoint"] == WITHOUT_INDEX)
        ratios.append(round(recv["rps"] / bare["rps"], 3))
        plain_ratios.append(round(plain["rps"] / bare["rps"], 3))
        index_ratios.append(round(recv["rps"] / plain["rps"], 3))

    profile_text = None
    if profile_to is not None:
        offset = warmup + 2 * rounds * slice_size
        profile_text = profile_receive(
            gunicorn.pid, seconds, lambda: wrk_run(RECEIVE, offset, slice_size, seconds), profile_to
        )

    # Fixed rate: fresh events, signed now.
    n_paced = int(paced_rate * paced_seconds)
    fresh: list[Delivery] = policy_events(
        n_paced, bench_app.TEN99_SECRET, tag=f"paced{int(time.time())}"
    )
    before = count_keys(r, EVENT_MATCH)
    pr = paced("127.0.0.1", port, RECEIVE, fresh, paced_rate)
    time.sleep(0.2)
    paced_summary = pr.summary()
    paced_summary["records_stored"] = count_keys(r, EVENT_MATCH) - before
    paced_summary["verified"] = (
        paced_summary["non_2xx"] == 0
        and paced_summary["requests"] == n_paced
        and paced_summary["records_stored"] == n_paced
    )

    persistence = r.info("persistence")
    group.stop(gunicorn)
    return {
        "config": {
            "gunicorn": os.environ.get("BENCH_GUNICORN", GUNICORN_MODEL),
            "wrk": f"-t2 -c{connections} -d{seconds}s",
            "rounds": rounds,
            "redis": "appendonly yes (everysec)",
            "body_bytes": body_bytes,
            "generate_s": round(gen_s, 2),
        },
        "runs": runs,
        "ratio_receive_over_bare": ratios,
        "ratio_without_index_over_bare": plain_ratios,
        "ratio_receive_over_without_index": index_ratios,
        "paced": paced_summary,
        "aof_rewrites": persistence.get("aof_rewrites"),
        "profile": profile_text,
    }
