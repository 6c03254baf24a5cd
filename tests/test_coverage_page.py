"""The contractor's coverage page behind signed, time-limited links; the link in the emails."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from itsdangerous import URLSafeTimedSerializer

from receiver.config import load_config
from receiver.coverage.links import LinkExpired, coverage_link, make_token, read_token
from receiver.coverage.store import CoverageStore
from receiver.pipeline.tasks import send_notice
from tests.clocks import TestClock
from tests.coverage_events import DAY, T0, assignment, certificate, parse, policy, session
from tests.events import assignment_created, charge_succeeded
from tests.records import records

SECRET_KEY = "page-secret-key-0123456789"
BASE = "https://coverage.example.com/"
NOW = T0 + 3 * DAY


@pytest.fixture(autouse=True)
def page_config(config: dict[str, Any], test_clock: TestClock) -> None:
    test_clock.freeze(NOW)
    config.update(SECRET_KEY=SECRET_KEY, PUBLIC_BASE_URL=BASE)


@pytest.fixture
def page(live_server: str) -> Any:
    def get(token: str) -> requests.Response:
        return requests.get(f"{live_server}/coverage/{token}", timeout=5)

    return get


@pytest.fixture
def store(app: Any, test_clock: TestClock) -> CoverageStore:
    """The store the page reads, on the test's clock (no queue: nothing is pushed)."""
    redis = app.extensions["redis"]
    return CoverageStore(redis, None, None, 86400, test_clock)  # type: ignore[arg-type]


@pytest.fixture
def known(store: CoverageStore) -> None:
    evil = certificate("approved", T0, shape="A")
    evil["data"]["filename"] = "<script>alert(1)</script>.pdf"
    for env in (
        session("application.complete", T0 - 10),
        policy("policy.active", T0),
        assignment("assignment.active", T0 + 5),
        evil,
    ):
        store.apply(parse(env))


def token_at(when: int, contractor: str = "cn_1") -> str:
    return make_token(SECRET_KEY, contractor, now=when)


def assert_html(response: requests.Response, status: int) -> str:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Traceback" not in response.text
    return response.text


def test_link_is_absolute_on_the_public_base_url(config):
    cfg = load_config(config)
    link = coverage_link(cfg, "cn_1", now=NOW)
    assert link is not None and link.startswith("https://coverage.example.com/coverage/")
    assert "//coverage/" not in link.removeprefix("https://")
    assert coverage_link(load_config({**config, "PUBLIC_BASE_URL": ""}), "cn_1", NOW) is None
    assert coverage_link(load_config({**config, "SECRET_KEY": ""}), "cn_1", NOW) is None
    assert coverage_link(cfg, "", NOW) is None


def test_valid_link_shows_coverage_and_certificate_links(page, known):
    html = assert_html(page(token_at(NOW - DAY)), 200)
    assert "You are covered today" in html
    assert 'href="https://storage.googleapis.com/bound-policies/pl_1-gl.pdf"' in html
    assert 'href="https://storage.googleapis.com/bound-policies/prod/pl_1-wc.pdf"' in html
    assert 'href="https://example.com/an_1-gl.pdf"' in html
    assert "job jb_2" in html and "general, workers-comp" in html
    assert "<script>alert(1)</script>" not in html  # autoescaped
    assert "&lt;script&gt;" in html


def test_a_cancelled_assignment_offers_no_certificate(page, known, store):
    store.apply(parse(assignment("assignment.cancelled", T0 + DAY)))
    html = assert_html(page(token_at(NOW)), 200)
    assert "cancelled" in html and "an_1-gl.pdf" not in html
    assert "pl_1-gl.pdf" in html and "Policy for job jb_1" in html


def test_valid_link_without_coverage_yet(page, known):
    html = assert_html(page(token_at(NOW, "cn_new")), 200)
    assert "no coverage on record" in html


def test_page_survives_a_date_out_of_range(app, page, store):
    # A millisecond timestamp (year 55840) is stored like any integer date; the page shows
    # it as unknown instead of failing on every visit.
    assert app.config["RECEIVER"].SECRET_KEY == SECRET_KEY
    store.apply(parse(session("application.complete", T0 - 10)))
    store.apply(parse(policy("policy.active", T0, effective_date=1_700_000_000_000)))
    assert page(token_at(NOW)).status_code == 200


def test_link_expires_after_max_age(page, known):
    max_age = 30 * DAY
    assert_html(page(token_at(NOW - max_age)), 200)
    html = assert_html(page(token_at(NOW - max_age - 1)), 410)
    assert "expired" in html


def test_max_age_is_configurable(config, page, test_clock):
    config["COVERAGE_LINK_MAX_AGE_DAYS"] = "1"  # read when the app is built, below
    from receiver import create_app

    client = create_app(config, clock=test_clock).test_client()
    assert client.get(f"/coverage/{token_at(NOW - DAY - 1)}").status_code == 410
    assert client.get(f"/coverage/{token_at(NOW - DAY + 1)}").status_code == 200


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:],  # signature changed
        lambda t: t[:-6],  # truncated
        lambda t: "x" + t,  # payload changed
        lambda t: make_token("another-secret-key-0123456", "cn_1", now=NOW),  # other key
        lambda t: URLSafeTimedSerializer(SECRET_KEY).dumps({"c": "cn_1"}),  # other salt
        lambda t: "not-a-token",
    ],
)
def test_tampered_links_are_404(page, known, mangle):
    html = assert_html(page(mangle(token_at(NOW))), 404)
    assert "not valid" in html


def test_no_secret_key_means_no_pages(config, redis):
    from receiver import create_app

    config["SECRET_KEY"] = ""
    client = create_app(config).test_client()
    response = client.get(f"/coverage/{token_at(NOW)}")
    assert response.status_code == 404 and b"not valid" in response.data


def test_contractor_emails_carry_a_working_link(config, send, rt, drain, sendgrid, client):
    send.ten99(charge_succeeded("in_1"))
    drain()
    [mail] = sendgrid.accepted
    text = mail["body"]["content"][0]["value"]
    [link] = re.findall(r"https://coverage\.example\.com/coverage/[\w.\-]+", text)
    response = client.get(link.removeprefix(BASE.rstrip("/")))
    assert response.status_code == 200 and b"Your coverage" in response.data


def test_a_scheduled_reminder_carries_a_link_valid_when_it_is_sent(
    send, rt, drain, redis, sendgrid, test_clock
):
    # The link is signed when the email is rendered, not when the notice is created: a
    # reminder sent 39 days after the event that scheduled it still carries a working link.
    now = int(test_clock())
    assert send.platform(assignment_created(charge_at=now + 40 * DAY), "msg_far").status_code == 202
    drain()
    [rec] = records(redis, "assignment_charge_reminder")
    send_at = float(rec["send_at"])
    assert send_at > now + 35 * DAY
    assert json.loads(rec["context"])["coverage_url"] is None  # not signed yet
    test_clock.now = send_at + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = sendgrid.accepted
    text = mail["body"]["content"][0]["value"]
    token = re.search(r"/coverage/(\S+)", text).group(1)
    try:
        read_token(SECRET_KEY, token, 30 * DAY, now=send_at + 2)
    except LinkExpired:
        pytest.fail("the reminder's coverage link is already expired when the email goes out")
