"""bench/app.py's receive path without the console's index: the real accept script minus
exactly its `events:index` write, derived when the bench app starts (bench/run.py's index line).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from werkzeug.test import Client

from bench import app as bench_app
from bench.load import policy_events
from receiver.store import keys


def test_without_index_drops_only_the_index_write(rt: Any) -> None:
    real = rt.inbox._accept_script().source.splitlines()
    plain = bench_app.without_index("\n".join(real)).splitlines()
    dropped = [line for line in real if line not in plain]
    assert len(plain) == len(real) - 1
    assert dropped == [f"redis.call('ZADD', \"{keys.EVENTS_INDEX}\", ARGV[4], key)"]
    with pytest.raises(RuntimeError):
        bench_app.without_index("\n".join(plain))  # no index write left to drop


def test_the_bench_app_serves_both_receive_paths(
    config: dict[str, Any], redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_REDIS_URL", config["REDIS_URL"])
    client = Client(bench_app.create())
    indexed, plain = policy_events(2, bench_app.TEN99_SECRET, tag=f"t{time.time_ns()}")
    for path, delivery in ((bench_app.RECEIVE_PATH, indexed), (bench_app.WITHOUT_INDEX, plain)):
        answer = client.post(
            path,
            data=delivery.body,
            headers={"Ten99Policy-Signature": delivery.signature},
            content_type="application/json",
        )
        assert answer.status_code == 202
        assert redis.exists(keys.event("1099policy", delivery.event_id))
    assert redis.zrange(keys.EVENTS_INDEX, 0, -1) == [
        keys.event("1099policy", indexed.event_id).encode()
    ]
    assert client.post("/__bare").status_code == 204
