"""Logs: one JSON object per line with ids and outcomes, never a person's address or name."""

from __future__ import annotations

import json
import logging

import pytest

from receiver.logs import JsonFormatter, TextFormatter, record
from tests.events import MAYA, assignment_created, charge_succeeded, platform_event

PEOPLE = ("maya@example.com", "Maya", "Thompson", "sam.rivera@example.com", "Rivera")


def test_a_full_pipeline_logs_what_happened_and_nobody_s_name(send, rt, drain, sendgrid, caplog):
    caplog.set_level(logging.DEBUG)
    sam = {
        "id": "cn_2",
        "email": "sam.rivera@example.com",
        "first_name": "Sam",
        "last_name": "Rivera",
    }
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    assert send.ten99(charge_succeeded("in_2", contractor=sam)).status_code == 202
    assert send.ten99(charge_succeeded("in_1")).status_code == 200  # a duplicate
    assert send.platform(assignment_created(), "msg_1").status_code == 202
    assert send.platform(platform_event("contractor.updated", MAYA), "msg_2").status_code == 202
    assert send.ten99(charge_succeeded("in_3"), t=1).status_code == 401  # refused
    drain()
    assert len(sendgrid.accepted) >= 2

    formatter = JsonFormatter()
    lines = [formatter.format(entry) for entry in caplog.records]
    output = "\n".join(lines)
    for secret in (*PEOPLE, "SG.test-key"):
        assert secret not in output
    parsed = [json.loads(line) for line in lines]
    assert all("\n" not in line for line in lines)
    webhooks = [p for p in parsed if p["msg"] == "webhook"]
    assert {p["outcome"] for p in webhooks} == {"queued", "duplicate"}
    assert all(p["duration_ms"] >= 0 and p["event_id"] for p in webhooks)
    processed = [p for p in parsed if p["msg"] == "event processed"]
    assert len(processed) == 4 and {p["outcome"] for p in processed} == {"done"}
    assert {p["type"] for p in processed} >= {"invoice.charge_card_succeeded", "assignment.created"}
    [refused] = [p for p in parsed if p["msg"] == "refused"]
    assert refused["reason"] == "invalid_signature" and refused["http_status"] == 401


def test_only_listed_fields_can_be_logged(caplog):
    caplog.set_level(logging.INFO)  # a line that is written (disabled levels cost nothing)
    with pytest.raises(ValueError, match="email"):
        record(logging.getLogger("t"), "oops", email="maya@example.com")


def test_text_lines_carry_the_same_facts():
    entry = logging.LogRecord("receiver.x", logging.INFO, __file__, 1, "notice sent", None, None)
    entry.receiver_fields = {"notice": "payment_confirmation", "outcome": "accepted"}
    line = TextFormatter().format(entry)
    assert line.endswith("notice sent      notice=payment_confirmation outcome=accepted")
    assert json.loads(JsonFormatter().format(entry))["notice"] == "payment_confirmation"


def test_a_worker_process_writes_json_lines(config, send):
    """The real worker entry point, as Procfile runs it: every line it writes is JSON."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    assert send.ten99(charge_succeeded("in_w")).status_code == 202
    env = {**os.environ, **{k: str(v) for k, v in config.items()}, "LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    messages = [line["msg"] for line in lines]
    assert "event processed" in messages and "notice sent" in messages, messages
    assert "maya@example.com" not in done.stderr and "Thompson" not in done.stderr


def refusals(caplog) -> list[dict]:
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(e)) for e in caplog.records]
    return [line for line in lines if line["msg"] == "refused"]


def test_a_refused_signature_says_which_problem_and_which_sender(send, client, clock, caplog):
    caplog.set_level(logging.WARNING)
    event = charge_succeeded("in_1")
    body = json.dumps(event).encode()
    tries = {
        "no_header": lambda: client.post("/webhooks/1099policy", data=body),
        "malformed": lambda: client.post(
            "/webhooks/1099policy", data=body, headers={"Ten99Policy-Signature": "garbage"}
        ),
        "no_matching_secret": lambda: send.ten99(event, secret="not-the-secret"),
        "timestamp_outside_tolerance": lambda: send.ten99(event, t=int(clock()) - 3600),
    }
    for problem, attempt in tries.items():
        caplog.clear()
        assert attempt().status_code == 401
        [line] = refusals(caplog)
        assert (line["source"], line["reason"], line["problem"]) == (
            "1099policy",
            "invalid_signature",
            problem,
        )
        assert "path" not in line
    caplog.clear()
    assert (
        send.platform(
            platform_event("contractor.updated", MAYA), "msg_1", secret="whsec_" + "A" * 43 + "="
        ).status_code
        == 401
    )
    [line] = refusals(caplog)
    assert (line["source"], line["problem"]) == ("platform", "no_matching_secret")


def test_a_failed_try_of_an_event_is_one_line_not_a_traceback(send, rt, caplog):
    from receiver.store.workers import ReceiverWorker

    event = charge_succeeded("in_broken")
    assert send.ten99(event).status_code == 202
    rt.redis.hset(f"event:1099policy:{event['id']}", "body", b"{broken")
    caplog.set_level(logging.DEBUG)
    worker = ReceiverWorker(rt.queues, connection=rt.redis, serializer=rt.queue.serializer)
    worker.work(burst=True, logging_level="WARNING")
    formatter = JsonFormatter()
    lines = [formatter.format(e) for e in caplog.records if e.levelno >= logging.WARNING]
    assert not any("Traceback" in line for line in lines), lines
    [failed] = [json.loads(line) for line in lines]
    assert failed["msg"] == "event processed" and failed["event_id"] == event["id"]
    assert (failed["outcome"], failed["error"], failed["next_try_in"]) == (
        "retrying",
        "PayloadError",
        5,  # ingest/inbox.py's TASK_RETRY: 5 s, 30 s, 2 min, 10 min, 30 min
    )
    assert failed["at"].startswith("receiver/ingest/") and failed["at"].split(":")[1].isdigit()
    stored = rt.redis.hgetall(f"event:1099policy:{event['id']}")
    assert stored[b"status"] == b"received" and stored[b"last_error"] == b"PayloadError"
    assert float(stored[b"retry_at"]) > 0


def test_a_failed_task_other_than_an_event_is_one_line(rt, caplog):
    from rq import Retry

    from receiver.store.workers import ReceiverWorker

    rt.notice_queue.enqueue("receiver.pipeline.tasks.no_such_task", retry=Retry(max=1, interval=7))
    caplog.set_level(logging.DEBUG)
    worker = ReceiverWorker([rt.notice_queue], connection=rt.redis, serializer=rt.queue.serializer)
    worker.work(burst=True, logging_level="WARNING")
    formatter = JsonFormatter()
    lines = [formatter.format(e) for e in caplog.records if e.levelno >= logging.WARNING]
    assert not any("Traceback" in line for line in lines), lines
    [failed] = [json.loads(line) for line in lines]
    assert (failed["msg"], failed["task"], failed["outcome"], failed["next_try_in"]) == (
        "task failed",
        "no_such_task",
        "retrying",
        7,
    )
    assert failed["error"] in ("AttributeError", "ValueError") and failed["at"]
