"""(g) What a password-guessing client costs the webhook door (issue 19).

The bench app in the Procfile's model (gunicorn, gevent, 2 processes) with the console on: one
user whose password hash is werkzeug's default (scrypt, slow on purpose). A paced webhook load
(`rate` deliveries/s for `seconds`, open loop) runs three times, each on a fresh gunicorn:

1. alone: the reference (run again after the attack, 3; the ratio is to the mean of the two,
   since this shared machine's speed drifts within minutes);
2. beside the attack, sign-in limits as configured by default (CONSOLE_SIGNIN_LIMIT_*);
4. beside the attack with the limits set out of reach (the off-hub, low-priority hash check
   is then the only defence: what a distributed guesser, one try per address, would cost).

The attack is the one measured in the issue: `tries` wrong passwords for a name with no
account, `parallel` at a time, from one client, started with the paced load (and stopped
when it ends, if not done by then). Reported: webhook
p50/p99 per run, p99 with the attack / p99 alone (goal: within 1.5x), and how the tries were
answered (401: a hash was checked; 429: refused before any hash). Checked: every delivery 2xx.
"""

from __future__ import annotations

import base64
import http.client
import threading
import time
from typing import Any

import redis as redis_lib
from werkzeug.security import generate_password_hash

from . import app as bench_app
from .load import paced, policy_events
from .procs import Group
from .receive import RECEIVE, start_gunicorn

QUEUE = "bench-console-auth"
UNREACHABLE = "1000000 per minute"


def attack(port: int, tries: int, parallel: int, until: threading.Event) -> dict[str, Any]:
    """`tries` wrong Basic passwords for an unknown name, `parallel` at a time (fewer if
    `until` is set first: the webhook load it runs beside has ended)."""
    statuses: dict[str, int] = {}
    left = iter(range(tries))
    lock = threading.Lock()
    auth = "Basic " + base64.b64encode(b"mallory:not-the-password").decode()

    def one_client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if until.is_set() or next(left, None) is None:
                    break
            try:
                conn.request("GET", "/admin/events", headers={"Authorization": auth})
                answer = conn.getresponse()
                answer.read()
                status = str(answer.status)
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = "error"
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    t0 = time.monotonic()
    clients = [threading.Thread(target=one_client) for _ in range(parallel)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    return {"answers": statuses, "seconds": round(time.monotonic() - t0, 2)}


def run(
    group: Group,
    r: redis_lib.Redis,
    redis_url: str,
    rate: float = 40.0,
    seconds: float = 15.0,
    tries: int = 200,
    parallel: int = 4,
) -> dict[str, Any]:
    users = "olga:operator:" + generate_password_hash("the-operators-password")
    runs: dict[str, Any] = {}
    plan = (
        ("alone", None),
        ("attack", None),
        ("alone_after", None),
        ("attack_unlimited", UNREACHABLE),
    )
    for name, limit in plan:
        r.flushall()
        env = {"CONSOLE_USERS": users}
        if limit:
            env.update(CONSOLE_SIGNIN_LIMIT_PER_ADDRESS=limit, CONSOLE_SIGNIN_LIMIT_PER_USER=limit)
        web, port = start_gunicorn(group, redis_url, QUEUE, f"gunicorn-{name}", env)
        try:
            deliveries = policy_events(int(rate * seconds), bench_app.TEN99_SECRET, tag=name)
            guessing: dict[str, Any] = {}
            guesser, load_over = None, threading.Event()
            if name.startswith("attack"):
                guesser = threading.Thread(
                    target=lambda into, *args: into.update(attack(*args)),
                    args=(guessing, port, tries, parallel, load_over),
                )
                guesser.start()
            load = paced("127.0.0.1", port, RECEIVE, deliveries, rate).summary()
            load_over.set()
            if guesser is not None:
                guesser.join()
            runs[name] = {"webhooks": load, "attack": guessing or None}
        finally:
            group.stop(web)
    alone = (runs["alone"]["webhooks"]["p99_ms"] + runs["alone_after"]["webhooks"]["p99_ms"]) / 2
    alone = alone or 1e-9
    for name in ("attack", "attack_unlimited"):
        runs[name]["p99_ratio_to_alone"] = round(runs[name]["webhooks"]["p99_ms"] / alone, 2)
    return {
        "config": {"rate": rate, "seconds": seconds, "tries": tries, "parallel": parallel},
        "runs": runs,
        "verified": all(run["webhooks"]["non_2xx"] == 0 for run in runs.values()),
    }
