"""Interrupted sends: a worker killed inside the SendGrid call, then resolved by SendGrid's Event
Webhook (the record is `accepted`) or, with no event within INTERRUPTED_SEND_WAIT_MINUTES, sent
again once; without the Event Webhook left `failed` ("interrupted") for an operator.

The crash is real (tests/crashing_worker.py, SIGKILL inside the send); what follows runs on the
test's clock: the lease running out, the sweeps and the wait are moves of the clock, never
sleeps. Events are signed batches posted to the app as SendGrid posts them; the emails are
counted at the SendGrid stand-in.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from receiver.config import load_config
from receiver.pipeline.runtime import build
from receiver.pipeline.sweeper import resend_interrupted, sweep
from receiver.store import keys
from tests.console_users import basic, enable
from tests.events import charge_succeeded, sg_event
from tests.processes import crash_worker
from tests.records import process_without_sending
from tests.signing import SendGridPoster, public_b64

WAIT = 15 * 60  # INTERRUPTED_SEND_WAIT_MINUTES' default
AFTER_CRASH = 600  # past the send lease (17 s), the event's lease and SWEEP_AFTER_SECONDS


@pytest.fixture(scope="module")
def sg_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def webhook(config: dict[str, Any], sg_key: Any) -> None:
    """The Event Webhook configured (listed before the app and runtime fixtures, which read it)."""
    config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = public_b64(sg_key)
    enable(config)  # the console, to read the record as an operator does


@pytest.fixture
def post(client: Any, sg_key: Any, clock: Any) -> SendGridPoster:
    return SendGridPoster(client, sg_key, clock)


def record(redis: Any, rid: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis.hgetall(f"notice:{rid}").items()}


def the_record(redis: Any) -> str:
    [key] = [k.decode() for k in redis.keys("notice:*")]
    return key.removeprefix("notice:")


def sweep_at(rt: Any, now: float) -> None:
    """A worker's sweep at `now` (the previous sweep's rest is over: its lock is gone)."""
    rt.redis.delete(keys.SWEEPER_LOCK)
    sweep(rt, now)


def crashed_inside_the_send(
    point: str, send: Any, config: dict[str, Any], tmp_path: Any, clock: Any
) -> None:
    """A charge's payment confirmation, its worker killed at `point` inside the send; the
    clock then frozen AFTER_CRASH seconds later."""
    assert send.ten99(charge_succeeded("in_cut")).status_code == 202
    crash_worker(config, tmp_path / "worker.log", point)
    clock.freeze()
    clock.now += AFTER_CRASH


def interrupted(rt: Any, drain: Any, redis: Any) -> tuple[str, dict[str, str]]:
    """The sweep finds the send's lease run out: the record is marked interrupted."""
    rid = the_record(redis)
    assert record(redis, rid)["state"] == "sending"
    sweep_at(rt, rt.clock())
    drain()
    rec = record(redis, rid)
    assert (rec["state"], rec["last_error"][:11]) == ("failed", "interrupted")
    return rid, rec


def test_a_processed_event_accepts_the_interrupted_send_and_nothing_is_sent_again(
    webhook, send, rt, drain, sendgrid, redis, config, tmp_path, clock, post, client
):
    crashed_inside_the_send("sent", send, config, tmp_path, clock)
    assert len(sendgrid.accepted) == 1  # SendGrid took it; the worker died before recording it
    rid, rec = interrupted(rt, drain, redis)
    assert float(rec["resend_at"]) == clock() + WAIT
    page = client.get(f"/admin/notices/{rid}", headers=basic("vic")).get_data(as_text=True)
    assert "Sent again" in page and "unless SendGrid reports this mail first" in page

    assert post([sg_event("processed", rid, ts=int(clock()))]).json["applied"] == 1
    rec = record(redis, rid)
    assert (rec["state"], rec["delivery"], rec["resend_at"]) == ("accepted", "processed", "")
    assert rec["accepted_by"] == "evidence: SendGrid reported it processed"
    assert redis.zscore(keys.NOTICES_INTERRUPTED, f"notice:{rid}") is None
    post([sg_event("delivered", rid, ts=int(clock()) + 1)])  # the usual delivery states
    page = client.get(f"/admin/notices/{rid}", headers=basic("vic")).get_data(as_text=True)
    assert "state-delivered" in page and "evidence: SendGrid reported it processed" in page
    assert "Sent again" not in page

    clock.now += WAIT + 60  # long past the wait: nothing is sent again
    sweep_at(rt, clock())
    drain()
    assert record(redis, rid)["state"] == "accepted"
    assert len(sendgrid.requests) == 1 and len(sendgrid.accepted) == 1


