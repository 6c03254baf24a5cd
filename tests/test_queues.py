"""Queues by urgency (issue 13): decided work on the notices queue, which workers take first.

A worker listens on `<QUEUE_NAME>-notices` before `<QUEUE_NAME>` (RQ dequeues its queues in
order), so a backlog of events never holds back emails already decided. Real Redis, real RQ
workers (the `drain` fixture uses worker.py's queue list), the SendGrid stand-in.
"""

from __future__ import annotations

import argparse
import time

import pytest
from rq.registry import ScheduledJobRegistry

from receiver.pipeline.sweeper import sweep
from receiver.processes.worker import _queue_kinds
from receiver.store import keys
from tests.events import charge_succeeded, invoice
from tests.records import process_without_sending, records

EVENTS = "rq:queue:events"
NOTICES = "rq:queue:events-notices"


def statuses(redis, n):
    """The status of events ev_paid_in_0 .. in_<n-1>, in that order."""
    return [
        redis.hget(keys.event("1099policy", f"ev_paid_in_{i}"), "status").decode() for i in range(n)
    ]


def watch_sends(rt, redis, n):
    """Record, at each SendGrid call, how many of the n events are still `received`."""
    seen = []
    send = rt.mailer.send

    def watched(message):
        seen.append(statuses(redis, n).count("received"))
        return send(message)

    rt.mailer.send = watched  # type: ignore[method-assign]
    return seen


def test_the_workers_queues_are_notices_then_events(rt):
    assert [q.name for q in rt.queues] == ["events-notices", "events"]
    assert _queue_kinds("notices,events") == ["notices", "events"]
    assert _queue_kinds("events") == ["events"]
    for bad in ("", "notices,notices", "alerts"):
        with pytest.raises(argparse.ArgumentTypeError):
            _queue_kinds(bad)


def test_an_email_already_decided_goes_out_before_an_event_backlog(
    send, rt, drain, sendgrid, redis
):
    n = 8
    for i in range(n):
        send.ten99(charge_succeeded(f"in_{i}"))
    # The last event was processed by a worker that died before sending its email; the
    # sweeper (or a release, a retry) queued that send: the email is decided and queued.
    [rid] = process_without_sending(rt, keys.event("1099policy", f"ev_paid_in_{n - 1}"))
    rt.records.requeue(rid)
    assert redis.llen(NOTICES) == 1 and redis.llen(EVENTS) == n
    seen = watch_sends(rt, redis, n)
    drain()
    first = sendgrid.accepted[0]["body"]["custom_args"]["notice_record"]
    [decided] = [
        r for r in records(redis, "payment_confirmation") if r["cause"].endswith(f"_{n - 1}")
    ]
    assert first == decided["id"]
    assert seen[0] == n - 1  # sent while every other event still waited
    assert statuses(redis, n) == ["done"] * n
    assert len(sendgrid.accepted) == n


def test_each_email_goes_out_before_the_next_event_of_a_backlog(send, rt, drain, sendgrid, redis):
    """Before the change, every event's send task waited behind the whole backlog: the first
    email went out after the last event was processed. Now the worker takes each decided
    email before the next event."""
    n = 8
    for i in range(n):
        send.ten99(charge_succeeded(f"in_{i}"))
    seen = watch_sends(rt, redis, n)
    drain()
    assert seen == list(range(n - 1, -1, -1))  # the k-th email with n-k events still waiting
    assert len(sendgrid.accepted) == n
    assert redis.llen(NOTICES) == 0 and redis.llen(EVENTS) == 0


def test_scheduled_reminders_and_retries_land_on_the_notices_queue(
    send, rt, drain, sendgrid, redis, clock
):
    now = clock.now
    event = invoice("invoice.created", 4325, int(now))
    event["data"]["charge_at"] = int(now + 3 * 86400)  # reminder due in two days
    send.platform(event, "msg_reminder")
    drain()
    [reminder] = records(redis, "payment_reminder")
    scheduled = ScheduledJobRegistry(queue=rt.notice_queue).get_job_ids()
    assert [j for j in scheduled if j.startswith(reminder["id"])]
    assert ScheduledJobRegistry(queue=rt.queue).get_job_ids() == []

    sendgrid.script(("status", 500))  # the confirmation's first send fails: retried later
    send.ten99(charge_succeeded("in_retry"))
    drain()
    [confirmation] = records(redis, "payment_confirmation")
    assert confirmation["state"] == "pending" and sendgrid.accepted == []
    retries = ScheduledJobRegistry(queue=rt.notice_queue).get_job_ids()
    assert [j for j in retries if j.startswith(confirmation["id"])]
    assert ScheduledJobRegistry(queue=rt.queue).get_job_ids() == []


def test_the_sweeper_requeues_a_lost_send_task_onto_the_notices_queue(
    send, rt, drain, sendgrid, redis
):
    event = charge_succeeded("in_lost")
    send.ten99(event)
    process_without_sending(rt, keys.event("1099policy", event["id"]))
    redis.delete(NOTICES, EVENTS)  # no send task (and the event's, a re-run)
    assert sweep(rt, now=time.time() + rt.cfg.SWEEP_AFTER_SECONDS + 1) == (0, 1)
    assert redis.llen(NOTICES) == 1 and redis.llen(EVENTS) == 0
    drain()
    assert len(sendgrid.accepted) == 1


def test_the_sweeper_looks_for_a_waiting_event_task_in_its_own_queue(send, rt, redis):
    """The sweeper's "still waiting" check reads the list of the queue RQ names as the task's
    origin (the events queue), not the notices queue the workers take first."""
    send.ten99(charge_succeeded("in_wait"))
    later = time.time() + rt.cfg.SWEEP_AFTER_SECONDS + 1
    assert sweep(rt, now=later) == (0, 0)
    redis.delete("sweeper:lock")
    [job_id] = [j.decode() for j in redis.lrange(EVENTS, 0, -1)]
    redis.lrem(EVENTS, 0, job_id)  # the list lost it: the job hash alone is not "waiting"
    assert sweep(rt, now=later + rt.cfg.SWEEP_AFTER_SECONDS + 1) == (1, 0)
    assert redis.llen(EVENTS) == 1 and redis.llen(NOTICES) == 0
