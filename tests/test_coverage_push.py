"""`coverage.updated` over real HTTP to a receiver that verifies it with standardwebhooks."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIWebhookRequest
from rq import Retry

from receiver.coverage import document as coverage
from receiver.coverage import push as coverage_push
from receiver.pipeline.tasks import push_coverage
from receiver.views.openapi import document
from tests.callback_server import SECRET
from tests.coverage_events import T0, parse, policy, session


def work_until(drain: Any, done: Any, timeout: float = 15) -> None:
    """Run jobs, due retries included (RQ's scheduler goes by the wall clock), until `done()`;
    `timeout` only bounds a test that would otherwise hang."""
    deadline = time.monotonic() + timeout
    drain(scheduler=True)
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)
        drain(scheduler=True)


def push_jobs(rt: Any) -> list[str]:
    return [j for j in rt.notice_queue.job_ids if j.startswith("push-")]


def check_against_openapi(raw: bytes) -> None:
    """The delivery is what /api/openapi.json documents under `webhooks`."""
    request = requests.Request(
        "POST",
        "https://platform.example/hooks",
        data=raw,
        headers={"Content-Type": "application/json"},
    ).prepare()
    OpenAPI.from_dict(document()).validate_request(
        RequestsOpenAPIWebhookRequest(request, "coverage.updated")
    )


def test_each_change_is_pushed_once_and_verifies(callback, send, rt, drain):
    send.ten99(policy("policy.active", T0))  # parked: no change, no push
    send.ten99(session("application.complete", T0 - 10))
    drain()
    [delivery] = callback.delivered
    body = delivery["body"]
    check_against_openapi(delivery["raw"])
    doc = rt.coverage.get("cn_1")
    assert body["type"] == "coverage.updated"
    assert delivery["id"] == coverage_push.webhook_id(doc)
    assert {k: v for k, v in body["data"].items() if k != "covered_now"} == coverage.current(doc)
    assert body["data"]["policies"][0]["documents"]["gl_coi_pdf_url"].startswith("https://")

    send.ten99(policy("policy.cancelled", T0 + 500))
    drain()
    assert len(callback.delivered) == 2
    assert callback.delivered[1]["body"]["data"]["policies"][0]["status"] == "cancelled"
    ids = [d["id"] for d in callback.delivered]
    assert len(set(ids)) == 2


def test_duplicates_replays_and_older_events_push_nothing(callback, send, rt, drain, redis):
    send.ten99(session("application.complete", T0))
    send.ten99(policy("policy.active", T0 + 20))
    drain()
    before = len(callback.delivered)
    assert send.ten99(policy("policy.active", T0 + 20)).status_code == 200  # duplicate
    [key] = [k for k in redis.keys("event:1099policy:*") if b"policy.active" in k]
    redis.hset(key, "status", "received")
    rt.inbox.enqueue(key.decode())  # an operator replay
    send.ten99(policy("policy.active", T0 + 10))  # older than what we have
    drain()
    assert len(callback.delivered) == before


def test_failure_then_success_is_one_change_with_one_id(callback, send, rt, drain):
    rt.coverage.push_retry = Retry(max=3, interval=1)
    callback.script(500, 503)
    send.ten99(session("application.complete", T0))
    work_until(drain, lambda: callback.delivered)
    assert [a["verified"] for a in callback.attempts] == [True, True, True]
    assert len({a["id"] for a in callback.attempts}) == 1
    assert len(callback.delivered) == 1


def test_a_rerun_job_sends_the_same_id_and_bytes(callback, rt):
    doc = coverage.apply(coverage.empty("cn_1"), parse(session("application.complete", T0)))
    msg_id, body = coverage_push.announcement(doc, T0)
    for _ in range(2):
        assert push_coverage(msg_id, body).startswith("delivered")
    first, second = callback.attempts
    assert first["id"] == second["id"] == msg_id and first["raw"] == second["raw"]


def test_no_callback_url_means_no_push(send, rt, drain):
    assert rt.cfg.PLATFORM_CALLBACK_URL is None
    send.ten99(session("application.complete", T0))
    assert push_jobs(rt) == []
    drain()
    assert rt.coverage.get("cn_1") is not None
    assert push_coverage("cov_x", "{}") == "skipped"


def test_refusals_and_network_errors_fail_the_job(callback):
    with pytest.raises(coverage_push.CallbackFailed, match="401"):
        coverage_push.send(
            callback.url, "whsec_" + "QUFBQUFBQUFBQUFBQUFBQQ==", "cov_1", "{}", time.time()
        )
    callback.script(302)
    with pytest.raises(coverage_push.CallbackFailed, match="302"):
        coverage_push.send(callback.url, SECRET, "cov_1", "{}", time.time())
    with pytest.raises(coverage_push.CallbackFailed, match="ConnectionError"):
        coverage_push.send("http://127.0.0.1:9/none", SECRET, "cov_1", "{}", time.time(), timeout=1)
