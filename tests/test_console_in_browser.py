"""The console in a real headless Chromium, served by the app over HTTP: log in, filter the
events, open one and replay it, open a notice and see its email, open a contractor's timeline;
each page at desktop and phone width, with screenshots under var/screens/console-*.png for a
person to look at."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser import DESKTOP, PHONE
from tests.bursts import repriced_after_charge, send_due
from tests.console_users import PASSWORDS, enable
from tests.coverage_events import assignment, session
from tests.events import MAYA, assignment_created, charge_succeeded, platform_event
from tests.failures import failed_event
from tests.records import records


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(config)


@pytest.fixture
def stored(rt: Any, send: Any, drain: Any) -> None:
    """A contractor's story: coverage, an assignment, a paid invoice, and a failed event."""
    send.platform(platform_event("contractor.updated", MAYA), "msg_contact")
    send.ten99(session("application.complete", 1_700_000_000))
    send.ten99(assignment("assignment.active", 1_700_000_050))
    send.platform(assignment_created(), "msg_assign")
    send.ten99(charge_succeeded("in_1"))
    drain()
    failed_event(rt, send, "in_2")


def _click(driver: Any, by: str, what: str) -> None:
    """Click a link or button and wait for the page it loads (a bound, not a timing)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(by, what).click()
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(page))


def _signed_in(live_server: str, user: str = "olga") -> str:
    parts = urlsplit(live_server)
    return f"{parts.scheme}://{user}:{PASSWORDS[user]}@{parts.netloc}"


def _email_shown(driver: Any) -> str:
    """The text of the page's email iframe once it has loaded ('' when there is none)."""
    frames = driver.find_elements(By.CSS_SELECTOR, "iframe.email")
    if not frames:
        return ""
    driver.switch_to.frame(frames[0])
    try:
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").text)
        return str(driver.find_element(By.TAG_NAME, "body").text)
    finally:
        driver.switch_to.default_content()


def _shot(browser: Any, width: int, name: str) -> None:
    """A full-page screenshot. The window is made as tall as the page first: Chromium paints
    no iframe (the email) that lies outside the window, even in a full-page capture."""
    _email_shown(browser.driver)
    height = int(browser.js("return document.documentElement.scrollHeight"))
    browser.viewport(width, max(height, 900))
    _email_shown(browser.driver)
    browser.screenshot(name)
    browser.viewport(width)


def _both_widths(browser: Any, name: str) -> None:
    """Screenshots at desktop and phone width; nothing may make the phone scroll sideways."""
    browser.viewport(DESKTOP)
    _shot(browser, DESKTOP, f"console-{name}")
    browser.viewport(PHONE)
    browser.driver.refresh()
    _shot(browser, PHONE, f"console-{name}-phone")
    assert browser.overflow() <= 0, browser.wide_elements()
    browser.viewport(DESKTOP)


