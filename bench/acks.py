"""(f) What `REDIS_MIN_REPLICA_ACKS=1` costs the receive path (issue 12).

The bench's Redis gets a replica (the same binary, loopback, `--replicaof`, AOF on as the
primary). Two gunicorns of the bench app, the same in everything but REDIS_MIN_REPLICA_ACKS
(0 and 1), take turns, `rounds` times: a wrk run against `POST /webhooks/1099policy` (closed
loop, every request a new event) on each, then a paced run at `paced_rate` deliveries/s on
each. Reported: requests/s per run and the ratio acks=1 / acks=0 per round (the figure to
compare, as everywhere in bench/), and p50/p99 at the fixed rate. With acks=1 every accept is
followed by `WAIT 1` on the same connection; on loopback the replica's acknowledgement is a
local round trip, across hosts it adds the network's.

Checked: no non-2xx answer on either side (a `WAIT` that timed out would answer 503).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis as redis_lib

from receiver.store.embedded import RedisServer

from . import app as bench_app
from .load import WRK_LUA, WrkResult, paced, policy_events, run_wrk, write_for_wrk
from .procs import Group, Proc
from .receive import RECEIVE, start_gunicorn

QUEUE = "bench-acks"


def run(
    wrk: str,
    group: Group,
    r: redis_lib.Redis,
    redis_url: str,
    redis_port: int,
    work: Path,
    rounds: int = 3,
    seconds: int = 5,
    slice_size: int = 40_000,
    paced_rate: float = 300.0,
    paced_seconds: float = 5.0,
) -> dict[str, Any]:
    r.flushall()
    replica = RedisServer(work / "replica", args=("--replicaof", "127.0.0.1", str(redis_port)))
    replica.start()
    webs: dict[int, tuple[Proc, int]] = {}
    try:
        on_replica = redis_lib.Redis(port=replica.port)
        deadline = time.monotonic() + 30
        while on_replica.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.1)
        for acks in (0, 1):
            webs[acks] = start_gunicorn(
                group, redis_url, QUEUE, f"gunicorn-acks{acks}", {"BENCH_MIN_REPLICA_ACKS": acks}
            )
        warmup = 2000
        deliveries = policy_events(
            warmup + 2 * rounds * slice_size, bench_app.TEN99_SECRET, f"acks{int(time.time())}"
        )
        data_file, script = work / "acks.tsv", work / "acks.lua"
        write_for_wrk(data_file, deliveries)
        script.write_text(WRK_LUA)
        del deliveries

        def wrk_run(acks: int, offset: int, count: int, secs: int) -> WrkResult:
            return run_wrk(
                wrk, f"http://127.0.0.1:{webs[acks][1]}", RECEIVE, data_file, script, offset,
                count, threads=2, connections=32, seconds=secs,
            )  # fmt: skip

        for acks in (0, 1):  # imports, connections, the script loaded
            wrk_run(acks, acks * warmup // 2, warmup // 2, 2)
        runs: list[dict[str, Any]] = []
        for i in range(rounds):
            for acks in (0, 1):
                res = wrk_run(acks, warmup + (2 * i + acks) * slice_size, slice_size, seconds)
                runs.append(
                    {
                        "round": i + 1,
                        "acks": acks,
                        "rps": res.rps,
                        "p50_ms": res.p50_ms,
                        "p99_ms": res.p99_ms,
                        "non_2xx": res.non_2xx + res.socket_errors,
                        "wraps": res.wraps,
                    }
                )
        fixed: dict[str, dict[str, Any]] = {}
        for acks in (0, 1):
            fresh = policy_events(
                int(paced_rate * paced_seconds),
                bench_app.TEN99_SECRET,
                f"acks-paced{acks}-{int(time.time())}",
            )
            port = webs[acks][1]
            fixed[str(acks)] = paced("127.0.0.1", port, RECEIVE, fresh, paced_rate).summary()
    finally:
        for proc, _port in webs.values():
            group.stop(proc)
        replica.stop()
        r.flushall()
    pairs = [(runs[2 * i], runs[2 * i + 1]) for i in range(rounds)]
    return {
        "config": {"wrk": f"-t2 -c32 -d{seconds}s", "paced_rate": paced_rate},
        "rounds": runs,
        "ratio_acks1_over_acks0": [
            round(one["rps"] / zero["rps"], 3) if zero["rps"] else 0.0 for zero, one in pairs
        ],
        "paced": fixed,
        "verified": all(r["non_2xx"] == 0 and r["wraps"] == 0 for r in runs)
        and all(v["non_2xx"] == 0 for v in fixed.values()),
    }
