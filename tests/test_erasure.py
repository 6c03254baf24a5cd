"""forget-contractor: nothing personal about the contractor is left in Redis; others keep theirs."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from receiver.cli import forget_contractor_command
from tests.coverage_events import T0, assignment, session
from tests.events import MAYA, assignment_created, charge_succeeded, platform_event

SAM = {"id": "cn_2", "email": "sam.rivera@example.com", "first_name": "Sam", "last_name": "Rivera"}
MAYA_TRACES = (b"maya@example.com", b"Maya", b"Thompson")


def every_value(redis: Any) -> bytes:
    """Every value of every key in Redis, concatenated (keys are ids and hashes)."""
    out = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key)
        if kind == b"string":
            out.append(redis.get(key))
        elif kind == b"hash":
            out.extend(k + b"=" + v for k, v in redis.hgetall(key).items())
        elif kind == b"set":
            out.extend(redis.smembers(key))
        elif kind == b"zset":
            out.extend(redis.zrange(key, 0, -1))
        elif kind == b"list":
            out.extend(redis.lrange(key, 0, -1))
    return b"\n".join(out)


@pytest.fixture
def forget(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    monkeypatch.chdir(tmp_path)
    for name, value in config.items():
        monkeypatch.setenv(name, str(value))
    return lambda *args: CliRunner().invoke(forget_contractor_command, list(args))


def test_forgetting_a_contractor_leaves_nothing_personal(send, rt, drain, sendgrid, redis, forget):
    charge = charge_succeeded("in_1")
    assert send.ten99(charge).status_code == 202
    assert send.ten99(charge_succeeded("in_2", contractor=SAM)).status_code == 202
    later = int(rt.clock()) + 10 * 86400  # its reminder is days away: not sent yet
    assert send.platform(assignment_created(charge_at=later), "msg_a").status_code == 202
    assert send.platform(platform_event("contractor.updated", MAYA), "msg_c").status_code == 202
    assert send.ten99(session("application.complete", T0 - 100)).status_code == 202
    assert send.ten99(assignment("assignment.active", T0 - 10)).status_code == 202
    drain()
    assert all(trace in every_value(redis) for trace in MAYA_TRACES)

    result = forget("cn_1", "--yes")
    assert result.exit_code == 0, result.output
    assert "notice records" in result.output

    values = every_value(redis)
    for trace in MAYA_TRACES:
        assert trace not in values, trace
    assert b"sam.rivera@example.com" in values and b"Rivera" in values  # others keep theirs
    assert redis.exists("erased:cn_1") and redis.exists("coverage:doc:cn_1") == 0
    reminders = [
        redis.hgetall(k)
        for k in redis.scan_iter("notice:*")
        if redis.hget(k, "notice") == b"assignment_charge_reminder"
    ]
    assert reminders and all(r[b"state"] == b"cancelled" for r in reminders)
    # A retried delivery of a forgotten event is still a duplicate, not processed anew.
    assert send.ten99(charge).status_code == 200
    drain()
    assert every_value(redis).count(b"maya@example.com") == 0


def test_forgetting_asks_first_unless_told(forget, rt, redis):
    refused = forget("cn_1")  # no --yes, and no answer on stdin
    assert refused.exit_code == 1 and not redis.exists("erased:cn_1")


def key_values(redis: Any, key: bytes) -> bytes:
    kind = redis.type(key)
    if kind == b"string":
        return redis.get(key) or b""
    if kind == b"hash":
        return b"\n".join(k + b"=" + v for k, v in redis.hgetall(key).items())
    if kind == b"set":
        return b"\n".join(redis.smembers(key))
    if kind == b"zset":
        return b"\n".join(redis.zrange(key, 0, -1))
    if kind == b"list":
        return b"\n".join(redis.lrange(key, 0, -1))
    return b""


def test_nothing_personal_outlives_its_retention_window(send, rt, drain, sendgrid, redis):
    """Every key holding a contractor's or rep's address or name expires: contacts and coverage
    CONTRACTOR_RETENTION_DAYS after the contractor's last event, events and notice records
    EVENT_RETENTION_DAYS (a reminder's record that long after its send time)."""
    later = int(rt.clock()) + 10 * 86400
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    assert send.platform(assignment_created(charge_at=later), "msg_a").status_code == 202
    assert send.platform(platform_event("contractor.updated", MAYA), "msg_c").status_code == 202
    assert send.ten99(session("application.complete", T0 - 100)).status_code == 202
    drain()
    personal = (b"maya@example.com", b"Thompson", b"rep@agency.example", b"Deck repair")
    window = max(rt.cfg.CONTRACTOR_RETENTION_DAYS, rt.cfg.EVENT_RETENTION_DAYS + 10) * 86400 + 3600
    holding = {
        key: redis.ttl(key)
        for key in redis.scan_iter(count=1000)
        if any(p in key_values(redis, key) for p in personal)
    }
    families = {k.split(b":")[0] for k in holding}
    assert {b"contractor", b"event", b"notice", b"job"} <= families
    assert {k: t for k, t in holding.items() if not 0 < t <= window} == {}
    # The contact and the coverage document live the longer, contractor-level window.
    days = rt.cfg.CONTRACTOR_RETENTION_DAYS * 86400
    assert days - 60 < redis.ttl("contractor:cn_1") <= days
    assert days - 60 < redis.ttl("coverage:doc:cn_1") <= days


def test_purge_drops_finished_work_older_than_asked_and_keeps_the_rest(
    send, rt, drain, sendgrid, redis, clock, config, monkeypatch, tmp_path
):
    from receiver.cli import purge_command

    now = clock.now
    clock.freeze(now - 40 * 86400)
    assert send.ten99(charge_succeeded("in_old")).status_code == 202
    drain()
    stuck = {"id": "ev_stuck", "type": "policy.active", "created": 1700000000, "data": {"id": "p"}}
    assert send.ten99(stuck).status_code == 202  # received, never processed: must stay
    clock.freeze(now)
    assert send.ten99(charge_succeeded("in_new")).status_code == 202
    assert redis.hget("event:1099policy:ev_stuck", "status") == b"received"
    # Its task is lost (as after a crash), so it stays unfinished until the sweeper finds it.
    redis.lrem("rq:queue:events", 0, redis.hget("event:1099policy:ev_stuck", "job_id"))
    drain()
    assert len(sendgrid.accepted) == 2

    monkeypatch.chdir(tmp_path)
    for name, value in config.items():
        monkeypatch.setenv(name, str(value))
    result = CliRunner().invoke(purge_command, ["--older-than", "30", "--yes"])
    assert result.exit_code == 0, result.output
    assert "purged 1 events and 1 notice records" in result.output
    assert not redis.exists("event:1099policy:ev_paid_in_old")
    assert redis.exists("event:1099policy:ev_paid_in_new")
    assert redis.hget("event:1099policy:ev_stuck", "status") == b"received"
    assert CliRunner().invoke(purge_command, ["--older-than", "0", "--yes"]).exit_code == 2


def test_forgetting_deletes_the_outbox_files_written_for_them(send, config, redis, test_clock):
    from rq import SimpleWorker

    from receiver.config import load_config
    from receiver.pipeline import tasks
    from receiver.pipeline.erasure import forget_contractor
    from receiver.pipeline.runtime import build

    rt = build(load_config(config), clock=test_clock)  # no SendGrid key: the outbox mailer
    tasks.install(rt)
    try:
        assert send.ten99(charge_succeeded("in_1")).status_code == 202
        assert send.ten99(charge_succeeded("in_2", contractor=SAM)).status_code == 202
        SimpleWorker(rt.queues, connection=rt.redis, serializer=rt.queue.serializer).work(
            burst=True, logging_level="WARNING"
        )
        outbox = rt.mailer.directory  # type: ignore[attr-defined]
        assert len(list(outbox.iterdir())) == 2
        forget_contractor(rt, "cn_1")
    finally:
        tasks.install(None)
    left = [p.read_bytes() for p in outbox.iterdir()]
    assert len(left) == 1 and b"sam.rivera@example.com" in left[0]
    assert not any(b"maya@example.com" in body for body in left)