def test_with_no_event_the_send_that_never_reached_sendgrid_goes_out_once(
    webhook, send, rt, drain, sendgrid, redis, config, tmp_path, clock, caplog, client
):
    crashed_inside_the_send("unsent", send, config, tmp_path, clock)
    assert sendgrid.requests == []  # the request never left the dying worker
    rid, rec = interrupted(rt, drain, redis)
    clock.now += WAIT - 1  # within the wait: SendGrid might still report it
    sweep_at(rt, clock())
    drain()
    assert record(redis, rid)["state"] == "failed" and sendgrid.requests == []

    clock.now += 1
    other = build(load_config(config), clock=clock)  # a second worker's runtime
    with caplog.at_level(logging.INFO, logger="receiver.pipeline.sweeper"):
        # Two workers' sweeps at once, then a third later: one resend between them.
        barrier = threading.Barrier(2)
        moved: list[int] = []

        def sweeps(runtime: Any) -> None:
            barrier.wait()
            moved.append(resend_interrupted(runtime, clock()))

        threads = [threading.Thread(target=sweeps, args=(r,)) for r in (rt, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        sweep_at(other, clock() + 60)
    assert sorted(moved) == [0, 1]
    drain()
    assert len(sendgrid.requests) == 1 and len(sendgrid.accepted) == 1
    rec = record(redis, rid)
    assert rec["state"] == "accepted"
    assert rec["retried_by"].startswith("automatically: SendGrid reported nothing within 15")
    assert float(rec["resent_at"]) == clock()
    page = client.get(f"/admin/notices/{rid}", headers=basic("vic")).get_data(as_text=True)
    assert "Retried" in page and "automatically: SendGrid reported nothing" in page
    lines = [r for r in caplog.records if r.getMessage() == "interrupted notice sent again"]
    assert [r.receiver_fields for r in lines] == [{"record_id": rid, "outcome": "resent"}]
    assert "maya" not in caplog.text.lower()

    clock.now += 2 * WAIT  # later sweeps send nothing more
    sweep_at(rt, clock())
    drain()
    assert len(sendgrid.requests) == 1


def test_with_no_event_a_send_sendgrid_took_is_sent_a_second_time_once(
    webhook, send, rt, drain, sendgrid, redis, config, tmp_path, clock
):
    # The cost of the wait, documented: SendGrid took the mail but said nothing in 15 minutes.
    crashed_inside_the_send("sent", send, config, tmp_path, clock)
    rid, _ = interrupted(rt, drain, redis)
    clock.now += WAIT
    sweep_at(rt, clock())
    drain()
    clock.now += WAIT
    sweep_at(rt, clock())
    drain()
    assert len(sendgrid.requests) == 2 and len(sendgrid.accepted) == 2
    assert record(redis, rid)["state"] == "accepted"


def test_a_resend_interrupted_in_turn_is_left_for_an_operator(
    webhook, send, rt, drain, sendgrid, redis, config, tmp_path, clock
):
    crashed_inside_the_send("unsent", send, config, tmp_path, clock)
    rid, _ = interrupted(rt, drain, redis)
    clock.now += WAIT
    sweep_at(rt, clock())  # sent again: queued, and a worker dies inside that send too
    crash_worker(config, tmp_path / "worker.log", "unsent")
    clock.now += AFTER_CRASH
    _, rec = interrupted(rt, drain, redis)
    assert rec["last_error"].endswith("not resent") and rec["resend_at"] == ""
    clock.now += 10 * WAIT
    sweep_at(rt, clock())
    drain()
    assert sendgrid.requests == [] and record(redis, rid)["state"] == "failed"


def test_without_the_event_webhook_an_interrupted_send_waits_for_an_operator(
    send, rt, drain, sendgrid, redis, config, tmp_path, clock
):
    crashed_inside_the_send("unsent", send, config, tmp_path, clock)
    rid, rec = interrupted(rt, drain, redis)
    assert rec["last_error"].endswith("not resent") and rec["resend_at"] == ""
    clock.now += 86400
    sweep_at(rt, clock())
    drain()
    assert sendgrid.requests == [] and record(redis, rid)["state"] == "failed"
    assert redis.exists(keys.NOTICES_INTERRUPTED) == 0


# --- the evidence, without a crash: a record left `sending` as a dead worker leaves it --------


@pytest.fixture
def cut(webhook: None, send: Any, rt: Any, drain: Any, redis: Any, clock: Any) -> str:
    """A payment confirmation whose send a worker claimed and died in; now interrupted."""
    send.ten99(charge_succeeded("in_cut"))
    [rid] = process_without_sending(rt, "event:1099policy:ev_paid_in_cut")
    redis.hset(f"notice:{rid}", mapping={"state": "sending", "lease_until": 0, "attempts": 1})
    rt.records.requeue(rid)
    drain()
    assert record(redis, rid)["last_error"].startswith("interrupted")
    return rid


@pytest.mark.parametrize("event", ["deferred", "bounce", "dropped", "open", "click"])
def test_any_event_of_the_mail_accepts_the_interrupted_send(
    cut, event, post, rt, drain, redis, sendgrid, clock
):
    r = post([sg_event(event, cut, ts=int(clock()))])
    assert (r.status_code, r.json["applied"]) == (200, 1)
    rec = record(redis, cut)
    assert rec["state"] == "accepted" and rec["accepted_by"].endswith(event)
    clock.now += WAIT
    sweep_at(rt, clock())
    drain()
    assert sendgrid.requests == []


def test_an_event_arriving_once_the_resend_is_queued_still_stops_it(
    cut, post, rt, drain, redis, sendgrid, clock
):
    clock.now += WAIT
    assert resend_interrupted(rt, clock()) == 1  # queued, not yet run
    assert post([sg_event("processed", cut, ts=int(clock()))]).json["applied"] == 1
    drain()
    assert sendgrid.requests == [] and record(redis, cut)["state"] == "accepted"


def test_an_operator_retry_during_the_wait_replaces_the_automatic_resend(
    cut, rt, drain, redis, sendgrid, clock
):
    assert rt.records.retry(cut, "olga: customer asked") == "moved"
    drain()
    clock.now += WAIT
    assert resend_interrupted(rt, clock()) == 0
    drain()
    assert len(sendgrid.requests) == 1 and record(redis, cut)["state"] == "accepted"