def test_an_operator_works_through_the_console(
    browser: Any, live_server: str, stored: None, rt: Any, drain: Any, sendgrid: Any
) -> None:
    # Log in (HTTP Basic, as the browser sends it) and see the events.
    browser.open(_signed_in(live_server) + "/admin/events")
    assert "olga · operator" in browser.text()
    assert "invoice.charge_card_succeeded" in browser.text()
    _both_widths(browser, "events")

    # Filter: failed invoice events.
    driver = browser.driver
    driver.find_element(By.NAME, "type").send_keys("invoice.*")
    Select(driver.find_element(By.NAME, "status")).select_by_visible_text("failed")
    _click(driver, By.CSS_SELECTOR, "form.filters button")
    rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1 and "ev_paid_in_2" in rows[0].text and "PayloadError" in rows[0].text
    browser.screenshot("console-events-filtered")

    # Open it and replay it.
    _click(driver, By.LINK_TEXT, "ev_paid_in_2")
    assert "failed" in browser.text() and '"premium_due": 4325' in browser.text()
    _both_widths(browser, "event")
    driver.find_element(By.NAME, "reason").send_keys("the deploy fixed the parser")
    _click(driver, By.XPATH, "//button[text()='Replay this event']")
    assert "Replay queued" in browser.text()
    drain()
    driver.refresh()
    assert "done" in driver.find_element(By.CSS_SELECTOR, "h1").text
    assert "payment_confirmation" in browser.text()  # its outcome: the confirmation
    browser.screenshot("console-event-replayed")

    # Open the notice it caused and see the email as the recipient does.
    _click(driver, By.PARTIAL_LINK_TEXT, "payment_confirmation")
    assert "maya@example.com" in browser.text()
    email_text = _email_shown(driver)
    assert "Hi Maya," in email_text and "$43.25" in email_text
    _both_widths(browser, "notice")

    # The notices list masks the address.
    browser.open(live_server + "/admin/notices")
    assert "m***@example.com" in browser.text() and "maya@example.com" not in browser.text()
    _both_widths(browser, "notices")

    # A contractor's timeline, found by id.
    browser.open(live_server + "/admin/contractors")
    driver.find_element(By.NAME, "q").send_keys("cn_1")
    _click(driver, By.CSS_SELECTOR, "form.filters button")
    seen = browser.text()
    assert "Contractor cn_1" in seen
    assert "assignment.active" in seen and "payment_confirmation" in seen and "coverage" in seen
    _both_widths(browser, "timeline")

    # Bulk replay preview, health and the audit log (which has the replay).
    browser.open(live_server + "/admin/replays?preview=1&type=invoice.*")
    assert "would be replayed" in browser.text()
    _both_widths(browser, "replays")
    browser.open(live_server + "/admin/health")
    assert "Workers seen" in browser.text()
    _both_widths(browser, "health")
    browser.open(live_server + "/admin/audit")
    assert "the deploy fixed the parser" in browser.text()
    _both_widths(browser, "audit")
    browser.open(live_server + "/admin/previews/payment_reminder")
    _both_widths(browser, "preview")


def test_a_viewer_sees_no_action(browser: Any, live_server: str, stored: None) -> None:
    browser.open(_signed_in(live_server, "vic") + "/admin/events/1099policy/ev_paid_in_2")
    assert "vic · viewer" in browser.text()
    assert browser.driver.find_elements(By.TAG_NAME, "form") == []
    browser.screenshot("console-event-viewer")


def test_the_rq_dashboard_opens_from_the_console(
    browser: Any, live_server: str, stored: None
) -> None:
    browser.open(_signed_in(live_server, "vic") + "/admin/events")
    _click(browser.driver, By.LINK_TEXT, "RQ")
    WebDriverWait(browser.driver, 60).until(lambda d: "events" in browser.text())
    browser.screenshot("console-rq")


def test_health_shows_no_worker_as_an_alarm(browser: Any, live_server: str, stored: None) -> None:
    # The test's workers are burst ones run in-process: none keeps a heartbeat record.
    browser.open(_signed_in(live_server, "vic") + "/admin/health")
    assert "No worker is running" in browser.text()
    _both_widths(browser, "health-no-worker")


def test_the_rq_dashboard_at_phone_width_and_its_way_back(
    browser: Any, live_server: str, stored: None
) -> None:
    browser.open(_signed_in(live_server, "vic") + "/admin/rq/")
    WebDriverWait(browser.driver, 60).until(lambda d: "events" in browser.text())
    browser.viewport(PHONE)
    browser.driver.refresh()
    WebDriverWait(browser.driver, 60).until(lambda d: "events" in browser.text())
    _shot(browser, PHONE, "console-rq-phone")
    assert browser.overflow() <= 0, browser.wide_elements()
    # The intro no longer runs into the table below it.
    intro = browser.driver.find_element(By.CSS_SELECTOR, "p.intro").rect
    table = browser.driver.find_element(By.CSS_SELECTOR, "table#queues").rect
    assert intro["y"] + intro["height"] <= table["y"]
    browser.viewport(DESKTOP)
    _shot(browser, DESKTOP, "console-rq-desktop")
    _click(browser.driver, By.LINK_TEXT, "← Operator's console")
    assert "/admin/events" in browser.driver.current_url


