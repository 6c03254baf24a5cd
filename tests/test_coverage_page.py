"""The contractor's coverage page behind signed, time-limited links; the link in the emails."""

from __future__ import annotations

import html as html_lib
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
from tests.browser import DESKTOP, PHONE
from tests.clocks import TestClock
from tests.coverage_events import (
    DAY,
    T0,
    assignment,
    certificate,
    envelope,
    parse,
    policy,
    session,
)
from tests.events import MAYA, assignment_created, charge_succeeded, platform_event
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
    seen = visible(html)
    # Neither job was named by any event: the page says what it is, the ids are in the
    # reference line only.
    assert "Reference: assignment an_1 · job jb_2" in seen
    assert "General liability, Workers' comp" in seen
    assert "<script>alert(1)</script>" not in html  # autoescaped
    assert "&lt;script&gt;" in html


def test_a_cancelled_assignment_offers_no_certificate(page, known, store):
    store.apply(parse(assignment("assignment.cancelled", T0 + DAY)))
    html = assert_html(page(token_at(NOW)), 200)
    assert "Cancelled" in html and "an_1-gl.pdf" not in html
    assert "pl_1-gl.pdf" in html and "Reference: policy pl_1 · job jb_1" in visible(html)


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


# --- What the page shows: jobs by name, each assignment's payments, in the contractor's zone.

CHICAGO = {**MAYA, "timezone": "America/Chicago"}
DECK = {
    "id": "jb_1",
    "name": "Deck repair",
    "entity": {"id": "en_1", "name": "Smith & Sons Builders"},
    "custom_metadata": {"po_contact_email": "rep@agency.example"},
}
HOUR = 3600


