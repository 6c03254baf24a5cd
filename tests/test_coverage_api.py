"""The coverage API over real HTTP, every response validated against /api/openapi.json.

openapi-core (not bare jsonschema) checks each real exchange against the served document: it
finds the operation by method and path, and checks the status code is documented, the content
type, and the body against that status's schema (closed schemas, so an undocumented field
fails). Requests that are meant to be valid are validated too. The document itself is checked
by openapi-spec-validator when openapi-core loads it.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from receiver.coverage.store import CoverageStore
from tests import openapi_exchange
from tests.clocks import TestClock
from tests.coverage_events import DAY, T0, assignment, parse, policy, session

TOKEN = "tok_" + "a" * 28
OTHER_TOKEN = "tok_" + "b" * 28
NOW = T0 + 3 * DAY


@pytest.fixture(autouse=True)
def api_config(config: dict[str, Any], test_clock: TestClock) -> None:
    test_clock.freeze(NOW)
    config.update(API_TOKENS=f"{OTHER_TOKEN}, {TOKEN}")


@pytest.fixture
def api(live_server: str) -> Any:
    openapi = openapi_exchange.load(live_server)

    def call(
        path: str, token: str | None = TOKEN, valid_request: bool = True, **params: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.get(live_server + path, params=params, headers=headers, timeout=5)
        openapi_exchange.check(openapi, response, valid_request)
        return response

    return call


@pytest.fixture
def known(app: Any, test_clock: TestClock) -> None:
    """cn_1 with an application for jb_1, its policy, and an assignment for jb_2."""
    redis = app.extensions["redis"]
    store = CoverageStore(redis, None, None, 86400, test_clock)  # type: ignore[arg-type]
    for env in (
        session("application.complete", T0 - 10),
        policy("policy.active", T0),
        assignment("assignment.active", T0 + 5),
    ):
        store.apply(parse(env))


def test_everything_current_with_covered_now(api, known):
    body = api("/api/contractors/cn_1/coverage").json()
    assert body["contractor"] == "cn_1"
    assert [p["id"] for p in body["policies"]] == ["pl_1"]
    assert [a["job"] for a in body["assignments"]] == ["jb_2"]
    assert body["covered_now"]["covered"] is True and body["covered_now"]["at"] == NOW
    assert {(b["kind"], b["job"]) for b in body["covered_now"]["by"]} == {
        ("assignment", "jb_2"),
        ("policy", "jb_1"),
    }
    assert [h["type"] for h in body["history"]] == [
        "application.complete",
        "policy.active",
        "assignment.active",
    ]


@pytest.mark.parametrize(
    "at,covered,kind",
    [
        (str(T0 + 3 * DAY), True, "assignment"),
        ("2023-11-17T22:13:20Z", True, "assignment"),  # the same moment, ISO
        (str(T0 + 1), False, None),  # before the assignment starts
        (str(T0 + 12 * DAY), False, None),  # its end is exclusive
    ],
)
def test_job_at_a_moment(api, known, at, covered, kind):
    body = api("/api/contractors/cn_1/coverage", job="jb_2", at=at).json()
    assert body["covered"] is covered and body["job"] == "jb_2"
    assert (body["by"] or {}).get("kind") == kind


def test_job_defaults_to_now_and_names_the_policy(api, known):
    body = api("/api/contractors/cn_1/coverage", job="jb_1").json()
    assert body["at"] == NOW and body["covered"] is True
    assert body["by"]["kind"] == "policy" and body["by"]["id"] == "pl_1"


def test_unknown_contractor_is_404(api, known):
    response = api("/api/contractors/cn_nobody/coverage")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "params",
    [
        {"job": "jb_1", "at": "yesterday"},
        {"job": "jb_1", "at": ""},
        {"job": "jb_1", "at": "2023-13-45"},
        {"job": "jb/1"},
        {"at": str(T0)},  # at without job
        {"job": "jb_1", "at": "9" * 41},
        {"job": "jb_1", "at": "²"},  # str.isdigit() says yes, int() says no
    ],
)
def test_bad_parameters_are_400(api, known, params):
    response = api("/api/contractors/cn_1/coverage", valid_request=False, **params)
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


def test_malformed_contractor_id_is_400(api, known):
    response = api("/api/contractors/cn.1%20x/coverage", valid_request=False)
    assert response.status_code == 400


@pytest.mark.parametrize("token", [None, "wrong-token-of-some-length", TOKEN + "x", TOKEN[:-1]])
def test_without_a_valid_token_is_401_before_anything_else(api, known, token):
    for path in ("/api/contractors/cn_1/coverage", "/api/contractors/cn_nobody/coverage"):
        response = api(path, token=token, valid_request=False)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_any_configured_token_works_and_other_schemes_do_not(api, known, live_server):
    assert api("/api/contractors/cn_1/coverage", token=OTHER_TOKEN).status_code == 200
    basic = requests.get(
        live_server + "/api/contractors/cn_1/coverage",
        timeout=5,
        headers={"Authorization": f"Basic {TOKEN}"},
    )
    assert basic.status_code == 401


def test_no_tokens_configured_means_no_access(config, redis):
    from receiver import create_app

    config["API_TOKENS"] = ""
    client = create_app(config).test_client()
    response = client.get("/api/contractors/cn_1/coverage", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401
