"""Reconcile: events 1099Policy gave up delivering are fetched from its API and accepted once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from receiver.pipeline.reconcile import ReconcileFailed, reconcile
from tests.events import charge_succeeded
from tests.ten99policy_server import Ten99PolicyServer

NOW = 1_790_000_000


def history(n: int) -> list[dict[str, Any]]:
    """n charge events, oldest first, one a minute."""
    out = []
    for i in range(n):
        event = charge_succeeded(f"in_r{i:03d}")
        event["created"] = NOW - (n - i) * 60
        out.append(event)
    return out


@pytest.fixture
def api(config: dict[str, Any]) -> Iterator[Ten99PolicyServer]:
    with Ten99PolicyServer() as server:
        config.update(TEN99POLICY_API_KEY="t9sk_test_reconcile", TEN99POLICY_API_BASE=server.url)
        yield server


def stored(redis: Any) -> set[str]:
    return {k.decode().rsplit(":", 1)[1] for k in redis.scan_iter("event:1099policy:*")}


def test_a_run_pages_back_to_the_newest_stored_event_and_accepts_the_rest(
    api, send, rt, drain, sendgrid, redis
):
    events = history(12)
    api.events.extend(events)
    for old in events[:3]:  # the oldest three came by webhook before the outage
        assert send.ten99(old).status_code == 202
    done = reconcile(rt, page_size=4)
    assert (done.pages, done.listed, done.recovered, done.complete) == (3, 9, 9, True)
    assert stored(redis) == {e["id"] for e in events}
    recovered = redis.hgetall(f"event:1099policy:{events[-1]['id']}")
    assert recovered[b"trigger"] == b"reconcile" and recovered[b"status"] == b"received"
    assert redis.hget(f"event:1099policy:{events[0]['id']}", "trigger") is None
    drain()
    assert len(sendgrid.accepted) == 12  # one confirmation per charge, nothing twice
    # Nothing left to do: the next run stops on its first page, and a late webhook of a
    # recovered event is a duplicate.
    assert reconcile(rt, page_size=4).listed == 0
    assert send.ten99(events[5]).status_code == 200


def test_an_event_arriving_by_webhook_during_the_run_is_accepted_once(
    api, send, rt, drain, sendgrid
):
    events = history(8)
    api.events.extend(events)

    def webhook_meanwhile(request_number: int) -> None:
        if request_number == 2:
            assert send.ten99(events[-1]).status_code == 202

    api.before_events_page = webhook_meanwhile
    done = reconcile(rt, page_size=5)
    assert (done.listed, done.recovered) == (8, 7)  # listed before it arrived; accepted once
    drain()
    assert len(sendgrid.accepted) == 8


def test_the_api_failing_midway_accepts_nothing_and_the_next_run_resumes(api, rt, redis):
    events = history(10)
    api.events.extend(events)
    api.fail_events_after(1)
    with pytest.raises(ReconcileFailed):
        reconcile(rt, page_size=4)
    assert stored(redis) == set()
    api.fail_events_after(None)
    done = reconcile(rt, page_size=4)
    assert done.recovered == 10 and stored(redis) == {e["id"] for e in events}


def test_paging_that_does_not_page_stops_safely(api, rt, redis):
    api.events.extend(history(10))
    api.ignore_starting_after = True
    done = reconcile(rt, page_size=4)
    assert (done.pages, done.recovered, done.complete) == (2, 4, False)
    assert len(stored(redis)) == 4  # the newest page; an operator is told it is partial


def test_since_bounds_how_far_back_a_run_goes(api, rt, redis):
    events = history(10)
    api.events.extend(events)
    done = reconcile(rt, since=events[6]["created"], page_size=4)
    assert done.recovered == 4 and done.complete
    assert stored(redis) == {e["id"] for e in events[6:]}


def test_without_an_api_key_it_says_so(rt):
    with pytest.raises(ReconcileFailed, match="TEN99POLICY_API_KEY"):
        reconcile(rt)


def test_scheduled_runs_take_turns_by_lock_and_show_in_metrics(api, rt, redis, client):
    from prometheus_client.parser import text_string_to_metric_families

    from receiver.pipeline.reconcile import run_scheduled

    api.events.extend(history(3))
    first = run_scheduled(rt)
    assert first is not None and first.recovered == 3
    assert run_scheduled(rt) is None  # another worker's turn already taken this interval
    assert 0 < redis.ttl("reconcile:lock") <= rt.cfg.RECONCILE_INTERVAL_MINUTES * 60
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(client.get("/metrics").get_data(True))
        for s in family.samples
    }
    assert samples["ten99_receiver_reconcile_recovered_events_total"] == 3
    assert samples["ten99_receiver_last_reconcile_success_timestamp_seconds"] > 0


def test_scheduled_runs_are_off_without_an_interval(api, config, rt):
    from dataclasses import replace

    from receiver.pipeline.reconcile import run_scheduled

    api.events.extend(history(2))
    rt.cfg = replace(rt.cfg, RECONCILE_INTERVAL_MINUTES=0)
    assert run_scheduled(rt) is None
