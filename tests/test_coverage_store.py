"""Coverage documents in the real Redis: attribution through parking, atomicity, the handler."""

from __future__ import annotations

import logging
import threading
from functools import reduce
from typing import Any

import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq import Queue
from rq.serializers import JSONSerializer

from receiver.coverage import document as coverage
from receiver.coverage import store as coverage_store
from receiver.coverage.store import CoverageStore
from tests.coverage_events import (
    DAY,
    T0,
    assignment,
    envelope,
    parse,
    policy,
    session,
    story,
)
from tests.events import charge_succeeded


def store_for(client: redis_lib.Redis, url: str | None = None) -> CoverageStore:
    queue = Queue("events", connection=client, serializer=JSONSerializer)
    return CoverageStore(client, queue, url, 86400, clock=lambda: T0)


def fold(envelopes: list[dict[str, Any]], contractor: str = "cn_1") -> dict[str, Any]:
    return reduce(coverage.apply, [parse(e) for e in envelopes], coverage.empty(contractor))


def test_policy_waits_for_its_contractor_then_lands(redis):
    store = store_for(redis)
    assert store.apply(parse(policy("policy.active", T0))).status == "parked"
    assert store.get("cn_1") is None
    assert redis.exists("coverage:parked:quote:qt_1", "coverage:parked:policy:pl_1") == 2
    outcome = store.apply(parse(session("application.complete", T0 - 10)))
    assert (outcome.status, outcome.contractor, outcome.changed) == ("applied", "cn_1", True)
    doc = store.get("cn_1")
    assert doc == fold([policy("policy.active", T0), session("application.complete", T0 - 10)])
    assert redis.keys("coverage:parked:*") == []
    assert redis.get("coverage:owner:policy:pl_1") == b"cn_1"
    # Known now: the next policy event goes straight to the document.
    assert store.apply(parse(policy("policy.cancelled", T0 + 50))).contractor == "cn_1"


def test_parked_events_are_followed_from_ref_to_ref(redis):
    """An assignment names pl_1; the parked policy names qt_1; the parked session waits on qt_1."""
    store = store_for(redis)
    early = session("application.created", T0 - 300, contractor=None, policy=None)
    for env in (early, policy("policy.active", T0)):
        assert store.apply(parse(env)).status == "parked"
    store.apply(parse(assignment("assignment.active", T0 + 5)))
    doc = store.get("cn_1")
    assert set(doc["applications"]) == {"ias_1"} and set(doc["policies"]) == {"pl_1"}
    assert redis.keys("coverage:parked:*") == []
    assert redis.get("coverage:owner:application:ias_1") == b"cn_1"


def test_duplicate_and_older_events_do_not_count_as_changes(redis):
    store = store_for(redis)
    assert store.apply(parse(policy("policy.cancelled", T0 + 100))).status == "parked"
    assert store.apply(parse(session("application.complete", T0))).changed
    assert not store.apply(parse(session("application.complete", T0))).changed
    older = store.apply(parse(policy("policy.active", T0 + 1)))
    assert older.status == "applied" and not older.changed  # history only
    assert len(store.get("cn_1")["history"]) == 3