def test_headings_break_ids_not_words(browser: Any, live_server: str, stored: None) -> None:
    browser.open(_signed_in(live_server, "vic") + "/admin/previews")
    _both_widths(browser, "previews")
    browser.viewport(PHONE)
    browser.driver.refresh()
    heading = browser.driver.find_element(By.TAG_NAME, "h1")
    # Every word of the heading lies on one line (break-all split "sample" as "sam|ple").
    split = browser.js(
        "const t = arguments[0].firstChild, words = [], re = /\\S+/g; let m;"
        " while ((m = re.exec(t.data))) { const r = document.createRange();"
        " r.setStart(t, m.index); r.setEnd(t, m.index + m[0].length);"
        " const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));"
        " if (tops.size > 1) words.push(m[0]); } return words;",
        heading,
    )
    assert split == [], split


def test_a_retrying_event_and_health_in_the_browser(
    browser: Any, live_server: str, retrying: dict[str, Any]
) -> None:
    browser.open(_signed_in(live_server, "vic") + f"/admin/events/1099policy/{retrying['id']}")
    assert "Try 1 failed with PayloadError" in browser.text()
    _both_widths(browser, "event-retrying")
    browser.open(_signed_in(live_server, "vic") + "/admin/health")
    assert "failed a try and waits for the next" in browser.text()
    _both_widths(browser, "health-retrying")
    browser.open(_signed_in(live_server, "vic") + "/admin/events")
    _both_widths(browser, "events-retrying")


def test_an_awaiting_notice_in_the_browser(
    browser: Any, live_server: str, rt: Any, send: Any, drain: Any
) -> None:
    send.ten99(charge_succeeded("in_wait", contractor="cn_unknown"))
    drain()
    [key] = [k.decode() for k in rt.redis.keys("notice:nt_*")]
    browser.open(_signed_in(live_server, "vic") + "/admin/notices/" + key.removeprefix("notice:"))
    assert "Waiting for an email address" in browser.text()
    _both_widths(browser, "notice-awaiting")


def test_bulk_replay_preview_in_the_browser(browser: Any, live_server: str, stored: None) -> None:
    browser.open(_signed_in(live_server) + "/admin/replays?preview=1&status=failed")
    assert "PayloadError" in browser.text()
    _both_widths(browser, "replay-preview")


def test_the_contractor_summary_and_name_search_in_the_browser(
    browser: Any, live_server: str, stored: None
) -> None:
    browser.open(_signed_in(live_server, "vic") + "/admin/contractors?q=maya+thompson")
    assert "(Maya T.)" in browser.text()
    _both_widths(browser, "contractor-search")
    browser.open(_signed_in(live_server, "vic") + "/admin/contractors/cn_1")
    assert "Covered now" in browser.text() and "Open bills" in browser.text()
    _both_widths(browser, "contractor-summary")


def test_a_change_notice_and_its_burst_in_the_browser(
    browser: Any, live_server: str, rt: Any, send: Any, drain: Any, clock: Any
) -> None:
    prices = {"msg_u1": 6000, "msg_u2#x?y%": 5500, "msg_u3": 6500}
    repriced_after_charge(send, drain, clock, prices)
    clock.now += 400
    send_due(rt.redis, clock)
    [rep] = records(rt.redis, "premium_increase_rep")
    browser.open(_signed_in(live_server, "vic") + f"/admin/notices/{rep['id']}")
    seen = browser.text()
    assert "3 re-prices of invoice in_1: from $50.00 to $65.00" in seen
    assert "msg_u2#x?y%" in seen and "Sent" in seen
    _both_widths(browser, "notice-burst")
    _click(browser.driver, By.LINK_TEXT, "msg_u2#x?y%")  # the quoted link opens its event
    assert "invoice.updated" in browser.text() and '"premium_due": 5500' in browser.text()
