"""Headers every answer carries (issue 19): nosniff everywhere, no-store on the ops and
contractors APIs, HSTS over TLS when set, frame-ancestors 'none' on the coverage page, and
the RQ dashboard under /admin/rq with the console's headers and a script policy of its own."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.console_users import PASSWORDS, basic, enable
from tests.events import charge_succeeded


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(config, SECRET_KEY="k" * 32, API_TOKENS="t" * 32)


def test_nosniff_on_every_answer(client: Any) -> None:
    for answer in (
        client.get("/healthz"),
        client.get("/no/such/path"),
        client.post("/webhooks/1099policy", data=b"{}"),
        client.get("/admin/events", headers=basic("vic")),
        client.get("/api/ops/health"),
        client.get("/admin/rq/", headers=basic("vic")),
    ):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_ops_and_contractor_apis_are_never_cached(client: Any) -> None:
    for answer in (
        client.get("/api/ops/health", headers=basic("vic")),
        client.get("/api/ops/events", headers=basic("vic")),
        client.get(
            "/api/contractors/cn_1/coverage", headers={"Authorization": "Bearer " + "t" * 32}
        ),
        client.get("/api/contractors/cn_1/coverage"),
    ):
        assert answer.headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/api/openapi.json").headers.get("Cache-Control", "")


def test_hsts_only_when_set_and_only_over_tls(config: dict[str, Any]) -> None:
    from receiver import create_app

    plain = create_app(config).test_client()
    assert "Strict-Transport-Security" not in plain.get("/healthz", base_url="https://x").headers
    config["HSTS_SECONDS"] = "31536000"
    client = create_app(config).test_client()
    over_tls = client.get("/healthz", base_url="https://x")
    assert over_tls.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_the_coverage_page_may_not_be_framed(client: Any) -> None:
    answer = client.get("/coverage/not-a-real-link")
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_the_rq_dashboard_has_the_console_headers(client: Any) -> None:
    page = client.get("/admin/rq/", headers=basic("vic"))
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split(";")[1]
    assert re.search(r"script-src 'self' 'unsafe-eval'( 'sha256-[A-Za-z0-9+/=]+')+;", policy)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", ["/admin/rq/0/view/job/x", "/admin/rq/0/data/job/x.json"])
def test_an_unknown_job_in_the_rq_dashboard_is_a_404(client: Any, path: str) -> None:
    answer = client.get(path, headers=basic("vic"))
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "not_found", "detail": "no such job"}


def test_the_rq_dashboard_runs_its_own_scripts_under_its_policy(
    browser: Any, live_server: str, rt: Any, send: Any
) -> None:
    """Its queue list is filled in by its JavaScript, from queues.json: the policy lets that
    run; and the browser reports no blocked script."""
    send.ten99(charge_succeeded("in_queued"))  # the events queue now exists
    parts = urlsplit(live_server)
    browser.open(f"{parts.scheme}://vic:{PASSWORDS['vic']}@{parts.netloc}/admin/rq/")
    WebDriverWait(browser.driver, 60).until(
        lambda d: "events" in d.find_element(By.TAG_NAME, "body").text
    )
    blocked = [
        entry["message"]
        for entry in browser.driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert not blocked
