"""RQ entry points by dotted path: jobs a release before 0.2.0 queued still run.

RQ stores a job's function as a dotted path in Redis and imports it when the job runs. Jobs
queued or scheduled before `receiver/` was grouped by domain name old paths, whose modules
0.2.0 removed; the data format upgrade 1 -> 2 (receiver/store/format.py), run by the first
process of 0.2.0 to start, rewrites them. Each test takes a job this release queued, puts it
back as the previous release queued it (same id, arguments and options, JSON serializer; only
the dotted path differs) in data without a format number, runs the upgrade as a starting
process does, lets a real SimpleWorker run the job and checks what people see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from rq import Retry
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from receiver.delivery.suppressions import queue_alert
from receiver.ingest.inbox import task_id_for
from receiver.store import keys
from receiver.store.format import FORMAT, ensure
from tests.coverage_events import T0, parse, session
from tests.events import charge_succeeded, invoice
from tests.records import process_without_sending, records

OLD_PROCESS = "receiver.processing.process_event"
OLD_SEND = "receiver.deliveries.send_notice_job"
OLD_PUSH = "receiver.coverage_push.deliver"
OLD_ALERT = "receiver.address_alerts.alert_job"
NEW = "receiver.pipeline.tasks."


def fetch(rt: Any, job_id: str) -> Job:
    return Job.fetch(job_id, connection=rt.redis, serializer=rt.queue.serializer)


def queued_before(rt: Any, job_id: str, old_path: str, at: datetime | None = None) -> None:
    """Replace job `job_id` by the one the previous release queued (or scheduled for `at`)."""
    new = fetch(rt, job_id)
    retry = Retry(new.retries_left, new.retry_intervals) if new.retries_left else None
    new.delete()
    old = rt.queue.create_job(
        old_path,
        args=new.args,
        kwargs=new.kwargs,
        job_id=job_id,
        timeout=new.timeout,
        result_ttl=new.result_ttl,
        failure_ttl=new.failure_ttl,
        retry=retry,
    )
    if at is None:
        rt.queue.enqueue_job(old)
    else:
        rt.queue.schedule_job(old, at)
    assert fetch(rt, job_id).func_name == old_path
    rt.redis.delete(keys.DATA_FORMAT)  # as releases before 0.2.0 left Redis
    assert ensure(rt.redis) == FORMAT  # what the first web or worker process of 0.2.0 does


def ran_as(rt: Any, job_id: str, path: str) -> None:
    job = fetch(rt, job_id)
    assert (job.func_name, job.get_status()) == (path, JobStatus.FINISHED)


def test_an_event_job_under_its_old_path_processes_the_event(send, rt, drain, sendgrid, redis):
    event = charge_succeeded("in_old")
    assert send.ten99(event).status_code == 202
    key = keys.event("1099policy", event["id"])
    queued_before(rt, task_id_for(key), OLD_PROCESS)
    drain()
    ran_as(rt, task_id_for(key), NEW + "process_event")
    assert redis.hget(key, "status") == b"done"
    [mail] = sendgrid.accepted
    assert mail["body"]["categories"] == ["payment_confirmation"]
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "maya@example.com"


def test_a_send_job_under_its_old_path_sends_the_notice(send, rt, drain, sendgrid, redis):
    event = charge_succeeded("in_old_send")
    send.ten99(event)
    key = keys.event("1099policy", event["id"])
    [rid] = process_without_sending(rt, key)  # the notice record, then its send job queued
    rt.records.enqueue(rid)
    [rec] = records(redis, "payment_confirmation")
    [job_id] = [j for j in rt.notice_queue.job_ids if j.startswith(rec["id"])]
    queued_before(rt, job_id, OLD_SEND)
    drain()
    ran_as(rt, job_id, NEW + "send_notice")
    assert records(redis, "payment_confirmation")[0]["state"] == "accepted"
    [mail] = sendgrid.accepted
    assert mail["body"]["custom_args"]["notice_record"] == rec["id"]


def test_a_send_job_scheduled_under_its_old_path_runs_when_due(
    send, rt, drain, sendgrid, redis, clock
):
    # Scheduled three days ago for a charge now: the reminder came due a day ago. RQ's
    # scheduler goes by the wall clock and finds the old job due; the service's clock is
    # moved to the reminder's send time, when the job would have run.
    clock.now = now = clock.now - 3 * 86400
    event = invoice("invoice.created", 4325, int(now))
    event["data"]["charge_at"] = int(now + 3 * 86400)
    send.platform(event, "msg_old_reminder")
    drain()
    [rec] = records(redis, "payment_reminder")
    registry = ScheduledJobRegistry(queue=rt.notice_queue)
    [job_id] = registry.get_job_ids()
    due = registry.get_scheduled_time(job_id)
    assert due.timestamp() == float(rec["send_at"]) < now + 3 * 86400
    queued_before(rt, job_id, OLD_SEND, at=due)
    clock.now = float(rec["send_at"]) + 1
    drain(scheduler=True)
    ran_as(rt, job_id, NEW + "send_notice")
    assert records(redis, "payment_reminder")[0]["state"] == "accepted"
    [mail] = sendgrid.accepted
    assert mail["body"]["categories"] == ["payment_reminder"]


def test_a_push_job_under_its_old_path_delivers_the_change(callback, rt, drain):
    change = rt.coverage.apply(parse(session("application.complete", T0)))
    assert change.changed
    job_id = f"push-{change.pushed}"
    queued_before(rt, job_id, OLD_PUSH)
    drain()
    ran_as(rt, job_id, NEW + "push_coverage")
    [delivery] = callback.delivered
    assert delivery["id"] == change.pushed
    assert delivery["body"]["type"] == "coverage.updated"


@pytest.fixture
def org_rep(config: dict[str, Any]) -> str:
    """The rep for jobs that name none (before the runtime is built from `config`)."""
    config["ORG_REP_EMAILS"] = "ops@org.example"
    return "ops@org.example"


def test_an_alert_job_under_its_old_path_alerts_the_rep(org_rep, send, rt, drain, sendgrid):
    assert send.ten99(charge_succeeded("in_alert")).status_code == 202
    drain()
    [mail] = sendgrid.accepted
    rid = mail["body"]["custom_args"]["notice_record"]
    # SendGrid reports Maya's address bouncing: it is listed, and the rep's alert is queued.
    assert rt.suppressions.add("maya@example.com", "bounced", int(rt.clock()), rid)
    queue_alert(rt.notice_queue, rid)
    queued_before(rt, f"alert-{rid}", OLD_ALERT)
    drain()
    ran_as(rt, f"alert-{rid}", NEW + "alert_rep")
    [alert] = sendgrid.accepted[1:]
    assert alert["body"]["categories"] == ["address_suppressed_rep"]
    assert alert["body"]["personalizations"][0]["to"][0]["email"] == org_rep
