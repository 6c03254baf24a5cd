"""The pure coverage document: attribution, merging, order-independence, and `covered`."""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.coverage import document as coverage
from receiver.ingest.envelopes import Event
from tests.coverage_events import (
    DAY,
    T0,
    assignment,
    certificate,
    charge,
    parse,
    policy,
    session,
    story,
)


def fold(events: list[Event], contractor: str = "cn_1") -> dict[str, Any]:
    return reduce(coverage.apply, events, coverage.empty(contractor))


def ev(etype: str, obj: dict[str, Any], created: int | None, eid: str) -> Event:
    return Event("1099policy", eid, etype, created, obj)


# --- attribution ----------------------------------------------------------------------------


def test_assignments_certificates_and_charges_name_their_contractor():
    for env in (
        assignment("assignment.active", T0),
        certificate("approved", T0),
        charge("succeeded", T0),
    ):
        assert coverage.attribute(parse(env)).contractor == "cn_1"


def test_policy_names_no_contractor_only_refs():
    who = coverage.attribute(parse(policy("policy.active", T0)))
    assert who == coverage.Attribution(None, ("policy:pl_1", "quote:qt_1"))


def test_session_refs_lead_from_quote_and_policy_to_the_contractor():
    who = coverage.attribute(parse(session("application.complete", T0)))
    assert who.contractor == "cn_1"
    assert who.refs == ("application:ias_1", "quote:qt_1", "policy:pl_1")
    early = coverage.attribute(parse(session("application.created", T0, contractor=None)))
    assert early.contractor is None and "quote:qt_1" in early.refs


def test_embedded_objects_and_other_types():
    obj = {"id": "pl_9", "quote": {"id": "qt_9", "contractor": {"id": "cn_9"}}}
    assert coverage.attribute(ev("policy.active", obj, T0, "e")).contractor == "cn_9"
    assert coverage.attribute(ev("category_code.added", {"id": "jc_1"}, T0, "e")).refs == ()
    assert coverage.attribute(ev("invoice.created", {"id": "in_1"}, T0, "e")).refs == ()


# --- what one event says --------------------------------------------------------------------


def test_shape_c_policy_with_is_active_and_iso_dates():
    env = policy(
        "policy.active",
        T0,
        shape="C",
        effective_date="2023-11-14T22:13:20",
        expiration_date="2023-12-14T22:13:20Z",
    )
    said = coverage.facts(parse(env))
    assert said["status"] == "active"
    assert said["effective_date"] == T0 and said["end_date"] == T0 + 30 * DAY
    assert said["documents.wc_coi_pdf_url"] == (
        "https://storage.googleapis.com/bound-policies/prod/pl_1-wc.pdf"
    )
    cancelled = coverage.facts(parse(policy("policy.cancelled", T0, shape="C")))
    assert cancelled["status"] == "cancelled"


def test_defensive_fields():
    obj = {
        "id": "pl_1",
        "quote": "qt_1",
        "coverage_type": {"coverage_type": ["WC", "general"]},
        "effective_date": "not a date",
        "pdf_url": "javascript:alert(1)",
        "bind": "yes",
    }
    said = coverage.facts(ev("policy.active", obj, T0, "e"))
    assert said["coverage_types"] == ["general", "wc"]
    assert said["effective_date"] is None
    assert said["documents.pdf_url"] is None and said["bind"] is None
    assert said["status"] == "active"  # implied by the type when the payload is silent


def test_coverage_ignores_an_unreadable_date_instead_of_raising():
    # "²" passes str.isdigit() but not int(): the date is unknown, and the event (with the
    # notices handled after it) still applies.
    env = assignment("assignment.active", T0, end_date="²")
    doc = coverage.apply(coverage.empty("cn_1"), parse(env))
    assert doc["assignments"]["an_1"]["end_date"] is None


def test_assignment_cancelled_flag_and_session_status_from_type():
    obj = {"id": "an_1", "contractor": "cn_1", "cancelled": True, "status": "active"}
    assert coverage.facts(ev("assignment.active", obj, T0, "e"))["status"] == "cancelled"
    obj = {"id": "ias_1", "status": "open", "step": "final_review"}
    said = coverage.facts(ev("application.started", obj, T0, "e"))
    assert said["status"] == "started" and said["step"] == "final_review"


# --- merging --------------------------------------------------------------------------------


def test_newer_event_wins_and_an_older_one_only_fills_gaps():
    full_old = parse(certificate("flagged", T0, shape="A"))
    short_new = parse(certificate("approved", T0 + 60))  # shape B: no filename, no pdf_url
    for order in ([full_old, short_new], [short_new, full_old]):
        state = fold(order)["certificates"]["ci_1"]
        assert state["status"] == "approved"
        assert state["filename"] == "my-coi.pdf"
        assert state["documents"] == {"pdf_url": "https://example.com/ci_1.pdf"}
        assert state["last_event"]["type"] == "certificate.approved"


