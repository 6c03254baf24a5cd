"""`make bench`: receive-path and notice throughput, each as a ratio to a baseline in the same run.

What is measured, and why ratios: this is a 2-core shared VM whose speed drifts by up to 2x
within an hour (docs/perf-baselines.md), and the load generator shares those cores. Absolute
requests/s are printed, but the figures to compare across runs and against the targets are
ratios to a reference measured seconds apart, in the same run, on the same processes:

1. Receive: wrk against `POST /webhooks/1099policy` (verify, parse, store + de-dup + enqueue
   in one Lua call; every request a new event) vs `POST /__bare` (empty 204) in the same
   gunicorn (gevent, 2 processes, as receiver/processes/gunicorn_settings.py), Redis with AOF
   as in production. Targets:
   receive >= 0.5 x bare; p99 < 50 ms at a fixed 300 deliveries/s. Each round also runs the
   same path with the accept script minus the console's `events:index` write (bench/app.py
   derives it from the real script): receive / without index is what that index costs
   (issue 9: within 5%, i.e. >= 0.95).
2. Notices: the Procfile's `worker.py --burst` (two RQ SimpleWorkers per CPU) draining M notice
   sends to the SendGrid test server vs M no-op jobs. Targets: >= 200 notices/s and
   notices/no-op >= 0.8. Plus the latency from a webhook's 202 to the mail reaching the
   SendGrid stand-in at 100 events/s (target: p99 < 500 ms).
3. Backlog (bench/backlog.py): N charge events queued while no worker runs, then the
   Procfile's `worker.py --burst` drains them (each event one task that also sends its email);
   time to the first and the last email from the workers' start (issue 13's targets: first
   within 5 s, 10,000 in under 60 s; `--backlog-events`).
4. Console (bench/console_index.py): the operator's event list over N stored events
   (1,000,000 by default; `--console-events`): milliseconds per page for the newest page, a
   type prefix, failed events, one contractor's, a page deep in the list, and a rare type.
5. Acks (bench/acks.py): the receive path with a replica attached, REDIS_MIN_REPLICA_ACKS=1
   (a WAIT after every accept) against 0, alternating wrk runs; the ratio, and p50/p99 at a
   fixed 300/s on each.
6. Console sign-in (bench/console_auth.py; only with `--only console-auth`): webhook p99 at a
   paced 40/s alone and beside 200 wrong console passwords 4 at a time (issue 19: within
   1.5x), with the sign-in limits on and set out of reach.
7. Scaling (bench/scaling.py; only with `--only scaling`, docs/scaling.md's figures): the
   backlog drain with 1, 2 and 4 worker processes, the accept script alone pipelined (what
   one Redis primary sustains), and Redis CPU and memory per event and per contractor.

`--profile` adds one receive run under py-spy (GIL-holding samples of the gunicorn workers)
and prints where the app's CPU goes. Every figure is checked (no non-2xx, stored records =
2xx, every notice accepted); a run whose checks fail exits 1. Missed targets are reported,
and exit 2 only with --strict.
Results: bench/results/latest.json. Everything started here is stopped on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402

from bench import (  # noqa: E402
    acks,
    backlog,
    console_auth,
    console_index,
    notices,
    receive,
    scaling,
)
from bench.load import ensure_wrk  # noqa: E402
from bench.procs import Group  # noqa: E402
from receiver.store.embedded import RedisServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "latest.json"
PROFILE = ROOT / "bench" / "results" / "profile-receive.txt"


def code_version() -> dict[str, Any]:
    """The commit benchmarked and whether the service's files differ from it (others edit)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = git("status", "--porcelain", "--", "receiver", "worker.py", "templates")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "service_files_changed": len(dirty.splitlines()) if dirty else 0,
    }


