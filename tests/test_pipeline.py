"""Receive -> queue -> worker -> SendGrid, on real Redis, real RQ and real HTTP."""

from __future__ import annotations

import json
import threading

import requests

from receiver.pipeline.sweeper import sweep
from receiver.store import keys
from receiver.store.keys import event as event_key
from tests.events import charge_succeeded
from tests.signing import body_of, tv1_header


def event_record(redis, event_id):
    return {
        k.decode(): v.decode(errors="replace")
        for k, v in redis.hgetall(event_key("1099policy", event_id)).items()
    }


def test_charge_succeeded_sends_one_schema_valid_confirmation(send, rt, drain, sendgrid, redis):
    event = charge_succeeded("in_77")
    assert send.ten99(event).status_code == 202
    drain()
    assert event_record(redis, event["id"])["status"] == "done"
    [mail] = sendgrid.accepted
    body = mail["body"]
    assert body["personalizations"][0]["to"] == [
        {"email": "maya@example.com", "name": "Maya Thompson"}
    ]
    assert "$43.25" in body["subject"]
    assert body["categories"] == ["payment_confirmation"]
    record_id = body["custom_args"]["notice_record"]
    assert "@" not in record_id  # opaque: no personal data in custom args
    text, html = (c["value"] for c in body["content"])
    assert "in_77" in text and "in_77" in html
    record = rt.records.get(record_id)
    assert record["state"] == "accepted"
    assert record["message_id"] == mail["message_id"]


def test_replayed_event_sends_nothing_more(send, rt, drain, sendgrid, redis):
    event = charge_succeeded("in_5")
    send.ten99(event)
    drain()
    key = event_key("1099policy", event["id"])
    # An operator replay (or the sweeper) re-queues the event; processing runs again.
    redis.hset(key, "status", "received")
    rt.inbox.enqueue(key)
    drain()
    # A second, different event about the same charge.
    send.ten99({**charge_succeeded("in_5"), "id": "ev_other_delivery"})
    drain()
    assert len(sendgrid.accepted) == 1