def test_a_late_older_event_does_not_replace_the_state():
    doc = fold([parse(policy("policy.cancelled", T0 + 100)), parse(policy("policy.active", T0))])
    state = doc["policies"]["pl_1"]
    assert state["status"] == "cancelled"
    assert state["last_event"]["created"] == T0 + 100
    assert [(h["status"], h["previous"]) for h in doc["history"]] == [
        ("active", None),
        ("cancelled", "active"),
    ]


def test_same_created_is_ordered_by_event_id():
    a = ev("policy.active", {"id": "pl_1", "status": "active"}, T0, "ev_a")
    b = ev("policy.cancelled", {"id": "pl_1", "status": "cancelled"}, T0, "ev_b")
    assert fold([a, b]) == fold([b, a])
    assert fold([a, b])["policies"]["pl_1"]["status"] == "cancelled"


def test_missing_created_falls_back_to_the_object_then_zero():
    dated = ev("policy.active", {"id": "pl_1", "updated": T0 + 5}, None, "ev_x")
    assert coverage.order_key(dated) == (T0 + 5, "ev_x")
    assert coverage.order_key(ev("policy.active", {"id": "pl_1"}, None, "ev_y")) == (0, "ev_y")


def test_duplicates_change_nothing_and_the_input_is_not_mutated():
    events = [parse(e) for e in story()]
    once = fold(events)
    snapshot = json.dumps(once, sort_keys=True)
    assert fold(events, "cn_1") == reduce(coverage.apply, events, once)
    assert json.dumps(once, sort_keys=True) == snapshot


def test_history_is_capped_to_the_newest(monkeypatch):
    monkeypatch.setattr(coverage, "HISTORY_LIMIT", 5)
    events = [ev("policy.active", {"id": "pl_1"}, T0 + i, f"ev_{i:02d}") for i in range(12)]
    doc = fold(list(reversed(events)))
    assert [h["event"] for h in doc["history"]] == [f"ev_{i:02d}" for i in range(7, 12)]
    assert doc == fold(events)


def test_objects_without_an_id_and_other_types_are_ignored():
    doc = coverage.empty("cn_1")
    assert coverage.apply(doc, ev("policy.active", {"quote": "qt_1"}, T0, "e")) == doc
    assert coverage.apply(doc, ev("invoice.created", {"id": "in_1"}, T0, "e")) == doc


# --- order-independence, generated ----------------------------------------------------------

STORY = [parse(e) for e in story()]


@st.composite
def shuffled_with_repeats(draw: Any, events: list[Event]) -> list[Event]:
    repeats = draw(st.lists(st.sampled_from(events), max_size=6))
    return draw(st.permutations(events + repeats))


@settings(max_examples=300, deadline=None)
@given(shuffled_with_repeats(STORY))
def test_story_in_any_order_with_repeats_gives_one_document(events):
    assert fold(events) == fold(STORY)


_TYPES = sorted(coverage.COVERAGE_TYPES)
_IDS = {
    "application": ["ias_1", "ias_2"],
    "policy": ["pl_1", "pl_2"],
    "assignment": ["an_1", "an_2"],
    "certificate": ["ci_1"],
    "invoice": ["in_1"],
}


@st.composite
def random_events(draw: Any) -> list[Event]:
    """Events on a few objects with colliding `created` values and optional fields."""
    out = []
    for i in range(draw(st.integers(1, 14))):
        etype = draw(st.sampled_from(_TYPES))
        obj: dict[str, Any] = {"id": draw(st.sampled_from(_IDS[etype.split(".")[0]]))}
        for name, values in (
            ("status", ["active", "cancelled", "expired", "approved"]),
            ("is_active", [True, False]),
            ("effective_date", [T0, T0 + 10, "2023-11-14T22:13:30"]),
            ("end_date", [T0 + 20, T0 + 40]),
            ("job", ["jb_1", "jb_2"]),
            ("policy", ["pl_1", "pl_2"]),
            ("quote", ["qt_1"]),
            ("coverage_type", [["general"], ["general", "workers-comp"]]),
            ("pdf_url", ["https://x.example/a.pdf", "https://x.example/b.pdf"]),
        ):
            if draw(st.booleans()):
                obj[name] = draw(st.sampled_from(values))
        created = draw(st.one_of(st.none(), st.integers(T0, T0 + 3)))
        out.append(ev(etype, obj, created, f"ev_{i:02d}"))
    return out


