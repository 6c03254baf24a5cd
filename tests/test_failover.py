"""A Sentinel failover under a stream of deliveries, with the real processes (issue 12).

A primary, one replica and three sentinels (`redis-server --sentinel`, the same binary), the
Procfile's web process and two `worker.py`, all found through Sentinel (REDIS_SENTINELS).
About 100 signed deliveries a second for 30 s (15 s without acks), from 200 contractors.
10 s in, the primary is SIGKILLed; Sentinel promotes the replica, and the old primary comes
back (as a supervisor would restart it) to be made a replica of the new one. Counted
afterwards, on the new primary:

- REDIS_MIN_REPLICA_ACKS=1: every delivery that got a 2xx is stored and processed, every
  stored event was mailed once and no email went out twice; deliveries during the switch got
  503 (never a 500, never a hang past the sender's 5 s).
- REDIS_MIN_REPLICA_ACKS=0: the same, except that a 2xx'd delivery may be missing: what the
  primary acknowledged and had not yet sent to the replica when it died. The count is printed
  (docs/redis-ha.md reports it); only "a handful, not a tenth" is asserted, as it depends on timing.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from receiver.config import load_config
from receiver.store import keys
from receiver.store.connection import build_redis
from receiver.store.embedded import RedisServer, free_port
from tests.events import payer
from tests.processes import deliver, start_web, start_worker, stop, wait_until
from tests.sentinels import MASTER, Sentinels, sentinel_cluster

RATE = 100  # deliveries a second
KILL_AT = 10  # seconds into the stream
# Payers, round robin. Spread as a platform's are: with one payer, both workers' coverage
# transactions WATCH the same keys, keep conflicting, and the drain crawls on a loaded box.
CONTRACTORS = 200
# The drain is given as long as it keeps going: the test fails when no email has come for this
# long (a stalled worker), not when a loaded machine is slow.
STALL_SECONDS = 60


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, Sentinels]]:
    with sentinel_cluster(tmp_path) as servers:
        yield servers


def test_a_patient_client_waiting_in_a_dequeue_follows_the_failover(cluster, config):
    """The worker's client, blocked in BLPOP (RQ's dequeue) when the primary dies, reconnects
    to the promoted replica: redis-py's retry reconnected to the dead address forever
    (store/connection.py's PrimaryConnection), and an idle worker never took a job again."""
    primary, replica, sentinels = cluster
    settings = {**config, "REDIS_SENTINELS": sentinels.setting, "REDIS_SENTINEL_MASTER": MASTER}
    client = build_redis(load_config(settings), patient=True)
    client.ping()
    popped: list[Any] = []
    waiting = threading.Thread(
        target=lambda: popped.append(client.blpop(["q"], timeout=60)), daemon=True
    )
    waiting.start()
    assert wait_until(lambda: primary.client().info("clients")["blocked_clients"] == 1)
    primary.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    primary.proc.wait()  # type: ignore[union-attr]
    assert wait_until(lambda: sentinels.primary_port() == replica.port, timeout=60)
    replica.client().rpush("q", "job")
    waiting.join(30)
    assert popped == [(b"q", b"job")]


def stream(
    port: int, results: dict[str, int | None], start: float, seconds: int, lane: int, lanes: int
) -> None:
    """Deliveries `lane`, `lane + lanes`, ... at RATE / lanes a second for `seconds`."""
    n = lane
    while n < RATE * seconds:
        due = start + n / RATE
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        invoice = f"in_fo_{n}"
        results[invoice] = deliver(port, invoice, contractor=payer(n, CONTRACTORS, "fo"))
        n += lanes


def drained(count: Callable[[], int], target: int) -> bool:
    """Wait until `count()` reaches `target`, for as long as it keeps growing."""
    seen, since = count(), time.monotonic()
    while seen < target:
        time.sleep(0.2)
        now = count()
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > STALL_SECONDS:
            return False
    return True


def tails(directory: Path) -> str:
    """The last lines of each process's log, for a failure's message."""
    return "\n".join(
        f"== {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:])
        for log in sorted(directory.glob("*.log"))
    )


@pytest.mark.slow
# With acks the stream runs the 30 s; without, 15 s are enough to see what is lost (and
# keep `make test` shorter: each run drains every stored event before it counts).
@pytest.mark.parametrize(("acks", "seconds"), [(1, 30), (0, 15)])
def test_failover_under_load(cluster, config, sendgrid, tmp_path, acks, seconds):
    primary, replica, sentinels = cluster
    config.update(
        REDIS_SENTINELS=sentinels.setting,
        REDIS_SENTINEL_MASTER=MASTER,
        REDIS_MIN_REPLICA_ACKS=str(acks),
        SWEEP_AFTER_SECONDS="5",
    )
    workers = [
        start_worker(config, tmp_path / f"worker-{i}.log", "--sweep-interval", "1") for i in (1, 2)
    ]
    port = free_port()
    web = start_web(config, port, tmp_path / "web.log")
    results: dict[str, int | None] = {}
    try:
        start = time.monotonic() + 0.5
        lanes = [
            threading.Thread(
                target=stream, args=(port, results, start, seconds, lane, 4), daemon=True
            )
            for lane in range(4)
        ]
        for lane in lanes:
            lane.start()
        time.sleep(max(0.0, start + KILL_AT - time.monotonic()))
        primary.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        primary.proc.wait()  # type: ignore[union-attr]
        killed = time.monotonic()
        assert wait_until(lambda: sentinels.primary_port() == replica.port, timeout=60)
        promoted = time.monotonic() - killed
        # Restarted, as a supervisor would, once every sentinel names the new primary; Sentinel
        # makes it a replica. Sooner, a sentinel that has not heard of the failover yet (they
        # learn it from each other within about 2 s) sees it answer again, as a primary with
        # its old data, and names it to clients that connect: docs/redis-ha.md.
        primary.start()
        for lane in lanes:
            lane.join(seconds + 60)
        new_primary = redis_lib.Redis(port=replica.port)

        statuses = list(results.values())
        ok = sorted(inv for inv, status in results.items() if status == 202)
        stored = {
            key.decode().removeprefix("event:1099policy:ev_paid_")
            for key in new_primary.scan_iter("event:1099policy:*", count=1000)
        }
        lost = [inv for inv in ok if inv not in stored]
        # Everything stored is processed and mailed, once (the 503'd deliveries whose write
        # survived too: their retry would have been a duplicate).
        done = drained(lambda: len(sendgrid.accepted), len(stored))
        by_status = Counter(
            new_primary.hget(keys.event("1099policy", f"ev_paid_{inv}"), "status") for inv in stored
        )
        assert done, (len(stored), len(ok), len(sendgrid.accepted), by_status, tails(tmp_path))
        time.sleep(2)  # a second email would have come by now
        mailed = [m["body"]["custom_args"]["notice_record"] for m in sendgrid.accepted]
        undone = [
            inv
            for inv in stored
            if new_primary.hget(keys.event("1099policy", f"ev_paid_{inv}"), "status") != b"done"
        ]
        ready = json.loads(readyz(port))
        print(
            f"acks={acks}: {len(statuses)} deliveries, {len(ok)} 2xx, "
            f"{statuses.count(503)} 503, {len(stored)} stored on the new primary, "
            f"{len(lost)} 2xx'd lost, {len(mailed)} mails; promoted {promoted:.1f} s after "
            f"the kill; /readyz {ready}"
        )
        assert set(statuses) <= {202, 503}, {s: statuses.count(s) for s in set(statuses)}
        assert statuses.count(503) > 0 and ok
        if acks:
            assert lost == []
        else:  # at most what was in flight to the replica: a handful, never most of them
            assert len(lost) * 10 < len(ok)
        assert undone == []
        assert len(mailed) == len(set(mailed)) == len(stored)
        assert ready["role"] == "master" and ready["replicas"] == 1
        assert [w.poll() for w in workers] == [None, None] and web.poll() is None
    finally:
        stop(web)
        for w in workers:
            stop(w)


def readyz(port: int) -> str:
    """/readyz once the restarted old primary is a replica of the new one."""
    body = ""

    def replicated() -> bool:
        nonlocal body
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/readyz")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        return json.loads(body).get("replicas") == 1

    wait_until(replicated, timeout=60)
    return body