def _policy_active(created: int, end: int | None, eid: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": "pl_1", "quote": "qt_1", "status": "active", "effective_date": T0}
    if end is not None:
        obj["expiration_date"] = end
    return envelope("policy.active", obj, created, eid)


def test_every_change_gets_its_own_webhook_id(redis):
    # The public state can repeat (X -> Y -> X: older events fill a field the newest did not
    # give); each change still gets a new webhook-id, or a platform de-duplicating on it would
    # drop the third change and keep Y.
    store = store_for(redis, url="https://platform.example/hooks")
    store.apply(parse(session("application.complete", T0 - 10)))
    x, y = T0 + 30 * DAY, T0 + 60 * DAY
    store.apply(parse(_policy_active(T0 + 90, None, "ev_p9")))  # newest, abbreviated
    first = store.apply(parse(_policy_active(T0 + 10, x, "ev_p1")))  # end X
    second = store.apply(parse(_policy_active(T0 + 50, y, "ev_p5")))  # end Y
    third = store.apply(parse(_policy_active(T0 + 70, x, "ev_p7")))  # end X again
    assert first.changed and second.changed and third.changed
    assert store.get("cn_1")["policies"]["pl_1"]["end_date"] == x
    assert len({first.pushed, second.pushed, third.pushed}) == 3


def test_a_conflicting_claim_is_not_recorded(redis, caplog):
    store = store_for(redis)
    store.apply(parse(session("application.complete", T0)))
    caplog.set_level(logging.WARNING, "receiver.coverage.store")
    other = session("application.complete", T0 + 1, contractor="cn_2", sid="ias_2")
    assert store.apply(parse(other)).contractor == "cn_2"
    assert redis.get("coverage:owner:quote:qt_1") == b"cn_1"
    assert "claimed by two contractors" in caplog.text
    assert set(store.get("cn_2")["applications"]) == {"ias_2"}


def test_events_without_coverage_are_skipped(redis):
    store = store_for(redis)
    assert store.apply(parse(charge_succeeded())).status == "applied"  # charges are kept
    no_id = {"type": "policy.active", "id": "ev_x", "created": T0, "data": {"quote": "qt_1"}}
    assert store.apply(parse(no_id)).status == "skipped"
    assert redis.keys("coverage:parked:*") == []


# --- order-independence through the real store ----------------------------------------------

STORE_SET = [
    session("application.created", T0 - 400, contractor=None, sid="ias_0", policy=None),
    *story(),
]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.permutations(STORE_SET), st.lists(st.sampled_from(STORE_SET), max_size=3))
def test_stored_document_is_the_same_in_any_order(redis, order, repeats):
    redis.flushdb()
    store = store_for(redis)
    for env in order + repeats:
        store.apply(parse(env))
    assert store.get("cn_1") == fold(STORE_SET)
    assert redis.keys("coverage:parked:*") == []


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_workers_lose_no_update(redis_server, redis):
    envelopes = STORE_SET * 2
    slices = [envelopes[i::4] for i in range(4)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(part: list[dict[str, Any]]) -> None:
        store = store_for(redis_lib.Redis.from_url(redis_server.url))
        barrier.wait()
        try:
            for env in part:
                store.apply(parse(env))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in slices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert store_for(redis).get("cn_1") == fold(STORE_SET)


def race(redis_server, redis, monkeypatch, envelope_of_a) -> dict[str, Any]:
    """Deterministic race: worker A applies `envelope_of_a`; while it merges, worker B commits
    a policy cancellation. Returns the document after A, asserting A's first attempt was
    aborted by WATCH and redone (not clobbering B)."""
    a, b = store_for(redis), store_for(redis_lib.Redis.from_url(redis_server.url))
    a.apply(parse(session("application.complete", T0)))
    real_apply, calls = coverage.apply, []

    def racing_apply(doc: dict[str, Any], event: Any) -> dict[str, Any]:
        calls.append(event.id)
        if len(calls) == 1:  # A's first attempt: B slips in a cancellation now
            monkeypatch.setattr(coverage, "apply", real_apply)
            b.apply(parse(policy("policy.cancelled", T0 + 99)))
            monkeypatch.setattr(coverage, "apply", racing_apply)
        return real_apply(doc, event)

    monkeypatch.setattr(coverage, "apply", racing_apply)
    a.apply(parse(envelope_of_a))
    assert len(calls) == 2  # A's first attempt was aborted by WATCH and redone
    doc = store_for(redis).get("cn_1")
    assert doc["policies"]["pl_1"]["status"] == "cancelled"
    return doc


def test_a_write_between_read_and_commit_makes_the_attempt_start_over(
    redis_server, redis, monkeypatch
):
    doc = race(redis_server, redis, monkeypatch, policy("policy.active", T0 + 1))
    assert [h["type"] for h in doc["history"]] == [
        "application.complete",
        "policy.active",
        "policy.cancelled",
    ]


def test_a_write_between_read_and_commit_restarts_an_event_that_names_its_contractor(
    redis_server, redis, monkeypatch
):
    """The same race on the path that watches and reads every key up front (an assignment
    names its contractor)."""
    doc = race(redis_server, redis, monkeypatch, assignment("assignment.active", T0 + 1))
    assert "an_1" in doc["assignments"]


def test_too_many_conflicts_fail_the_event(redis, monkeypatch):
    from redis.exceptions import WatchError

    store = store_for(redis)

    def always_conflict(*args: Any) -> Any:
        raise WatchError()

    monkeypatch.setattr(store, "_attempt", always_conflict)
    try:
        store.apply(parse(session("application.complete", T0)))
    except RuntimeError as exc:
        assert "kept changing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected RuntimeError")
    assert coverage_store.WATCH_ATTEMPTS > 1


# --- through the webhook and the worker -----------------------------------------------------


def test_webhook_events_reach_the_document_and_notices_still_go_out(send, rt, drain, sendgrid):
    assert send.ten99(policy("policy.active", T0)).status_code == 202
    assert send.ten99(session("application.complete", T0 - 10)).status_code == 202
    assert send.ten99(charge_succeeded("in_7")).status_code == 202
    drain()
    doc = rt.coverage.get("cn_1")
    assert set(doc["policies"]) == {"pl_1"} and set(doc["invoices"]) == {"in_7"}
    # invoice.charge_card_succeeded also has its notice handler: both ran.
    assert [m["body"]["categories"][0] for m in sendgrid.accepted] == ["payment_confirmation"]