@settings(max_examples=300, deadline=None)
@given(random_events(), st.randoms(use_true_random=False))
def test_any_events_in_any_order_give_one_document(events, rnd):
    shuffled = events + rnd.sample(events, k=len(events) // 2)
    rnd.shuffle(shuffled)
    first = fold(events)
    assert fold(shuffled) == first
    for at in (T0 - 1, T0 + 5, T0 + 30):  # and so the same answers
        assert coverage.covered(fold(shuffled), "jb_1", at) == coverage.covered(first, "jb_1", at)


# --- covered --------------------------------------------------------------------------------


def doc_of(*envelopes: dict[str, Any]) -> dict[str, Any]:
    return fold([parse(e) for e in envelopes])


def test_assignment_covers_its_job_between_its_dates():
    doc = doc_of(assignment("assignment.active", T0))
    start, end = T0 + 2 * DAY, T0 + 12 * DAY
    assert coverage.covered(doc, "jb_2", start)["covered"]
    by = coverage.covered(doc, "jb_2", end - 1)["by"]
    assert by["kind"] == "assignment" and by["id"] == "an_1" and by["covered_until"] == end
    assert not coverage.covered(doc, "jb_2", start - 1)["covered"]
    assert coverage.covered(doc, "jb_2", end) == {"covered": False, "by": None}
    assert not coverage.covered(doc, "jb_other", start)["covered"]


def test_unbound_and_cancelled_assignments_cover_nothing():
    unbound = doc_of(assignment("assignment.active", T0, bind=False))
    assert not coverage.covered(unbound, "jb_2", T0 + 3 * DAY)["covered"]
    cancelled = doc_of(
        assignment("assignment.active", T0), assignment("assignment.cancelled", T0 + DAY)
    )
    assert not coverage.covered(cancelled, "jb_2", T0 + 3 * DAY)["covered"]


def test_policy_covers_the_job_its_application_names():
    alone = doc_of(policy("policy.active", T0))
    assert not coverage.covered(alone, "jb_1", T0 + DAY)["covered"]
    now = coverage.covered_now(alone, T0 + DAY)
    assert now["covered"] and now["by"][0]["job"] is None  # covered, job not known yet
    doc = doc_of(policy("policy.active", T0), session("application.complete", T0 - 10))
    answer = coverage.covered(doc, "jb_1", T0 + DAY)
    assert answer["covered"] and answer["by"]["kind"] == "policy" and answer["by"]["id"] == "pl_1"


def test_policy_cancelled_mid_term_covered_only_before():
    doc = doc_of(
        session("application.complete", T0 - 10),
        policy("policy.active", T0),
        policy("policy.cancelled", T0 + 5 * DAY),
    )
    assert coverage.covered(doc, "jb_1", T0 + 5 * DAY - 1)["covered"]
    assert not coverage.covered(doc, "jb_1", T0 + 5 * DAY)["covered"]
    assert not coverage.covered_now(doc, T0 + 6 * DAY)["covered"]


def test_policy_without_dates_covers_from_when_it_was_reported_active():
    obj = {"id": "pl_1", "quote": "qt_1", "is_active": True}
    doc = fold(
        [ev("policy.active", obj, T0, "ev_p"), parse(session("application.complete", T0 - 10))]
    )
    assert not coverage.covered(doc, "jb_1", T0 - 1)["covered"]
    assert coverage.covered(doc, "jb_1", T0 + 365 * DAY)["by"]["covered_until"] is None


def test_coverage_starts_when_first_reported_active():
    # Without dates, coverage starts when 1099Policy *first* reported the status; a later
    # event repeating it does not move the start.
    first = assignment("assignment.active", T0, effective_date=None, end_date=None)
    again = assignment("assignment.active", T0 + 5 * DAY, effective_date=None, end_date=None)
    doc = coverage.empty("cn_1")
    for env in (first, again):
        doc = coverage.apply(doc, parse(env))
    assert coverage.covered(doc, "jb_2", T0 + DAY)["covered"] is True


def test_assignment_preferred_over_policy_for_the_same_job():
    doc = doc_of(
        session("application.complete", T0 - 10, job="jb_2"),
        policy("policy.active", T0),
        assignment("assignment.active", T0),
    )
    assert coverage.covered(doc, "jb_2", T0 + 3 * DAY)["by"]["kind"] == "assignment"
    assert coverage.covered(doc, "jb_2", T0 + 1)["by"]["kind"] == "policy"


def test_certificates_and_charges_alone_are_not_coverage():
    doc = doc_of(certificate("approved", T0, shape="A"), charge("succeeded", T0))
    assert coverage.covered_now(doc, T0 + 1) == {"covered": False, "at": T0 + 1, "by": []}
    assert doc["invoices"]["in_1"]["status"] == "charge_succeeded"


def test_the_whole_story():
    doc = fold(STORY)
    view = coverage.public(doc)
    assert [p["status"] for p in view["policies"]] == ["active"]  # reactivated
    assert [a["status"] for a in view["assignments"]] == ["active", "cancelled"]
    assert view["certificates"][0]["status"] == "approved"
    assert view["applications"][0]["status"] == "complete"
    assert not any(k.startswith("_") for p in view["policies"] for k in p)
    now = coverage.covered_now(doc, T0 + 3 * DAY)
    assert sorted((b["kind"], b["id"], b["job"]) for b in now["by"]) == [
        ("assignment", "an_1", "jb_2"),
        ("policy", "pl_1", "jb_1"),
    ]
