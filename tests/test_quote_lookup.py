"""Policy events known only through a quote nobody mapped: after QUOTE_LOOKUP_DELAY_SECONDS a
task asks 1099Policy's API (the real `ten99policy` client against the HTTP stand-in) whose the
quote is, and applies what was parked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from receiver.coverage import document as coverage
from receiver.pipeline.quotes import QuoteLookupFailed
from receiver.pipeline.tasks import lookup_quote
from tests.coverage_events import T0, policy, session
from tests.ten99policy_server import Ten99PolicyServer

API_KEY = "t9sk_test_quote_lookup"


@pytest.fixture
def api(config: dict[str, Any]) -> Iterator[Ten99PolicyServer]:
    with Ten99PolicyServer() as server:
        config.update(TEN99POLICY_API_KEY=API_KEY, TEN99POLICY_API_BASE=server.url)
        yield server


def scheduled(rt) -> dict[str, float]:
    registry = ScheduledJobRegistry(queue=rt.notice_queue)
    return {i: registry.get_scheduled_time(i).timestamp() for i in registry.get_job_ids()}


def quote_requests(api: Ten99PolicyServer) -> list[dict[str, Any]]:
    return [r for r in api.requests if r["path"].startswith("/api/v1/quotes/")]


def park_a_policy(send, drain, rt) -> None:
    assert send.ten99(policy("policy.active", T0)).status_code == 202
    drain()
    assert rt.coverage.get("cn_1") is None  # no event named the contractor: parked


def test_a_parked_policy_is_applied_after_its_quote_is_looked_up(
    api, send, rt, drain, redis, clock
):
    park_a_policy(send, drain, rt)
    # A second event parked under the same quote adds no second lookup.
    send.ten99(policy("policy.active", T0 + 5, pid="pl_1"))
    drain()
    assert scheduled(rt) == {"quote-lookup-qt_1": clock.now + 300}
    assert quote_requests(api) == []  # nothing asked before the delay

    api.quotes["qt_1"] = {"contractor": "cn_1", "job": "jb_1", "coverage_type": ["general"]}
    clock.now += 300
    assert lookup_quote("qt_1") == "applied"
    [request] = quote_requests(api)
    assert request["path"] == "/api/v1/quotes/qt_1"
    assert request["authorization"] == f"Bearer {API_KEY}"
    doc = rt.coverage.get("cn_1")
    assert coverage.current(doc)["policies"][0]["status"] == "active"
    assert redis.keys("coverage:parked:*") == []
    assert redis.get("coverage:owner:quote:qt_1") == b"cn_1"
    assert redis.get("coverage:owner:policy:pl_1") == b"cn_1"
    # Known now: a later policy event goes straight to the document, with no lookup.
    send.ten99(policy("policy.cancelled", T0 + 50))
    drain()
    assert coverage.current(rt.coverage.get("cn_1"))["policies"][0]["status"] == "cancelled"
    assert len(quote_requests(api)) == 1
    # The task again (RQ ran it twice): nothing to do, no call.
    assert lookup_quote("qt_1") == "mapped"
    assert len(quote_requests(api)) == 1


def test_the_scheduled_task_runs_through_rq(api, config, send, rt, drain, clock):
    rt.coverage.quote_lookup_delay = 0  # due at once, so RQ's scheduler (wall clock) runs it
    api.quotes["qt_1"] = {"contractor": {"id": "cn_1"}}
    park_a_policy(send, drain, rt)
    drain(scheduler=True)
    drain()
    assert coverage.current(rt.coverage.get("cn_1"))["policies"][0]["status"] == "active"
    assert (
        Job.fetch(
            "quote-lookup-qt_1", connection=rt.redis, serializer=rt.queue.serializer
        ).return_value()
        == "applied"
    )


def test_an_api_failure_keeps_the_events_parked_and_the_task_is_retried(
    api, send, rt, drain, redis, clock
):
    park_a_policy(send, drain, rt)
    job = Job.fetch("quote-lookup-qt_1", connection=rt.redis, serializer=rt.queue.serializer)
    assert job.retries_left == 5 and job.retry_intervals[0] == 60
    parked_before = {k: redis.hgetall(k) for k in redis.keys("coverage:parked:*")}
    api.fail_with(500)
    with pytest.raises(QuoteLookupFailed):
        lookup_quote("qt_1")
    assert {k: redis.hgetall(k) for k in redis.keys("coverage:parked:*")} == parked_before
    assert redis.keys("coverage:owner:*") == [] and rt.coverage.get("cn_1") is None
    # 1099Policy answers again: the retry applies the events.
    api.reset()
    api.quotes["qt_1"] = {"contractor": "cn_1"}
    assert lookup_quote("qt_1") == "applied"
    assert coverage.current(rt.coverage.get("cn_1"))["policies"][0]["status"] == "active"


@pytest.mark.parametrize(
    "quote,outcome",
    [(None, "not_found"), ({"job": "jb_1"}, "no_contractor")],
    ids=["unknown quote", "quote without contractor"],
)
def test_an_answer_without_a_contractor_leaves_the_events_parked(
    quote, outcome, api, send, rt, drain, redis
):
    park_a_policy(send, drain, rt)
    if quote is not None:
        api.quotes["qt_1"] = quote
    assert lookup_quote("qt_1") == outcome
    assert redis.exists("coverage:parked:quote:qt_1", "coverage:parked:policy:pl_1") == 2
    assert rt.coverage.get("cn_1") is None


def test_no_lookup_when_an_event_maps_the_quote_first(api, send, rt, drain, redis):
    park_a_policy(send, drain, rt)
    send.ten99(session("application.complete", T0 - 10))  # names cn_1 and qt_1
    drain()
    assert coverage.current(rt.coverage.get("cn_1"))["policies"][0]["status"] == "active"
    assert lookup_quote("qt_1") == "mapped"
    assert quote_requests(api) == []


def test_no_lookup_is_scheduled_without_an_api_key(send, rt, drain, redis):
    park_a_policy(send, drain, rt)
    assert scheduled(rt) == {}
    assert redis.exists("coverage:parked:quote:qt_1") == 1