def noise_probe() -> float:
    """Snippet A0 of the baselines doc: ms for a fixed 3M-iteration loop (lower = faster box)."""
    t = time.perf_counter()
    s = 0
    for i in range(3_000_000):
        s += i * i
    return round((time.perf_counter() - t) * 1000, 1)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    rec = result.get("receive")
    if rec:
        ratio = statistics.median(rec["ratio_receive_over_bare"])
        out["receive >= 0.5 x bare"] = {"value": round(ratio, 3), "met": ratio >= 0.5}
        index = statistics.median(rec["ratio_receive_over_without_index"])
        out["receive / without index >= 0.95"] = {"value": round(index, 3), "met": index >= 0.95}
        p99 = rec["paced"]["p99_ms"]
        out["p99 < 50 ms at 300/s"] = {"value": p99, "met": p99 < 50}
    thr = result.get("notices")
    if thr:
        rate = thr["notices_per_s"]
        out[">= 200 notices/s"] = {"value": rate, "met": rate >= 200}
        ratio = statistics.median(thr["ratio_notices_over_noop"])
        # Issue 13's target (issue 3 asked for 0.5); docs/performance.md: out of reach with RQ.
        out["notices/no-op >= 0.8"] = {"value": ratio, "met": ratio >= 0.8}
    e2e = result.get("end_to_end")
    if e2e:
        p99 = e2e["p99_ms"]
        out["webhook -> SendGrid p99 < 500 ms at 100/s"] = {"value": p99, "met": p99 < 500}
    ca = result.get("console_auth")
    if ca:
        ratio = ca["runs"]["attack"]["p99_ratio_to_alone"]
        out["webhook p99 under sign-in attack <= 1.5x"] = {"value": ratio, "met": ratio <= 1.5}
    bl = result.get("backlog")
    if bl:
        first = bl["first_email_s"]
        out["backlog first email < 5 s"] = {"value": first, "met": 0 < first < 5}
        # 10,000 events in under 60 s (issue 13), as a rate for a backlog of any size.
        rate = bl["events_per_s"]
        out["backlog >= 167 events/s"] = {"value": rate, "met": rate >= 10000 / 60}
    return out


def verified(result: dict[str, Any]) -> list[str]:
    bad = []
    rec = result.get("receive")
    if rec:
        bad += [
            f"receive round {r['round']}"
            for r in rec["runs"]
            if r["endpoint"] != receive.BARE and not r["verified"]
        ]
        bad += [] if rec["paced"]["verified"] else ["paced 300/s"]
    thr = result.get("notices")
    if thr:
        for pair in thr["rounds"]:
            bad += [] if pair["noop"]["verified"] else [f"no-op drain {pair['round']}"]
            bad += [] if pair["notices"]["verified"] else [f"notice drain {pair['round']}"]
    for part, name in (
        ("end_to_end", "end-to-end"),
        ("backlog", "backlog"),
        ("console", "console"),
        ("acks", "acks"),
        ("scaling", "scaling"),
        ("console_auth", "console sign-in"),
    ):
        ran = result.get(part)
        if ran and not ran["verified"]:
            bad.append(name)
    return bad