def test_twenty_parallel_identical_deliveries(live_server, rt, drain, sendgrid, redis):
    body = body_of(charge_succeeded("in_par"))
    headers = {"Ten99Policy-Signature": tv1_header(body), "Content-Type": "application/json"}
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def deliver() -> None:
        barrier.wait()
        r = requests.post(
            f"{live_server}/webhooks/1099policy", data=body, headers=headers, timeout=10
        )
        statuses.append(r.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 19 + [202]
    assert len(redis.keys("event:*")) == 1
    assert redis.llen("rq:queue:events") == 1
    drain()
    assert len(sendgrid.accepted) == 1


def test_job_deleted_from_queue_is_recovered_by_sweeper(send, rt, drain, sendgrid, redis):
    import time

    event = charge_succeeded("in_lost")
    send.ten99(event)
    [job_id] = redis.lrange("rq:queue:events", 0, -1)
    redis.delete("rq:queue:events", b"rq:job:" + job_id)  # the job is lost
    drain()
    assert sendgrid.accepted == []
    # Not yet stale: nothing to do.
    assert sweep(rt, now=time.time()) == (0, 0)
    redis.delete("sweeper:lock")
    assert sweep(rt, now=time.time() + rt.cfg.SWEEP_AFTER_SECONDS + 1) == (1, 0)
    drain()
    assert event_record(redis, event["id"])["status"] == "done"
    assert len(sendgrid.accepted) == 1


def test_sweeper_leaves_waiting_jobs_alone(send, rt, redis):
    import time

    send.ten99(charge_succeeded("in_wait"))
    assert sweep(rt, now=time.time() + rt.cfg.SWEEP_AFTER_SECONDS + 1) == (0, 0)
    assert redis.llen("rq:queue:events") == 1


def test_lost_notice_send_is_recovered(send, rt, drain, sendgrid, redis):
    """The event task dies after recording the event `done` and before sending its email:
    no task is left for that email, and the sweeper sends it (once)."""
    import time

    from tests.records import process_without_sending

    event = charge_succeeded("in_n")
    send.ten99(event)
    held = process_without_sending(rt, event_key("1099policy", event["id"]))
    assert len(held) == 1  # the confirmation, held for the event's task: no task of its own
    redis.delete("rq:queue:events", "rq:queue:events-notices")
    drain()
    assert sendgrid.accepted == []
    assert sweep(rt, now=time.time() + rt.cfg.SWEEP_AFTER_SECONDS + 1) == (0, 1)
    drain()
    assert len(sendgrid.accepted) == 1
    assert redis.zcard(keys.NOTICES_PENDING) == 0


def test_an_event_and_its_email_are_one_task(send, rt, drain, sendgrid, redis):
    """The confirmation goes out from the event's own task: no send task is queued for it."""
    send.ten99(charge_succeeded("in_one"))
    drain(queues=[rt.queue])  # a worker of the events queue only
    assert len(sendgrid.accepted) == 1
    assert redis.llen("rq:queue:events-notices") == 0


def test_a_send_that_may_outlast_the_event_task_gets_its_own_task(
    config, send, rt, drain, sendgrid, redis
):
    """With a provider timeout whose send lease does not fit in what is left of the event
    task's timeout, RQ could kill the task mid-send (an `interrupted` email, left to an
    operator); the send is handed to its own task instead, and goes out once."""
    config["SENDGRID_TIMEOUT_SECONDS"] = 40  # lease 62 s: more than the event task's 60
    from receiver.config import load_config
    from receiver.pipeline import tasks
    from receiver.pipeline.runtime import build

    tasks.install(build(load_config(config), clock=rt.clock))
    send.ten99(charge_succeeded("in_slow"))
    drain(queues=[rt.queue])  # the events queue only
    assert sendgrid.accepted == []
    assert redis.llen("rq:queue:events-notices") == 1
    drain()
    assert len(sendgrid.accepted) == 1


def test_inbox_writes_the_job_exactly_as_rq_would(send, rt, redis):
    """The accept script's job hash (from RQ's own template) equals RQ's own enqueue."""
    from receiver.ingest.inbox import key_for_task, task_id_for

    send.ten99(charge_succeeded("in_fmt"))
    key = event_key("1099policy", charge_succeeded("in_fmt")["id"])
    [job_id] = redis.lrange("rq:queue:events", 0, -1)
    assert key_for_task(job_id.decode()) == key
    ours = redis.hgetall(b"rq:job:" + job_id)
    redis.delete(b"rq:job:" + job_id, "rq:queue:events")
    rt.inbox.enqueue(key)  # RQ's own Queue.enqueue_job
    assert redis.lrange("rq:queue:events", 0, -1) == [job_id] == [task_id_for(key).encode()]
    theirs = redis.hgetall(b"rq:job:" + job_id)
    stamps = {b"created_at", b"enqueued_at"}
    assert {k: v for k, v in ours.items() if k not in stamps} == {
        k: v for k, v in theirs.items() if k not in stamps
    }
    assert stamps <= set(ours)
    assert redis.sismember("rq:queues", "rq:queue:events")


def test_failing_event_is_retried_with_backoff_then_lands_in_failed_registry(
    send, rt, drain, redis
):
    from rq.job import Job
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    event = charge_succeeded("in_bad")
    send.ten99(event)
    key = event_key("1099policy", event["id"])
    redis.hset(key, "body", b"{corrupted")  # stored state went bad: processing must fail
    drain()
    record = event_record(redis, event["id"])
    assert (record["status"], record["attempts"]) == ("received", "1")
    assert record["last_error"] == "PayloadError"  # the class, never the payload
    [job_id] = ScheduledJobRegistry(queue=rt.queue).get_job_ids()  # retried with backoff
    job = Job.fetch(job_id, connection=redis, serializer=rt.queue.serializer)
    assert job.retries_left == 4
    job.retries_left = 0  # fast-forward to the last attempt
    job.save()
    rt.queue.enqueue_job(job)
    drain()
    assert event_record(redis, event["id"])["status"] == "failed"
    assert job_id in FailedJobRegistry(queue=rt.queue).get_job_ids()
    assert redis.zscore("events:pending", key) is None  # the sweeper leaves it to operators


def test_inbox_job_timestamps_are_rqs_own_format_across_seconds(rt, redis):
    """The accept script's job timestamps (whose whole-second part the inbox formats once a
    second) read as RQ's utcformat of the receive time, also when the second goes back."""
    from datetime import UTC, datetime

    from rq.utils import utcformat

    from receiver.ingest.envelopes import parse
    from receiver.ingest.inbox import task_id_for

    for i, now in enumerate((1700000000.25, 1700000000.5, 1700000001.75, 1699999999.5)):
        body = json.dumps(charge_succeeded(f"in_stamp{i}")).encode()
        event = parse(body, "1099policy")
        assert rt.inbox.accept(event, body, {}, now=now).status == "queued"
        job = redis.hgetall("rq:job:" + task_id_for(event_key("1099policy", event.id)))
        expected = utcformat(datetime.fromtimestamp(now, tz=UTC)).encode()
        assert job[b"enqueued_at"] == job[b"created_at"] == expected
