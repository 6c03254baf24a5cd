"""The ops API against the real app, Redis and RQ, over real HTTP; every answer is validated
against /api/openapi.json (openapi-core, closed schemas)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from receiver.errors import PayloadError
from receiver.pipeline.processing import process
from receiver.pipeline.tasks import send_notice
from tests import openapi_exchange
from tests.bursts import repriced_after_charge, send_due
from tests.console_users import basic, enable
from tests.coverage_events import assignment, policy, session
from tests.events import MAYA, assignment_created, charge_succeeded, platform_event
from tests.records import records

RID_PATTERN = "nt_"


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(config)


@pytest.fixture
def ops(rt: Any, live_server: str) -> Any:
    """Call the ops API as a console user; check the exchange against the document."""
    openapi = openapi_exchange.load(live_server)

    def call(
        method: str,
        path: str,
        user: str = "olga",
        body: Any = None,
        check: bool = True,
        **params: Any,
    ) -> requests.Response:
        headers = basic(user)
        answer = requests.request(
            method, live_server + path, params=params, json=body, headers=headers, timeout=10
        )
        if check:
            openapi_exchange.check(openapi, answer, valid_request=answer.status_code < 400)
        return answer

    return call


def _key(event: dict[str, Any], source: str = "1099policy") -> str:
    return f"event:{source}:{event['id']}"


def test_every_action_is_refused_to_a_viewer_and_to_a_non_json_post(ops: Any, send: Any) -> None:
    event = charge_succeeded("in_v")
    send.ten99(event)
    rid = "nt_" + "0" * 32
    actions = [
        f"/api/ops/events/1099policy/{event['id']}/replay",
        "/api/ops/replays",
        f"/api/ops/notices/{rid}/retry",
        f"/api/ops/notices/{rid}/cancel",
    ]
    for path in actions:
        refused = ops("POST", path, user="vic", body={"reason": "x", "dry_run": True})
        assert refused.status_code == 403, path
        assert refused.json()["error"] == "forbidden"
    assert ops("GET", "/api/ops/audit", user="vic").json()["items"] == []  # nothing was done


def test_a_form_encoded_post_is_refused_415(rt: Any, live_server: str, send: Any) -> None:
    event = charge_succeeded("in_f")
    send.ten99(event)
    answer = requests.post(
        f"{live_server}/api/ops/events/1099policy/{event['id']}/replay",
        data={"reason": "from a form"},
        headers=basic("olga"),
        timeout=10,
    )
    assert answer.status_code == 415
    assert rt.redis.hget(_key(event), "replays") is None  # nothing happened


def test_events_are_listed_newest_first_filtered_and_paged(
    ops: Any, send: Any, drain: Any, clock: Any
) -> None:
    t0 = clock.now
    for n in range(5):
        clock.now = t0 + n
        send.ten99(charge_succeeded(f"in_{n}"))
    clock.now = t0 + 10
    send.platform(assignment_created(), "msg_a1")
    clock.now = t0 + 11
    send.ten99({"id": "ev_unknown", "type": "thing.unknown", "created": int(t0), "data": {}})
    drain()
    listed = ops("GET", "/api/ops/events").json()
    ids = [e["id"] for e in listed["items"]]
    assert ids[0] == "ev_unknown" and ids[-1] == "ev_paid_in_0"
    assert len(ids) == 7 and listed["next_cursor"] is None
    assert {e["status"] for e in listed["items"]} == {"done", "ignored"}

    paid = ops("GET", "/api/ops/events", type="invoice.*", limit=2).json()
    assert [e["id"] for e in paid["items"]] == ["ev_paid_in_4", "ev_paid_in_3"]
    rest = ops("GET", "/api/ops/events", type="invoice.*", limit=2, cursor=paid["next_cursor"])
    assert [e["id"] for e in rest.json()["items"]] == ["ev_paid_in_2", "ev_paid_in_1"]

    assert [e["id"] for e in ops("GET", "/api/ops/events", status="ignored").json()["items"]] == [
        "ev_unknown"
    ]
    platform = ops("GET", "/api/ops/events", source="platform").json()["items"]
    assert [e["type"] for e in platform] == ["assignment.created"]
    window = ops("GET", "/api/ops/events", since=str(int(t0 + 1)), until=str(int(t0 + 3)))
    assert [e["id"] for e in window.json()["items"]] == [
        "ev_paid_in_3",
        "ev_paid_in_2",
        "ev_paid_in_1",
    ]
    mine = ops("GET", "/api/ops/events", contractor="cn_1").json()["items"]
    assert len(mine) == 6 and all(e["contractor"] == "cn_1" for e in mine)


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"source": "stripe"},
        {"type": "invoice.*.x"},
        {"since": "yesterday"},
        {"since": "2030-01-02", "until": "2030-01-01"},
        {"contractor": "cn 1"},
        {"cursor": "!!"},
        {"limit": "1000"},
        {"colour": "red"},
    ],
)
def test_a_bad_filter_is_a_400_naming_it(ops: Any, params: dict[str, str]) -> None:
    answer = ops("GET", "/api/ops/events", **params)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request" and answer.json()["detail"]


def test_event_detail_shows_body_headers_status_and_its_outcome(
    ops: Any, send: Any, drain: Any
) -> None:
    event = charge_succeeded("in_d")
    send.ten99(event)
    drain()
    found = ops("GET", f"/api/ops/events/1099policy/{event['id']}").json()
    assert found["status"] == "done" and found["attempts"] == 1
    assert found["body"]["data"]["id"] == "in_d"
    assert not any("signature" in h.lower() for h in found["headers"])
    [notice] = found["outcome"]["notices"]
    assert notice["notice"] == "payment_confirmation" and notice["state"] == "accepted"
    assert notice["to"] == "m***@example.com"
    assert ops("GET", "/api/ops/events/1099policy/ev_nope").status_code == 404
    assert ops("GET", "/api/ops/events/stripe/ev_nope").status_code == 404


def test_event_detail_lists_the_coverage_changes_it_made(ops: Any, send: Any, drain: Any) -> None:
    for env in (
        session("application.complete", 1_700_000_000),
        policy("policy.active", 1_700_000_100),
    ):
        send.ten99(env)
    drain()
    found = ops("GET", f"/api/ops/events/1099policy/{policy('policy.active', 1_700_000_100)['id']}")
    coverage = found.json()["outcome"]["coverage"]
    assert [c["type"] for c in coverage] == ["policy.active"]
    assert found.json()["contractor"]  # a policy names no contractor; its owner is found


def test_replaying_a_processed_charge_sends_no_second_confirmation(
    ops: Any, send: Any, drain: Any, sendgrid: Any
) -> None:
    event = charge_succeeded("in_r")
    send.ten99(event)
    drain()
    assert len(sendgrid.accepted) == 1
    answer = ops("POST", f"/api/ops/events/1099policy/{event['id']}/replay", body={})
    assert answer.status_code == 200 and answer.json()["result"] == "queued"
    drain()
    assert len(sendgrid.accepted) == 1  # the same record: nothing new goes out
    found = ops("GET", f"/api/ops/events/1099policy/{event['id']}").json()
    assert (found["status"], found["replays"], found["attempts"]) == ("done", 1, 2)
    [entry] = ops("GET", "/api/ops/audit").json()["items"]
    assert (entry["user"], entry["action"], entry["affected"]) == ("olga", "replay", 1)
    assert entry["target"] == {"source": "1099policy", "id": event["id"]}


def test_replaying_a_failed_event_finishes_it(
    ops: Any, send: Any, drain: Any, rt: Any, sendgrid: Any
) -> None:
    event = charge_succeeded("in_f2")
    send.ten99(event)
    key = _key(event)
    body = rt.redis.hget(key, "body")
    rt.redis.hset(key, "body", b"{broken")
    with pytest.raises(PayloadError):
        process(rt, key, retries_left=False)
    rt.redis.hset(key, "body", body)  # the cause was fixed (say, a deploy)
    failed = ops("GET", "/api/ops/events", status="failed").json()["items"]
    assert [e["id"] for e in failed] == [event["id"]]
    assert failed[0]["last_error"] == "PayloadError"
    rt.queue.empty()  # the original task is gone: only the replay's runs
    assert ops("POST", f"/api/ops/events/1099policy/{event['id']}/replay", body={}).ok
    drain()
    assert ops("GET", f"/api/ops/events/1099policy/{event['id']}").json()["status"] == "done"
    assert ops("GET", "/api/ops/events", status="failed").json()["items"] == []
    assert len(sendgrid.accepted) == 1


def test_replay_refusals_say_why(ops: Any, send: Any, rt: Any) -> None:
    send.ten99({"id": "ev_unknown2", "type": "thing.unknown", "created": 1, "data": {}})
    ignored = ops("POST", "/api/ops/events/1099policy/ev_unknown2/replay", body={})
    assert ignored.status_code == 409 and "no handler" in ignored.json()["detail"]
    missing = ops("POST", "/api/ops/events/1099policy/ev_missing/replay", body={})
    assert missing.status_code == 404
    too_long = ops("POST", "/api/ops/events/1099policy/ev_x/replay", body={"reason": "x" * 501})
    assert too_long.status_code == 400


def test_bulk_dry_run_counts_what_the_real_run_replays(
    ops: Any, send: Any, drain: Any, rt: Any, sendgrid: Any, clock: Any
) -> None:
    for n in range(4):
        send.ten99(charge_succeeded(f"in_b{n}"))
    send.platform(assignment_created(), "msg_b")
    drain()
    failed = charge_succeeded("in_bf")
    send.ten99(failed)
    rt.redis.hset(_key(failed), "body", b"{broken")
    with pytest.raises(PayloadError):
        process(rt, _key(failed), retries_left=False)
    rt.redis.hset(_key(failed), "body", json.dumps(failed))
    rt.queue.empty()
    sent_before = len(sendgrid.accepted)
    wanted = {"type": "invoice.*"}
    dry = ops("POST", "/api/ops/replays", body={"filter": wanted, "dry_run": True}).json()
    assert dry["count"] == 5 and len(dry["sample"]) == 5 and not dry["capped"]
    no_reason = ops("POST", "/api/ops/replays", body={"filter": wanted, "dry_run": False})
    assert no_reason.status_code == 400
    started = ops(
        "POST", "/api/ops/replays", body={"filter": wanted, "dry_run": False, "reason": "fix"}
    )
    assert started.status_code == 202 and started.json()["state"] == "queued"
    drain()
    done = ops("GET", f"/api/ops/replays/{started.json()['id']}").json()
    assert (done["state"], done["matched"], done["queued"], done["skipped"]) == ("done", 5, 5, 0)
    assert ops("GET", "/api/ops/events", status="done", type="invoice.*").json()["items"]
    assert len(ops("GET", "/api/ops/events", status="done").json()["items"]) == 6
    # Four confirmations went out before; the fixed event's one is new; none twice.
    assert len(sendgrid.accepted) == sent_before + 1
    finished, began = ops("GET", "/api/ops/audit").json()["items"][:2]
    assert (began["action"], began["target"]["filter"]) == ("bulk_replay", wanted)
    assert (finished["action"], finished["affected"], finished["reason"]) == (
        "bulk_replay_done",
        5,
        "fix",
    )
    assert ops("GET", "/api/ops/replays/rp_unknown").status_code == 404


@pytest.fixture
def cap_of_two(config: dict[str, Any]) -> None:
    config.update(CONSOLE_REPLAY_CAP=2)


def test_bulk_replay_stops_at_the_cap(cap_of_two: None, ops: Any, send: Any, drain: Any) -> None:
    for n in range(3):
        send.ten99(charge_succeeded(f"in_c{n}"))
    drain()
    dry = ops("POST", "/api/ops/replays", body={"filter": {}, "dry_run": True}).json()
    assert (dry["count"], dry["capped"]) == (2, True)
    run = ops("POST", "/api/ops/replays", body={"filter": {}, "dry_run": False, "reason": "r"})
    drain()
    done = ops("GET", f"/api/ops/replays/{run.json()['id']}").json()
    assert (done["matched"], done["queued"]) == (2, 2)


def _records(rt: Any) -> list[str]:
    return sorted(k.decode().removeprefix("notice:") for k in rt.redis.keys("notice:nt_*"))


def test_notices_list_masks_and_detail_shows_the_email(
    ops: Any, send: Any, drain: Any, rt: Any
) -> None:
    send.ten99(charge_succeeded("in_n"))
    drain()
    [item] = ops("GET", "/api/ops/notices").json()["items"]
    assert item["to"] == "m***@example.com" and item["state"] == "accepted"
    assert ops("GET", "/api/ops/notices", state="failed").json()["items"] == []
    assert ops("GET", "/api/ops/notices", contractor="cn_1").json()["items"] == [item]
    assert ops("GET", "/api/ops/notices", notice="payment_reminder").json()["items"] == []
    detail = ops("GET", f"/api/ops/notices/{item['id']}").json()
    assert detail["to"] == "maya@example.com"
    assert detail["message_id"]
    assert "Maya" in detail["email"]["text"] and "<html" in detail["email"]["html"].lower()
    assert detail["email"]["subject"]
    assert ops("GET", "/api/ops/notices/nt_nope").status_code == 404
    assert ops("GET", "/api/ops/notices", state="lost").status_code == 400


def test_a_cancelled_scheduled_notice_is_never_sent(
    ops: Any, send: Any, drain: Any, rt: Any, sendgrid: Any
) -> None:
    send.platform(assignment_created(charge_at=int(time.time()) + 5 * 86400), "msg_sched")
    drain()
    scheduled = ops("GET", "/api/ops/notices", state="scheduled").json()["items"]
    assert scheduled, "the payment reminder waits for its time"
    rid = scheduled[0]["id"]
    cancelled = ops("POST", f"/api/ops/notices/{rid}/cancel", body={"reason": "duplicate job"})
    assert cancelled.json() == {"id": rid, "result": "cancelled"}
    assert send_notice(rid) == "cancelled"  # its scheduled task, run when due, sends nothing
    assert [m for m in sendgrid.accepted if rid in json.dumps(m)] == []
    again = ops("POST", f"/api/ops/notices/{rid}/cancel", body={})
    assert again.status_code == 409
    assert ops("GET", f"/api/ops/notices/{rid}").json()["state"] == "cancelled"


def test_a_retried_interrupted_notice_is_sent_once(
    ops: Any, send: Any, drain: Any, rt: Any, sendgrid: Any
) -> None:
    from tests.records import process_without_sending

    send.ten99(charge_succeeded("in_cut"))
    [rid] = process_without_sending(rt, "event:1099policy:ev_paid_in_cut")
    # A worker claimed the send and died during the SendGrid call; the sweeper re-queues it.
    rt.redis.hset(f"notice:{rid}", mapping={"state": "sending", "lease_until": 0, "attempts": 1})
    rt.records.requeue(rid)
    drain()
    assert ops("GET", f"/api/ops/notices/{rid}").json()["last_error"].startswith("interrupted")
    assert sendgrid.accepted == []
    assert ops("POST", f"/api/ops/notices/{rid}/retry", body={}).status_code == 400  # reason
    retried = ops("POST", f"/api/ops/notices/{rid}/retry", body={"reason": "SendGrid has no trace"})
    assert retried.json() == {"id": rid, "result": "pending"}
    assert ops("POST", f"/api/ops/notices/{rid}/retry", body={"reason": "twice"}).status_code == 409
    drain()
    drain()
    assert len(sendgrid.accepted) == 1
    detail = ops("GET", f"/api/ops/notices/{rid}").json()
    assert detail["state"] == "accepted" and "SendGrid has no trace" in detail["retried_by"]
    sent = ops("POST", f"/api/ops/notices/{rid}/cancel", body={})
    assert sent.status_code == 409  # sent: nothing to cancel


def test_contractor_timeline_joins_events_coverage_and_notices(
    ops: Any, send: Any, drain: Any
) -> None:
    send.ten99(session("application.complete", 1_700_000_000))
    send.ten99(assignment("assignment.active", 1_700_000_050))
    send.ten99(charge_succeeded("in_t"))
    send.platform(platform_event("contractor.updated", MAYA), "msg_c")
    drain()
    items = ops("GET", "/api/ops/contractors/cn_1/timeline").json()["items"]
    kinds = {item["kind"] for item in items}
    assert {"event", "coverage", "notice"} <= kinds
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    assert ops("GET", "/api/ops/contractors/cn 1/timeline").status_code in (400, 404)
    found = ops("GET", "/api/ops/contractors", email="MAYA@example.com").json()["items"]
    assert found == [{"contractor": "cn_1", "email": "m***@example.com"}]
    assert ops("GET", "/api/ops/contractors", email="nobody").status_code == 400


def test_health_reports_queues_workers_and_failures(ops: Any, send: Any) -> None:
    send.ten99(charge_succeeded("in_h"))
    health = ops("GET", "/api/ops/health").json()
    assert health["oldest_unprocessed_event_seconds"] is not None
    assert sum(q["queued"] for q in health["queues"].values()) == 1
    assert health["failed_last_hour"] == {"events": 0, "notices": 0}
    assert health["redis_persistence"]["appendonly"] in ("on", "off", "unknown")


READS = [
    "/api/ops/events",
    "/api/ops/events/1099policy/ev_paid_in_m",
    "/api/ops/notices",
    "/api/ops/contractors/cn_1/timeline",
    "/api/ops/contractors?email=maya@example.com",
    "/api/ops/health",
    "/api/ops/audit",
]


def test_both_roles_read_every_endpoint_and_strangers_none(
    ops: Any, send: Any, drain: Any, rt: Any
) -> None:
    send.ten99(charge_succeeded("in_m"))
    drain()
    [rid] = _records(rt)
    reads = [*READS, f"/api/ops/notices/{rid}"]
    for path in reads:
        for user in ("vic", "olga"):
            assert ops("GET", path, user=user).status_code == 200, (path, user)
        stranger = ops("GET", path, user="mallory", check=False)
        assert stranger.status_code == 401, path


def test_the_sweeper_trims_the_indexes_to_the_retention(
    ops: Any, send: Any, drain: Any, rt: Any, clock: Any
) -> None:
    from receiver.pipeline.sweeper import trim_indexes

    send.ten99(charge_succeeded("in_old"))
    drain()
    clock.now += 31 * 86400
    send.ten99(charge_succeeded("in_new"))
    trim_indexes(rt, clock.now)
    assert [m.decode() for m in rt.redis.zrange("events:index", 0, -1)] == [
        "event:1099policy:ev_paid_in_new"
    ]
    assert rt.redis.zcard("notices:index") == 0  # the old one's record, past retention


def test_a_notice_shows_each_sendgrid_event_in_time_order(
    ops: Any, send: Any, drain: Any, rt: Any, app: Any
) -> None:
    from tests.events import sg_event

    send.ten99(charge_succeeded("in_sg"))
    drain()
    [rid] = _records(rt)
    batch = [
        sg_event("delivered", rid, ts=1_800_000_060),
        sg_event("processed", rid, ts=1_800_000_000),
        sg_event("open", rid, ts=1_800_000_120),
    ]
    app.extensions["sendgrid_events"].apply(json.dumps(batch).encode(), 1_800_000_200)
    found = ops("GET", f"/api/ops/notices/{rid}").json()
    log = found["delivery_events"]["log"]
    assert [(e["event"], e["at"]) for e in log] == [  # "open" is not tracked
        ("processed", 1_800_000_000),
        ("delivered", 1_800_000_060),
    ]
    assert found["state"] == "delivered"


def test_a_change_notices_detail_has_the_burst_it_coalesced(
    ops: Any, send: Any, drain: Any, rt: Any, clock: Any
) -> None:
    t0 = int(clock.now)
    repriced_after_charge(send, drain, clock, {"msg_u1": 6000, "msg_u2": 6500})
    [rep] = records(rt.redis, "premium_increase_rep")
    burst = ops("GET", f"/api/ops/notices/{rep['id']}").json()["burst"]
    assert burst == {
        "invoice": "in_1",
        "id": "msg_u1",
        "count": 2,
        "events": [
            {
                "source": "platform",
                "id": "msg_u1",
                "before_cents": 5000,
                "after_cents": 6000,
                "at": t0 + 1,
                "created": t0 + 1,
            },
            {
                "source": "platform",
                "id": "msg_u2",
                "before_cents": 6000,
                "after_cents": 6500,
                "at": t0 + 2,
                "created": t0 + 2,
            },
        ],
        "from_cents": 5000,
        "to_cents": 6500,
        "first_at": t0 + 1,
        "last_at": t0 + 2,
        "ends_at": t0 + 301,
        "decided_at": None,
        "sent_at": None,
    }
    clock.now = t0 + 400
    send_due(rt.redis, clock)
    sent = ops("GET", f"/api/ops/notices/{rep['id']}").json()
    assert sent["state"] == "accepted" and sent["burst"]["count"] == 2
    assert sent["burst"]["decided_at"] == sent["burst"]["sent_at"] == t0 + 400
    [confirmation] = records(rt.redis, "payment_confirmation")
    assert ops("GET", f"/api/ops/notices/{confirmation['id']}").json()["burst"] is None
