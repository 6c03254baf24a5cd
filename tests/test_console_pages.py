"""The console's pages (server-rendered, no JavaScript): who sees what, actions as POST forms
with a CSRF token, and personal data masked in lists but whole in detail views."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.bursts import repriced_after_charge, send_due
from tests.console_users import basic, enable
from tests.events import MAYA, charge_succeeded, platform_event
from tests.failures import failed_event
from tests.records import records


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(config)


def _token(page: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, "the page has an action form"
    return found.group(1)


@pytest.fixture
def charged(rt: Any, send: Any, drain: Any) -> dict[str, Any]:
    event = charge_succeeded("in_p")
    send.ten99(event)
    drain()
    return event


def test_pages_ask_for_basic_credentials(client: Any) -> None:
    answer = client.get("/admin/events")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    assert client.get("/admin/events", headers=basic("olga", "wrong")).status_code == 401


def test_every_page_renders_for_a_viewer(client: Any, charged: dict[str, Any], rt: Any) -> None:
    [rid] = [k.decode().removeprefix("notice:") for k in rt.redis.keys("notice:nt_*")]
    pages = [
        "/admin/events",
        "/admin/events?type=invoice.*&status=done",
        f"/admin/events/1099policy/{charged['id']}",
        "/admin/replays",
        "/admin/notices",
        "/admin/notices?state=accepted",
        f"/admin/notices/{rid}",
        "/admin/contractors",
        "/admin/contractors?q=maya@example.com",
        "/admin/contractors/cn_1",
        "/admin/health",
        "/admin/audit",
        "/admin/previews",
        "/admin/previews/payment_reminder",
    ]
    for path in pages:
        answer = client.get(path, headers=basic("vic"))
        assert answer.status_code == 200, path
        html = answer.get_data(as_text=True)
        assert 'method="post"' not in html, f"a viewer is offered an action on {path}"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    redirected = client.get("/admin/contractors?q=cn_1", headers=basic("vic"))
    assert redirected.status_code == 302 and redirected.location.endswith("/admin/contractors/cn_1")


def test_a_viewer_posting_an_action_gets_403(client: Any, charged: dict[str, Any]) -> None:
    page = client.get("/admin/events", headers=basic("vic"))
    token = re.search(r"console_csrf=([^;]+)", page.headers["Set-Cookie"]).group(1)
    answer = client.post(
        f"/admin/events/1099policy/{charged['id']}/replay",
        data={"csrf_token": token, "reason": "x"},
        headers=basic("vic"),
    )
    assert answer.status_code == 403


def test_an_action_without_the_csrf_token_is_refused(
    client: Any, charged: dict[str, Any], rt: Any
) -> None:
    path = f"/admin/events/1099policy/{charged['id']}/replay"
    page = client.get(f"/admin/events/1099policy/{charged['id']}", headers=basic("olga"))
    cookie = page.headers["Set-Cookie"]
    assert "SameSite=Strict" in cookie and "HttpOnly" in cookie
    assert client.post(path, data={"reason": "x"}, headers=basic("olga")).status_code == 403
    wrong = client.post(path, data={"csrf_token": "x" * 43}, headers=basic("olga"))
    assert wrong.status_code == 403
    assert rt.redis.hget(f"event:1099policy:{charged['id']}", "replays") is None


def test_replay_from_the_event_page(
    client: Any, charged: dict[str, Any], rt: Any, drain: Any
) -> None:
    page = client.get(f"/admin/events/1099policy/{charged['id']}", headers=basic("olga"))
    answer = client.post(
        f"/admin/events/1099policy/{charged['id']}/replay",
        data={"csrf_token": _token(page), "reason": "checking"},
        headers=basic("olga"),
    )
    assert answer.status_code == 303
    shown = client.get(answer.location, headers=basic("olga")).get_data(as_text=True)
    assert "Replay queued" in shown

    drain()
    assert rt.redis.hget(f"event:1099policy:{charged['id']}", "replays") == b"1"
    audit = client.get("/admin/audit", headers=basic("vic")).get_data(as_text=True)
    assert "checking" in audit and "olga" in audit


def test_lists_mask_addresses_and_the_detail_shows_them(
    client: Any, charged: dict[str, Any], rt: Any
) -> None:
    listed = client.get("/admin/notices", headers=basic("vic")).get_data(as_text=True)
    assert "m***@example.com" in listed and "maya@example.com" not in listed
    timeline = client.get("/admin/contractors/cn_1", headers=basic("vic")).get_data(as_text=True)
    assert "maya@example.com" not in timeline
    [rid] = [k.decode().removeprefix("notice:") for k in rt.redis.keys("notice:nt_*")]
    detail = client.get(f"/admin/notices/{rid}", headers=basic("vic")).get_data(as_text=True)
    assert "maya@example.com" in detail
    assert '<iframe class="email" sandbox=""' in detail


def test_bulk_replay_previews_then_runs(
    client: Any, charged: dict[str, Any], rt: Any, drain: Any
) -> None:
    preview = client.get("/admin/replays?preview=1&type=invoice.*", headers=basic("olga"))
    html = preview.get_data(as_text=True)
    assert "<strong>1</strong> event would be replayed" in html
    no_reason = client.post(
        "/admin/replays",
        data={"csrf_token": _token(preview), "type": "invoice.*"},
        headers=basic("olga"),
    )
    assert no_reason.status_code == 400
    started = client.post(
        "/admin/replays",
        data={"csrf_token": _token(preview), "type": "invoice.*", "reason": "retry all"},
        headers=basic("olga"),
    )
    assert started.status_code == 303
    drain()
    progress = client.get(started.location, headers=basic("olga")).get_data(as_text=True)
    assert "<dt>Queued again</dt><dd>1</dd>" in progress


def test_console_pages_are_absent_when_no_user_is_configured(
    config: dict[str, Any], redis: Any, test_clock: Any
) -> None:
    from receiver import create_app

    config.pop("CONSOLE_USERS")
    client = create_app(config, clock=test_clock).test_client()
    assert client.get("/admin/events", headers=basic("olga")).status_code == 404


def test_the_rq_dashboards_guard_runs_for_its_pages_only(client: Any) -> None:
    """Not an app-wide hook: a webhook delivery does not pass through it (receive path)."""
    from receiver.views.rq_view import _guard

    hooks = client.application.before_request_funcs
    assert all(_guard not in funcs for name, funcs in hooks.items() if name != "rq_dashboard")
    assert hooks["rq_dashboard"][0] is _guard  # before the dashboard's own hooks


def test_the_rq_dashboard_is_behind_the_console_users(client: Any, charged: dict[str, Any]) -> None:
    assert client.get("/admin/rq/").status_code == 401
    page = client.get("/admin/rq/", headers=basic("vic"))
    assert page.status_code == 200 and "RQ" in page.get_data(as_text=True)
    queues = client.get("/admin/rq/0/data/queues.json", headers=basic("vic")).json
    assert "events" in {q["name"] for q in queues["queues"]}
    empty = "/admin/rq/queue/events/failed/empty"
    ajax = {"X-Requested-With": "XMLHttpRequest"}
    assert client.post(empty, headers={**basic("vic"), **ajax}).status_code == 403
    # An operator's browser visiting another site: a form (or a GET) cannot add the header.
    assert client.post(empty, headers=basic("olga")).status_code == 403
    assert client.get("/admin/rq/requeue/events", headers=basic("olga")).status_code == 403
    assert client.post(empty, headers={**basic("olga"), **ajax}).status_code == 200


def test_the_done_banner_shows_only_the_apps_own_messages(client: Any) -> None:
    made_up = client.get("/admin/health?done=Call+0800+123+now", headers=basic("vic"))
    page = made_up.get_data(as_text=True)
    assert made_up.status_code == 200 and "0800" not in page and 'role="status"' not in page
    ours = client.get("/admin/health?done=cancelled", headers=basic("vic")).get_data(as_text=True)
    assert '<p class="message" role="status">Cancelled: it will not be sent.</p>' in ours


def test_an_event_being_retried_says_so_with_its_error_and_next_try(
    client: Any, retrying: dict[str, Any], rt: Any
) -> None:
    page = client.get(f"/admin/events/1099policy/{retrying['id']}", headers=basic("vic"))
    html = page.get_data(as_text=True)
    assert '<span class="state state-retrying">retrying</span>' in html
    assert "Try 1 failed with <strong>PayloadError</strong>" in html
    retry_at = float(rt.redis.hget(f"event:1099policy:{retrying['id']}", "retry_at"))
    shown = datetime.fromtimestamp(retry_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"<dt>Next try</dt><dd>{shown}</dd>" in html
    listed = client.get("/admin/events", headers=basic("vic")).get_data(as_text=True)
    assert "retrying</span>" in listed and f"next try {shown}" in listed
    api = client.get("/api/ops/events", headers=basic("vic"))
    [item] = api.json["items"]
    assert item["status"] == "received" and item["retry_at"] == retry_at


def test_health_counts_retrying_events_apart_from_the_backlog(
    client: Any, retrying: dict[str, Any]
) -> None:
    html = client.get("/admin/health", headers=basic("vic")).get_data(as_text=True)
    assert "0 waiting to be processed" in html
    assert "1 event</a> failed a try and waits for the next" in html


def test_health_counts_failures_in_words(client: Any, rt: Any, send: Any) -> None:
    failed_event(rt, send, "in_failed_once")
    html = client.get("/admin/health", headers=basic("vic")).get_data(as_text=True)
    assert "<dd>1 event, 0 notices</dd>" in html


@pytest.fixture
def awaiting(rt: Any, send: Any, drain: Any) -> str:
    """A confirmation for a contractor nobody has told us the email of."""
    send.ten99(charge_succeeded("in_wait", contractor="cn_unknown"))
    drain()
    [key] = [k.decode() for k in rt.redis.keys("notice:nt_*")]
    assert rt.redis.hget(key, "state") == b"awaiting_contact"
    return key.removeprefix("notice:")


def test_an_awaiting_notice_says_what_it_waits_for_and_how_to_unblock_it(
    client: Any, awaiting: str
) -> None:
    html = client.get(f"/admin/notices/{awaiting}", headers=basic("vic")).get_data(as_text=True)
    assert "Waiting for an email address</strong> for contractor" in html
    assert 'href="/admin/contractors/cn_unknown"' in html
    assert "<code>contractor.updated</code> for cn_unknown with an email" in html
    assert "only with <code>TEN99POLICY_API_KEY</code> set (it is not set here)" in html
    # The email as it would go: no row for the unknown name.
    email = html.split("<h2>The email</h2>")[1]
    assert "Payment received" in email and "Insured" not in email
    assert "This email was sent about the insurance" in email  # no blank where the address is
    api = client.get(f"/api/ops/notices/{awaiting}", headers=basic("vic")).json
    assert api["waiting"]["contractor"] == "cn_unknown" and api["waiting"]["lookups"] is False


def test_bulk_replay_preview_lists_each_event_and_warns_of_one_shared_error(
    client: Any, rt: Any, send: Any
) -> None:
    ids = [failed_event(rt, send, f"in_f{n}") for n in range(3)]
    page = client.get("/admin/replays?preview=1&status=failed", headers=basic("olga"))
    html = page.get_data(as_text=True)
    assert "All 3 failed the same way: PayloadError." in html
    for event_id in ids:
        assert f">{event_id}</a>" in html
    assert html.count('<td data-label="Last error">PayloadError</td>') == 3
    assert "invoice.<wbr>charge_<wbr>card_<wbr>succeeded" in html
    assert "CONSOLE_REPLAY_CAP" not in client.get("/admin/replays", headers=basic("vic")).get_data(
        as_text=True
    )
    # Events that failed in different ways (or did not fail) raise no warning.
    send.ten99(charge_succeeded("in_fine"))
    mixed = client.get("/admin/replays?preview=1", headers=basic("vic")).get_data(as_text=True)
    assert "failed the same way" not in mixed


def test_the_contractor_page_starts_with_a_summary(
    client: Any, send: Any, drain: Any, clock: Any
) -> None:
    from tests.coverage_events import DAY, T0, assignment

    clock.now = T0 + 3 * DAY  # within the assignment's term
    send.ten99(assignment("assignment.active", T0 + DAY))
    failed = {
        "id": "ev_failed_in_9",
        "type": "invoice.charge_card_failed",
        "created": T0 + 2 * DAY,
        "data": {
            "id": "in_9",
            "contractor": "cn_1",
            "premium_due": 4325,
            "failure_message": "Your card was declined.",
        },
    }
    send.ten99(failed)
    drain()
    html = client.get("/admin/contractors/cn_1", headers=basic("vic")).get_data(as_text=True)
    top = html.split("<table")[0]  # above the timeline
    until = datetime.fromtimestamp(T0 + 12 * DAY, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert '<dt>Covered now</dt><dd><span class="state state-done">yes</span>' in top
    assert f"by assignment an_1 (job jb_2), general, workers-comp, until {until}" in top
    assert 'invoice in_9: <span class="state state-failed">failed</span> $43.25' in top
    assert "Your card was declined." in top
    assert '>assignment_charge_failure</a> <span class="state state-awaiting_contact">' in top
    clock.now = T0 + 13 * DAY  # the term is over
    later = client.get("/admin/contractors/cn_1", headers=basic("vic")).get_data(as_text=True)
    assert '<dt>Covered now</dt><dd><span class="state state-failed">no</span>' in later


def test_search_finds_a_contractor_by_name(client: Any, send: Any, drain: Any) -> None:
    send.platform(platform_event("contractor.updated", MAYA), "msg_maya")
    drain()
    for query in ("Maya Thompson", "maya thom", "THOMPSON"):
        page = client.get(f"/admin/contractors?q={query}", headers=basic("vic"))
        html = page.get_data(as_text=True)
        assert (
            page.status_code == 200 and 'href="/admin/contractors/cn_1">cn_1</a> (Maya T.)' in html
        )
    none = client.get("/admin/contractors?q=Nobody+Here", headers=basic("vic")).get_data(
        as_text=True
    )
    assert "No contractor we know of has that name." in none


# An event id that must be quoted in a link ('#', '?' and '%' are allowed in a webhook-id).
ODD_ID = "msg_u2#x?y%"


def _coalesced(client: Any, rid: str) -> str:
    html = client.get(f"/admin/notices/{rid}", headers=basic("vic")).get_data(as_text=True)
    assert "<h2>What it coalesced</h2>" in html, "the page has the burst's section"
    return html.split("<h2>What it coalesced</h2>")[1].split("<h2>SendGrid's reports</h2>")[0]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_a_change_notice_shows_the_events_amounts_and_window_of_its_burst(
    client: Any, rt: Any, send: Any, drain: Any, clock: Any
) -> None:
    t0 = int(clock.now)
    repriced_after_charge(send, drain, clock, {"msg_u1": 6000, ODD_ID: 5500, "msg_u3": 6500})
    [rep] = records(rt.redis, "premium_increase_rep")
    part = _coalesced(client, rep["id"])
    assert "3 re-prices of invoice <strong>in_1</strong>: from $50.00 to $65.00." in part
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a> <span class="muted">platform', part)
    assert links == [
        ("/admin/events/platform/msg_u1", "msg_u1"),
        ("/admin/events/platform/msg_u2%23x%3Fy%25", "msg_u2#x?y%"),
        ("/admin/events/platform/msg_u3", "msg_u3"),
    ]
    for href, _ in links:  # each link opens its event's page
        assert client.get(href, headers=basic("vic")).status_code == 200, href
    amounts = re.findall(
        r'data-label="Before">([^<]*)</td>\s*<td data-label="After">([^<]*)</td>', part
    )
    assert amounts == [("$50.00", "$60.00"), ("$60.00", "$55.00"), ("$55.00", "$65.00")]
    assert f"<dt>First re-price</dt><dd>{_when(t0 + 1)}</dd>" in part
    assert f"<dt>Last re-price</dt><dd>{_when(t0 + 3)}</dd>" in part
    assert f"<dt>Burst ends</dt><dd>{_when(t0 + 1 + 300)}</dd>" in part
    assert f"not yet: a re-price before {_when(t0 + 301)} joins it" in part
    assert "<dt>Sent</dt>" not in part

    clock.now = t0 + 400
    send_due(rt.redis, clock)
    for notice in ("premium_increase_rep", "premium_increase_contractor"):
        [rec] = records(rt.redis, notice)
        assert rec["state"] == "accepted"
        sent = _coalesced(client, rec["id"])
        assert "from $50.00 to $65.00" in sent and sent.count('data-label="Before"') == 3
        assert f"<dt>Decided</dt><dd>{_when(t0 + 400)} " in sent
        assert f"<dt>Sent</dt><dd>{_when(t0 + 400)}</dd>" in sent


def test_a_change_notice_leaves_out_what_was_not_kept(
    client: Any, rt: Any, send: Any, drain: Any, clock: Any
) -> None:
    repriced_after_charge(send, drain, clock, {"msg_u1": 6000})
    [rep] = records(rt.redis, "premium_increase_rep")
    [key] = rt.redis.keys("reprices:*")
    [(field, raw)] = rt.redis.hgetall(key).items()
    rt.redis.hset(key, field, json.dumps({**json.loads(raw), "before": None}))
    part = _coalesced(client, rep["id"])
    assert '<td data-label="Before"></td>' in part and "$0.00" not in part
    assert '<td data-label="After">$60.00</td>' in part
    assert "1 re-price of invoice <strong>in_1</strong>." in part  # no "from ... to"
    rt.redis.delete(key)  # a notice planned before the re-prices were kept
    part = _coalesced(client, rep["id"])
    assert "were not kept" in part and "data-label" not in part
    # A notice of another cause has no such section.
    [confirmation] = records(rt.redis, "payment_confirmation")
    html = client.get(f"/admin/notices/{confirmation['id']}", headers=basic("vic"))
    assert "What it coalesced" not in html.get_data(as_text=True)
