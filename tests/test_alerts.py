"""The alert rules in deploy/prometheus/alerts.yml: valid, unit-tested with Debian's promtool
(installed with apt-get when missing, like Chromium), each naming its runbook section, and
reading only series a running app's GET /metrics exposes, named exactly as exposed."""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from receiver.pipeline.reconcile import reconcile
from receiver.store import keys
from tests.debian import ensure_packages
from tests.events import assignment_created, charge_succeeded
from tests.signing import body_of, sw_headers, tv1_header
from tests.ten99policy_server import Ten99PolicyServer

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "alerts_test.yml"
EXAMPLE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
PROMTOOL = Path("/usr/bin/promtool")
# Series Prometheus records itself for every scrape target, not the app.
PROMETHEUS_MADE = {"up"}

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
_KEYWORDS |= {"group_left", "group_right"}


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, keywords or labels)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # matchers, ranges
    clause = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    expr = re.sub(clause, "", expr)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", expr):
        if match.group() in _KEYWORDS or re.match(r"\s*\(", expr[match.end() :]):
            continue  # a keyword, a function or an aggregation
        names.add(match.group())
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="session")
def promtool() -> str:
    try:
        ensure_packages((PROMTOOL,), ("prometheus",))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return str(PROMTOOL)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_series_names_reads_metric_names_only():
    expr = """
      (time() - max by (job) (a_total{outcome=~"x|y", reason!="and"}[5m] offset 1m))
        > 2 * max without(instance) (b_seconds) + 1e3
      and on(job) group_left(le) histogram_quantile(0.9, sum by (le) (rate(c_bucket[5m])))
      unless ignoring(instance) up == bool 0
    """
    assert series_names(expr) == {"a_total", "b_seconds", "c_bucket", "up"}


def test_the_rules_and_the_example_config_are_valid(promtool):
    checked = run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = run(promtool, "check", "config", str(EXAMPLE_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_rules_pass_their_unit_tests(promtool):
    tested = run(promtool, "test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_shown_firing_by_a_unit_test():
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert {rule["alert"] for rule in alert_rules()} == fired


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_names_its_runbook_section():
    sections = {
        _slug(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/runbook.md", rule["alert"]
        assert anchor in sections, f"{rule['alert']}: no section #{anchor} in {RUNBOOK.name}"
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


@pytest.fixture
def events_api(config: dict[str, Any]) -> Any:
    """1099Policy's events list, for a reconcile run (set before the app is built)."""
    with Ten99PolicyServer() as server:
        config.update(TEN99POLICY_API_KEY="t9sk_test_alerts", TEN99POLICY_API_BASE=server.url)
        yield server


@pytest.fixture
def app_with_a_bug(events_api: Any, app: Any) -> Any:
    """The app answering a 500 as in production (not TESTING), with a route that fails."""
    app.config["TESTING"] = False

    def broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", view_func=broken)
    return app


def test_every_series_the_rules_read_is_exposed_by_a_running_app(
    app_with_a_bug, events_api, live_server, rt, drain, sendgrid, redis, test_clock
):
    def post(path: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(live_server + path, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)

    # An accepted event, processed, its notice sent; a reminder scheduled for later.
    body = body_of(charge_succeeded("in_alerts"))
    assert post("/webhooks/1099policy", body, {"Ten99Policy-Signature": tv1_header(body)}) == 202
    later = int(test_clock()) + 10 * 86400
    reminder = body_of(assignment_created(charge_at=later))
    assert post("/webhooks/platform", reminder, sw_headers(reminder, "msg_alerts")) == 202
    # A reconcile run that finds an event the webhooks never delivered.
    events_api.events.append(charge_succeeded("in_missed"))
    assert reconcile(rt).recovered == 1
    drain()
    assert len(sendgrid.accepted) >= 2
    # A 500; then the reminder, never sent, becomes overdue.
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(live_server + "/broken", timeout=30)
    assert failed.value.code == 500
    [(_, due)] = redis.zrange(keys.NOTICES_PENDING, 0, -1, withscores=True)
    test_clock.freeze(due + 600)

    with urllib.request.urlopen(live_server + "/metrics", timeout=30) as answer:
        text = answer.read().decode()
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}

    used = {name for rule in alert_rules() for name in series_names(rule["expr"])}
    assert used - PROMETHEUS_MADE - exposed == set()
    # The unit tests' input series too: they stand for what a real scrape gives.
    inputs = {
        series["series"].split("{")[0]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for series in test["input_series"]
    }
    assert inputs - PROMETHEUS_MADE - exposed == set()
    assert PROMETHEUS_MADE <= used | inputs  # the allowance is used, not left behind
