"""POST /api/creatoriq/check over real HTTP, every response validated against /api/openapi.json."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from receiver.creatoriq.checks import MESSAGES
from tests import openapi_exchange
from tests.clocks import TestClock
from tests.test_creatoriq_checks import DAY, NOW, campaign, creator

TOKEN = "tok_" + "c" * 28
PATH = "/api/creatoriq/check"


@pytest.fixture(autouse=True)
def api_config(config: dict[str, Any], test_clock: TestClock) -> None:
    test_clock.freeze(NOW)
    config.update(API_TOKENS=TOKEN)


@pytest.fixture
def post(live_server: str) -> Any:
    openapi = openapi_exchange.load(live_server)

    def call(
        body: Any = None,
        *,
        data: bytes | None = None,
        token: str | None = TOKEN,
        valid_request: bool = True,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if data is None:
            response = requests.post(live_server + PATH, json=body, headers=headers, timeout=5)
        else:
            headers["Content-Type"] = "application/json"
            response = requests.post(live_server + PATH, data=data, headers=headers, timeout=5)
        openapi_exchange.check(openapi, response, valid_request)
        return response

    return call


def test_a_creator_ready_to_sync_is_ok(post):
    response = post({"creator": creator(), "campaign": campaign()})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "problems": []}


def test_problems_with_field_and_fix(post):
    c = creator(base_pay="$4,500.00", home_country="CA")
    response = post({"creator": c, "campaign": campaign(start_date=NOW - DAY)})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["problems"] == [
        {
            "code": "home_country_not_us",
            "field": "creator.home_address.country",
            "message": MESSAGES["home_country_not_us"],
        },
        {
            "code": "base_pay_not_numeric",
            "field": "creator.base_pay",
            "message": MESSAGES["base_pay_not_numeric"],
        },
        {
            "code": "campaign_start_not_future",
            "field": "campaign.start_date",
            "message": MESSAGES["campaign_start_not_future"],
        },
        {
            "code": "accepted_before_complete",
            "field": "creator.accepted_at",
            "message": MESSAGES["accepted_before_complete"],
        },
    ]


def test_the_clock_is_the_apps(post, test_clock):
    body = {"creator": creator(), "campaign": campaign(start_date=NOW + 10)}
    assert post(body).json()["ok"] is True
    test_clock.freeze(NOW + 10)
    assert [p["code"] for p in post(body).json()["problems"]] == ["campaign_start_not_future"]


def test_wrong_types_inside_the_objects_are_problems_not_errors(post):
    c = creator(payment_amount="4500", email=7)
    c["home_address"] = ["x"]
    response = post({"creator": c, "campaign": {"start_date": "soon"}}, valid_request=False)
    assert response.status_code == 200
    assert [p["code"] for p in response.json()["problems"]] == [
        "email_invalid",
        "home_address_invalid",
        "payment_amount_invalid",
        "campaign_start_invalid",
        "accepted_before_complete",
    ]


def test_an_empty_creator_and_campaign_list_every_required_field(post):
    response = post({"creator": {}, "campaign": {}})
    assert response.status_code == 200
    assert {p["field"] for p in response.json()["problems"]} == {
        "creator.email",
        "creator.home_address",
        "creator.work_state",
        "creator.payment_amount",
        "campaign.start_date",
    }


@pytest.mark.parametrize("token", [None, "tok_" + "x" * 28])
def test_401_without_a_valid_token(post, token):
    body = {"creator": creator(), "campaign": campaign()}
    response = post(body, token=token, valid_request=token is not None)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_token_is_checked_before_the_body(post):
    response = post(data=b"not json", token=None, valid_request=False)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"not json", "the body must be a JSON object"),
        (b"", "the body must be a JSON object"),
        (b"\xff\xfe{}", "the body must be a JSON object"),
        (b'["creator"]', "the body must be a JSON object"),
        (b"null", "the body must be a JSON object"),
        (b'{"campaign": {}}', "creator must be an object"),
        (b'{"creator": "cr_1", "campaign": {}}', "creator must be an object"),
        (b'{"creator": null, "campaign": {}}', "creator must be an object"),
        (b'{"creator": {}}', "campaign must be an object"),
        (b'{"creator": {}, "campaign": [1]}', "campaign must be an object"),
    ],
)
def test_400_for_a_malformed_request_names_the_field(post, data, detail):
    response = post(data=data, valid_request=False)
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "detail": detail}


def test_get_is_not_allowed(live_server):
    response = requests.get(live_server + PATH, timeout=5)
    assert response.status_code == 405