def report(result: dict[str, Any]) -> None:
    p = print
    code = result["code"]
    p(
        f"\nbench  {result['started']}  commit {code['commit']} (+{code['service_files_changed']} "
        f"changed service files)  {result['total_s']} s"
    )
    p(
        f"noise probe {result['noise_probe_ms']} ms before/after (A0 loop; 124-190 ms early, "
        "205-310 ms in the slow phase of the baselines doc)"
    )
    rec = result.get("receive")
    if rec:
        p(
            f"\nReceive path  (gunicorn {rec['config']['gunicorn']}, wrk {rec['config']['wrk']}, "
            f"{rec['config']['body_bytes']} B bodies, every request a new event, AOF on)"
        )
        p(
            f"  {'round':<6}{'endpoint':<22}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non2xx':>7}"
            f"{'stored':>8}   CPU us/req: gunicorn (sys) redis wrk | other cores"
        )
        for r in rec["runs"]:
            stored = r["records_stored"] if r["endpoint"] != receive.BARE else "-"
            c = r["cpu_us_per_req"]
            name = "  without index" if r["endpoint"] == receive.WITHOUT_INDEX else r["endpoint"]
            p(
                f"  {r['round']:<6}{name:<22}{r['rps']:>8.0f}{r['p50_ms']:>8.1f}"
                f"{r['p99_ms']:>8.1f}{r['non_2xx']:>7}{stored!s:>8}   "
                f"{c['gunicorn']:>8} ({c['gunicorn_sys']}) {c['redis']:>5} {c['wrk']:>3} | "
                f"{r['cpu_cores']['other']}"
            )
        p(f"  ratio receive/bare per round: {rec['ratio_receive_over_bare']}")
        p(
            f"  without the console's index: ratio to bare {rec['ratio_without_index_over_bare']}"
            f"; receive / without index {rec['ratio_receive_over_without_index']}"
        )
        busy = [r["cpu_cores"]["machine"] for r in rec["runs"]]
        p(
            f"  whole machine busy {min(busy)}-{max(busy)} cores of {os.cpu_count()} during the "
            f"wrk runs; AOF rewrites during part 1: {rec['aof_rewrites']}"
        )
        pc = rec["paced"]
        p(
            f"  fixed {pc['target_rate']:.0f}/s for {pc['requests']} deliveries: "
            f"p50 {pc['p50_ms']} ms, p99 {pc['p99_ms']} ms, max {pc['max_ms']} ms "
            f"(achieved {pc['achieved_rate']}/s, non-2xx {pc['non_2xx']}, "
            f"stored {pc['records_stored']})"
        )
    ak = result.get("acks")
    if ak:
        p(
            f"\nReceive path with one replica  (wrk {ak['config']['wrk']}, "
            "REDIS_MIN_REPLICA_ACKS 0 then 1 each round)"
        )
        for row in ak["rounds"]:
            p(
                f"  round {row['round']} acks={row['acks']}: {row['rps']:>8.0f} req/s, p50 "
                f"{row['p50_ms']} ms, p99 {row['p99_ms']} ms, non-2xx {row['non_2xx']}"
            )
        p(f"  ratio acks=1 / acks=0 per round: {ak['ratio_acks1_over_acks0']}")
        for k, pc in ak["paced"].items():
            p(
                f"  fixed {pc['target_rate']:.0f}/s, acks={k}: p50 {pc['p50_ms']} ms, "
                f"p99 {pc['p99_ms']} ms (non-2xx {pc['non_2xx']})"
            )
    thr = result.get("notices")
    if thr:
        p(f"\nNotices  ({thr['jobs']} jobs per drain, {thr['workers']}, no-op/notice pairs)")
        for pair in thr["rounds"]:
            n, o = pair["notices"], pair["noop"]
            p(f"  round {pair['round']}")
            p(f"    no-op jobs: {o['jobs_per_s']:>6}/s   (wall {o['wall_s']} s incl. start-up)")
            p(
                f"    notices:    {n['jobs_per_s']:>6}/s   (records {n['records_per_s']}/s; "
                f"SendGrid stand-in accepted {n['sendgrid_accepted']}, "
                f"{n['accepted_per_wall_s']}/s of wall time, over {n['sendgrid_connections']} "
                "TCP connections)"
            )
            p(f"    CPU ms/job, no-op:   {o['cpu_ms_per_job']}")
            p(f"    CPU ms/job, notice:  {n['cpu_ms_per_notice']}")
        p(f"  ratio notices/no-op per round: {thr['ratio_notices_over_noop']}")
    e2e = result.get("end_to_end")
    if e2e:
        p(
            f"\nEnd to end  ({e2e['events']} charge events at {e2e['rate']:.0f}/s, 202 -> mail "
            f"at SendGrid stand-in): p50 {e2e['p50_ms']} ms, p99 {e2e['p99_ms']} ms, "
            f"max {e2e['max_ms']} ms ({e2e['mails_matched']}/{e2e['events']} matched)"
        )
        for kind, st in e2e["stages_ms"].items():
            p(
                f"    {kind:<11} p50/p99 ms: scheduled {st['scheduled_p50']}/"
                f"{st['scheduled_p99']}  queued {st['queued_p50']}/{st['queued_p99']}  "
                f"run {st['run_p50']}/{st['run_p99']}"
            )
    bl = result.get("backlog")
    if bl:
        p(
            f"\nBacklog  ({bl['queued_202']} charge events queued with no worker running, then "
            f"{bl['workers']}): first email {bl['first_email_s']} s, last {bl['last_email_s']} s "
            f"after the workers started, {bl['events_per_s']} events+emails/s "
            f"({bl['mails']}/{bl['events']} mails)"
        )
    sc = result.get("scaling")
    if sc:
        n = sc["drains"][0]["events"]
        p(f"\nScaling  (backlog drains of {n} charge events, one email each)")
        for d in sc["drains"]:
            p(
                f"  {d['processes']} worker processes: {d['events_per_s']:>6} events+emails/s, "
                f"first email {d['first_email_s']} s ({d['mails']}/{d['events']} mails)"
            )
        a = sc["accept_alone"]
        p(
            f"  accept script alone, {a['calls']} calls pipelined {a['pipeline']} at a time, "
            f"{a['body_bytes']} B bodies: {a['events_per_s']} events/s, Redis "
            f"{a['redis_cpu_us_per_event']} us CPU each ({a['redis_cpu_share']} of a core), "
            f"{a['memory_bytes_per_accepted_event']} B each"
        )
        p(
            f"  Redis CPU per event end to end (2 processes): "
            f"{sc['redis_cpu_us_per_event_end_to_end']} us"
        )
        p(
            f"  Redis memory per event: {sc['memory_per_event_after_accept']} B accepted, "
            f"{sc['memory_per_event_after_drain']} B processed (RQ's results for an hour "
            f"included); per contractor {sc['memory_per_contractor']} B"
        )
        p(f"  by key family after the drain, B per event: {sc['memory_by_family_after_drain']}")
    con = result.get("console")
    if con:
        p(
            f"\nConsole event list  ({con['events']} events stored, {con['memory_mb']} MB in "
            f"Redis; 50 per page, median of {console_index.REPEAT})"
        )
        for name, case in con.items():
            if isinstance(case, dict):
                p(
                    f"  {name:<18}{case['median_ms']:>9} ms  {case['items']:>3} items, "
                    f"{case['scanned']} members looked at"
                )
    ca = result.get("console_auth")
    if ca:
        cf = ca["config"]
        p(
            f"\nConsole sign-in attack  (webhooks paced at {cf['rate']:.0f}/s for "
            f"{cf['seconds']} s; {cf['tries']} wrong passwords, {cf['parallel']} at a time, "
            "from one client)"
        )
        for name, row in ca["runs"].items():
            w, a = row["webhooks"], row["attack"]
            guessed = f"; tries answered {a['answers']} in {a['seconds']} s" if a else ""
            ratio = ""
            if "p99_ratio_to_alone" in row:
                ratio = f", p99 {row['p99_ratio_to_alone']}x alone (mean of both)"
            p(
                f"  {name:<17} webhook p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms{ratio} "
                f"(non-2xx {w['non_2xx']}){guessed}"
            )
    if rec and rec.get("profile"):
        p(f"\nReceive profile (py-spy --gil, extra run; full: {PROFILE.relative_to(ROOT)})")
        for line in rec["profile"].splitlines()[:26]:
            p(f"  {line}")
    p("\nTargets")
    for name, t in result["targets"].items():
        p(f"  {'met ' if t['met'] else 'MISS'}  {name:<34} {t['value']}")
    if result["failed_checks"]:
        p(f"\nCHECKS FAILED: {', '.join(result['failed_checks'])}")
    p(f"\nJSON: {RESULTS.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        choices=("receive", "acks", "notices", "backlog", "console", "scaling", "console-auth"),
        help="run one part (scaling and console-auth run only when asked for)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="bare/receive/receive-without-index wrk rounds"
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--jobs", type=int, default=3000, help="M: jobs per drain")
    parser.add_argument("--notice-rounds", type=int, default=3, help="no-op/notice drain pairs")
    parser.add_argument("--e2e-events", type=int, default=500, help="K: end-to-end events")
    parser.add_argument(
        "--backlog-events", type=int, default=2000, help="N: events of the backlog drain (0: none)"
    )
    parser.add_argument(
        "--console-events",
        type=int,
        default=1_000_000,
        help="N: events stored for the console list part (0: none)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one extra receive run under py-spy; summary in bench/results/profile-receive.txt",
    )
    parser.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.notice_rounds < 1:
        parser.error("--rounds and --notice-rounds must be at least 1")
    if (3 * args.rounds + 1) * args.seconds > 240:
        # Deliveries are signed once, up front; the receiver refuses them 300 s later.
        parser.error("(3 x rounds + 1) x seconds must stay within 240 s")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (&)

    wrk = ensure_wrk() if args.only in (None, "receive", "acks") else ""
    PROFILE.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "code": code_version(),
    }
    t_start = time.monotonic()
    probe = [noise_probe()]
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    group = Group(work)
    server = RedisServer(work / "redis")
    try:
        server.start()
        assert server.proc is not None
        r = redis_lib.Redis.from_url(server.url)
        if args.only in (None, "receive"):
            print("bench: receive path ...", flush=True)
            result["receive"] = receive.run(
                wrk,
                group,
                r,
                server.proc.pid,
                server.url,
                work,
                rounds=args.rounds,
                seconds=args.seconds,
                profile_to=PROFILE if args.profile else None,
            )
        if args.only in (None, "acks"):
            print("bench: receive path with a replica, acks 0 and 1 ...", flush=True)
            result["acks"] = acks.run(wrk, group, r, server.url, server.port, work)
        if args.only in (None, "notices"):
            print("bench: notices ...", flush=True)
            result["notices"] = notices.throughput(
                group, r, server.proc.pid, server.url, args.jobs, rounds=args.notice_rounds
            )
            print("bench: end to end ...", flush=True)
            result["end_to_end"] = notices.end_to_end(
                group, r, server.url, args.e2e_events, rate=100.0
            )
        if args.only in (None, "backlog") and args.backlog_events > 0:
            print("bench: backlog drain ...", flush=True)
            result["backlog"] = backlog.backlog(group, r, server.url, args.backlog_events)
        if args.only in (None, "console") and args.console_events > 0:
            print(f"bench: console event list over {args.console_events} events ...", flush=True)
            result["console"] = console_index.run(r, args.console_events)
        if args.only == "scaling":
            result["scaling"] = scaling.run(group, r, server.url, args.backlog_events)
        if args.only == "console-auth":
            print("bench: webhooks beside a console password-guessing client ...", flush=True)
            result["console_auth"] = console_auth.run(group, r, server.url)
        r.flushall()
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    finally:
        group.stop_all()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    probe.append(noise_probe())
    result["noise_probe_ms"] = probe
    result["total_s"] = round(time.monotonic() - t_start, 1)
    result["targets"] = targets(result)
    result["failed_checks"] = verified(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    if result["failed_checks"]:
        return 1
    if args.strict and not all(t["met"] for t in result["targets"].values()):
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