def visible(html: str) -> str:
    """The page as a reader takes it in: tags dropped, entities decoded, whitespace joined."""
    body = re.sub(r"<(style|title)>.*?</\1>", " ", html, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def ten99_event(etype: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return envelope(etype, obj, created, f"ev_{etype}_{obj['id']}_{created}")


def reported(
    etype: str, oid: str, job: Any, premium: int, charge_at: int, created: int, **extra: Any
) -> dict[str, Any]:
    """The platform reporting an assignment or invoice of Maya's: its premium and charge time."""
    obj = {"id": oid, "contractor": CHICAGO, "job": job, "premium_due": premium, **extra}
    return platform_event(etype, {**obj, "charge_at": charge_at}, created)


def pay_story(send: Any, drain: Any) -> None:
    """Maya (Chicago) on Deck repair for Smith & Sons: the platform reports the assignment
    ($12.00 to charge), 1099Policy binds it (charged); an earlier pay cycle's invoice failed to
    charge ($50.00); the next one ($43.25) is due in two days."""
    posts = [
        send.platform(platform_event("contractor.updated", CHICAGO, NOW - 4 * DAY), "msg_p1"),
        send.platform(
            reported(
                "assignment.created",
                "an_1",
                DECK,
                1200,
                NOW - DAY + HOUR,
                NOW - 2 * DAY,
                withhold_premium=False,
            ),
            "msg_p2",
        ),
        send.ten99(assignment("assignment.active", NOW - DAY, job="jb_1")),
        send.ten99(
            ten99_event(
                "invoice.charge_card_failed",
                {"id": "in_0", "contractor": "cn_1", "job": "jb_1", "premium_due": 5000},
                NOW - 2 * DAY + HOUR,
            )
        ),
        send.platform(
            reported(
                "invoice.created",
                "in_2",
                DECK,
                4325,
                NOW + 2 * DAY,
                NOW - HOUR,
                withhold_premium=False,
            ),
            "msg_p3",
        ),
    ]
    assert [p.status_code for p in posts] == [202] * len(posts)
    drain()


def test_page_names_the_job_and_lists_each_payment_in_the_contractors_zone(page, send, drain, rt):
    pay_story(send, drain)
    html = assert_html(page(token_at(NOW)), 200)
    seen = visible(html)
    assert "Hi Maya," in seen
    assert "Deck repair for Smith & Sons Builders" in seen
    # One row per payment, oldest first; each time in Maya's zone, which the page names.
    rows = [visible(r) for r in re.findall(r'<tr class="payment[^"]*">(.*?)</tr>', html, re.S)]
    assert rows == [
        "Payment failed on Wednesday, November 15, 2023 at 5:13 PM CST "
        "Update your card on file to keep your coverage. $50.00",
        "Charged on Thursday, November 16, 2023 at 4:13 PM CST $12.00",
        "Upcoming on Sunday, November 19, 2023 at 4:13 PM CST $43.25",
    ]
    # Ids only in the small reference line, never in what a reader reads first.
    [title] = re.findall(r'<h3 class="item-title">(.*?)</h3>', html)
    assert "jb_" not in title and "an_" not in title
    [reference] = re.findall(r'<p class="reference">(.*?)</p>', html)
    assert visible(reference) == (
        "Reference: assignment an_1 · job jb_1 · invoice in_0 · invoice in_2"
    )


def test_a_failed_charge_that_later_went_through_reads_as_charged(page, send, drain, rt):
    pay_story(send, drain)
    retried = ten99_event(
        "invoice.charge_card_succeeded",
        {"id": "in_0", "contractor": "cn_1", "job": "jb_1", "premium_due": 5000},
        NOW - DAY - HOUR,
    )
    assert send.ten99(retried).status_code == 202
    drain()
    seen = visible(assert_html(page(token_at(NOW)), 200))
    assert "Payment failed" not in seen
    assert (
        "Charged on Thursday, November 16, 2023 at 3:13 PM CST An earlier attempt failed on "
        "Wednesday, November 15, 2023 at 5:13 PM CST. $50.00"
    ) in seen


def test_the_same_events_in_another_order_show_the_same_payments(page, send, drain, rt):
    # The charge is reported before the platform's invoice event (late delivery): the page
    # still shows it charged, with the amount the invoice gave.
    charged = ten99_event(
        "invoice.charge_card_succeeded",
        {"id": "in_5", "contractor": "cn_1", "job": "jb_1"},
        NOW - HOUR,
    )
    created = reported("invoice.created", "in_5", DECK, 990, NOW - 2 * HOUR, NOW - DAY)
    assert send.ten99(charged).status_code == 202
    assert send.platform(created, "msg_late").status_code == 202
    assert send.ten99(charged).status_code == 200  # a repeat changes nothing
    drain()
    seen = visible(assert_html(page(token_at(NOW)), 200))
    # No assignment of the job is known yet: the payment is listed on its own, job named.
    assert (
        "Other payments Deck repair for Smith & Sons Builders Payments "
        "Charged on Friday, November 17, 2023 at 3:13 PM CST $9.90"
    ) in seen
    assert "Upcoming" not in seen


def test_a_cancelled_assignment_is_not_charged(page, send, drain, rt):
    bound_later = reported("assignment.created", "an_9", DECK, 700, NOW + DAY, NOW - DAY)
    assert send.platform(bound_later, "msg_an9").status_code == 202
    drain()
    seen = visible(assert_html(page(token_at(NOW)), 200))
    assert "Deck repair for Smith & Sons Builders Not active yet" in seen
    assert "Upcoming on Saturday, November 18, 2023 at 4:13 PM CST $7.00" in seen
    cancelled = assignment("assignment.cancelled", NOW - HOUR, aid="an_9", job="jb_1")
    assert send.ten99(cancelled).status_code == 202
    drain()
    seen = visible(assert_html(page(token_at(NOW)), 200))
    assert (
        "Not charged the assignment was cancelled on Friday, November 17, 2023 at 3:13 PM CST $7.00"
    ) in seen
    assert "Upcoming" not in seen


def test_forgetting_the_contractor_forgets_their_payments(page, send, drain, rt):
    from receiver.pipeline.erasure import forget_contractor

    pay_story(send, drain)
    forget_contractor(rt, "cn_1")
    seen = visible(assert_html(page(token_at(NOW)), 200))
    assert "no coverage on record" in seen and "$" not in seen


@pytest.mark.parametrize("name, width", [("desktop", DESKTOP), ("phone", PHONE)])
def test_page_reads_in_a_browser_on_a_desktop_and_a_phone(
    browser, live_server, send, drain, rt, name, width
):
    pay_story(send, drain)
    for env in (session("application.complete", NOW - 3 * DAY), policy("policy.active", T0)):
        assert send.ten99(env).status_code == 202
    drain()
    browser.viewport(width).open(f"{live_server}/coverage/{token_at(NOW)}")
    browser.screenshot(f"coverage-page-{name}")

    assert browser.inner_width() == width
    assert browser.overflow() <= 0, browser.wide_elements()
    seen = browser.text()
    assert "Deck repair for Smith & Sons Builders" in seen
    for amount in ("$50.00", "$12.00", "$43.25"):
        assert amount in seen
    # Every amount and every payment's words are inside the screen, not cut off at its edge.
    edges = browser.js(
        "return [...document.querySelectorAll('.payments th, .payments td, h1, h3, p')]"
        ".map(el => el.getBoundingClientRect().right)"
    )
    assert edges and max(edges) <= width
    # Text a person reads is not shrunk to fit: nothing below 12 px, payments at 15.
    sizes = browser.js(
        "return [...document.querySelectorAll('.content *')]"
        ".filter(el => el.innerText && el.innerText.trim())"
        ".map(el => parseFloat(getComputedStyle(el).fontSize))"
    )
    assert min(sizes) >= 12
    assert (
        browser.js(
            "return parseFloat(getComputedStyle(document.querySelector('.payments td')).fontSize)"
        )
        >= 15
    )


@pytest.mark.parametrize("name, width", [("desktop", DESKTOP), ("phone", PHONE)])
def test_an_expired_link_reads_in_a_browser(browser, live_server, name, width):
    browser.viewport(width).open(f"{live_server}/coverage/{token_at(NOW - 31 * DAY)}")
    browser.screenshot(f"coverage-link-expired-{name}")
    assert browser.overflow() <= 0, browser.wide_elements()
    assert "This link has expired" in browser.text()


def test_every_kind_of_payment_reads_on_a_phone(browser, live_server, send, drain, rt):
    """Cancelled before its charge, due with no word yet, billed to the organization, failed
    with the bank's reason, for a job no event named, re-priced after the charge: each says so,
    within a phone's width."""
    kitchen = {"id": "jb_8", "name": "Kitchen remodel"}
    fence = {"id": "jb_7", "name": "Fence", "withhold_premium": True}
    reason = "Your card was declined because the issuing bank flagged it"
    posts = [
        send.platform(platform_event("contractor.updated", CHICAGO, NOW - 4 * DAY), "m1"),
        send.platform(
            reported("assignment.created", "an_9", DECK, 700, NOW + DAY, NOW - DAY),
            "m2",
        ),
        send.platform(
            reported("assignment.created", "an_8", kitchen, 800, NOW - HOUR, NOW - DAY),
            "m3",
        ),
        send.platform(
            reported(
                "invoice.created",
                "in_7",
                fence,
                1234,
                NOW + 3 * DAY,
                NOW - DAY,
                withhold_premium=True,
            ),
            "m4",
        ),
        send.ten99(
            ten99_event(
                "invoice.charge_card_failed",
                {
                    "id": "in_6",
                    "contractor": "cn_1",
                    "job": "jb_6",
                    "premium_due": 123456,
                    "failure_message": reason,
                },
                NOW - 5 * HOUR,
            )
        ),
        send.ten99(assignment("assignment.cancelled", NOW - HOUR, aid="an_9", job="jb_1")),
        send.platform(reported("invoice.created", "in_k", kitchen, 5000, NOW, NOW - DAY), "m5"),
        send.ten99(
            ten99_event(
                "invoice.charge_card_succeeded",
                {"id": "in_k", "contractor": "cn_1", "job": "jb_8", "premium_due": 5000},
                NOW - 3 * HOUR,
            )
        ),
        send.platform(reported("invoice.updated", "in_k", kitchen, 4500, NOW, NOW - HOUR), "m6"),
    ]
    assert [p.status_code for p in posts] == [202] * len(posts)
    drain()
    browser.viewport(PHONE).open(f"{live_server}/coverage/{token_at(NOW)}")
    browser.screenshot("coverage-page-states-phone")

    assert browser.overflow() <= 0, browser.wide_elements()
    seen = " ".join(browser.text().split())
    for shown in (
        "No active coverage today",
        "Deck repair for Smith & Sons Builders Cancelled",
        "Not charged the assignment was cancelled on Friday, November 17, 2023 at 3:13 PM CST",
        "Kitchen remodel Not active yet",
        "Being charged due on Friday, November 17, 2023 at 3:13 PM CST $8.00",
        "Other payments Insurance payment",
        f"Payment failed on Friday, November 17, 2023 at 11:13 AM CST Reason: {reason}",
        "Billed to your organization due on Monday, November 20, 2023 at 4:13 PM CST $12.34",
        "Charged on Friday, November 17, 2023 at 1:13 PM CST The premium was re-priced to $45.00"
        " after this charge: a refund of $5.00 is being processed. $50.00",
    ):
        assert shown in seen


def test_an_assignment_and_the_invoice_it_names_are_one_charge(page, send, drain, rt):
    # assignment.active names the invoice charged for it; 1099Policy also reports that
    # invoice's charge. One payment, shown once, with the assignment's amount.
    bound = reported("assignment.created", "an_1", DECK, 1200, NOW - DAY, NOW - 2 * DAY)
    charged = ten99_event(
        "invoice.charge_card_succeeded",
        {"id": "in_a", "contractor": "cn_1", "job": "jb_1"},
        NOW - DAY,
    )
    assert send.platform(bound, "msg_a").status_code == 202
    assert (
        send.ten99(
            assignment("assignment.active", NOW - DAY + 60, job="jb_1", invoice="in_a")
        ).status_code
        == 202
    )
    assert send.ten99(charged).status_code == 202
    drain()
    html = assert_html(page(token_at(NOW)), 200)
    rows = [visible(r) for r in re.findall(r'<tr class="payment[^"]*">(.*?)</tr>', html, re.S)]
    assert rows == ["Charged on Thursday, November 16, 2023 at 4:13 PM CST $12.00"]
    assert "Reference: assignment an_1 · job jb_1 · invoice in_a" in visible(html)


def test_a_voided_invoice_is_not_upcoming(page, send, drain, rt):
    bill = reported("invoice.created", "in_v", DECK, 4325, NOW + DAY, NOW - DAY)
    void = reported("invoice.updated", "in_v", DECK, 4325, NOW + DAY, NOW - HOUR, status="void")
    assert send.platform(bill, "msg_bill").status_code == 202
    assert send.platform(void, "msg_void").status_code == 202
    drain()
    seen = visible(assert_html(page(token_at(NOW)), 200))
    assert "Upcoming" not in seen
    assert (
        "Not charged the invoice was voided on Friday, November 17, 2023 at 3:13 PM CST $43.25"
    ) in seen


def test_an_assignment_nothing_said_the_price_of_shows_no_payment(page, send, drain, rt):
    # Only 1099Policy's assignment.active: bound, but no event gave an amount or a charge time.
    assert send.ten99(assignment("assignment.active", NOW - DAY, job="jb_1")).status_code == 202
    drain()
    html = assert_html(page(token_at(NOW)), 200)
    assert "Active" in html and 'class="payments"' not in html and "$" not in visible(html)


def test_page_reads_on_a_phone_set_to_dark(browser, live_server, send, drain, rt):
    pay_story(send, drain)
    browser.viewport(PHONE).color_scheme("dark")
    browser.open(f"{live_server}/coverage/{token_at(NOW)}")
    browser.screenshot("coverage-page-dark-phone")
    assert browser.overflow() <= 0, browser.wide_elements()
    # Light text on the dark card, as the emails do in dark mode: every payment readable.
    colors = browser.js(
        "const style = sel => getComputedStyle(document.querySelector(sel));"
        "return {card: style('.container').backgroundColor,"
        " amount: style('.payments td').color, when: style('.when').color}"
    )
    assert colors == {
        "card": "rgb(34, 37, 41)",
        "amount": "rgb(243, 244, 246)",
        "when": "rgb(170, 178, 188)",
    }


@pytest.mark.parametrize(
    "repriced, note",
    [
        (
            5500,
            "The premium was re-priced to $55.00 after this charge: "
            "an additional $5.00 will be charged.",
        ),
        (
            4500,
            "The premium was re-priced to $45.00 after this charge: "
            "a refund of $5.00 is being processed.",
        ),
    ],
)
def test_an_invoice_repriced_after_its_charge_shows_what_was_charged_and_the_difference(
    page, send, drain, rt, repriced, note
):
    bill = reported("invoice.created", "in_r", DECK, 5000, NOW - DAY, NOW - 2 * DAY)
    charged = ten99_event(
        "invoice.charge_card_succeeded",
        {"id": "in_r", "contractor": "cn_1", "job": "jb_1", "premium_due": 5000},
        NOW - DAY,
    )
    pay_adjusted = reported("invoice.updated", "in_r", DECK, repriced, NOW - DAY, NOW - HOUR)
    assert send.platform(bill, "msg_bill").status_code == 202
    assert send.ten99(charged).status_code == 202
    assert send.platform(pay_adjusted, "msg_adjusted").status_code == 202
    drain()
    html = assert_html(page(token_at(NOW)), 200)
    rows = [visible(r) for r in re.findall(r'<tr class="payment[^"]*">(.*?)</tr>', html, re.S)]
    assert rows == [f"Charged on Thursday, November 16, 2023 at 4:13 PM CST {note} $50.00"]
