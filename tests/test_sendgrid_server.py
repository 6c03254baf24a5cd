"""Tests of the fake SendGrid server, driven through the real ``sendgrid`` client."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    InternalServerError,
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail, MailSettings, SandBoxMode

from tests.sendgrid_server import SendGridServer, validate_mail


@pytest.fixture(scope="module")
def running() -> Iterator[SendGridServer]:
    with SendGridServer() as server:
        yield server


@pytest.fixture
def server(running: SendGridServer) -> SendGridServer:
    running.reset()
    return running


@pytest.fixture
def client(server: SendGridServer) -> SendGridAPIClient:
    return SendGridAPIClient(api_key="SG.test", host=server.url)


def make_mail(to: str = "ann@example.com") -> Mail:
    return Mail(
        from_email=("billing@example.com", "Billing"),
        to_emails=to,
        subject="Your payment was received",
        plain_text_content="Thanks, we received 12.00 USD.",
        html_content="<p>Thanks, we received 12.00 USD.</p>",
    )


def raw_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "ann@example.com"}]}],
        "from": {"email": "billing@example.com"},
        "subject": "Hello",
        "content": [
            {"type": "text/plain", "value": "hi"},
            {"type": "text/html", "value": "<p>hi</p>"},
        ],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def post_raw(client: SendGridAPIClient, body: Any) -> Any:
    return client.client.mail.send.post(request_body=body)


def test_url_has_no_trailing_slash(server: SendGridServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert not server.url.endswith("/")
    assert server.port > 0


def test_valid_mail_is_accepted_with_message_id(
    server: SendGridServer, client: SendGridAPIClient
) -> None:
    mail = make_mail()
    response = client.send(mail)

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert message_id and message_id.replace("-", "").replace("_", "").isalnum()

    [record] = server.wait_for(1, timeout=1)
    assert record["message_id"] == message_id
    assert record["body"] == mail.get()
    assert record["status"] == 202 and record["sandbox"] is False
    assert record["headers"]["authorization"] == "Bearer SG.test"
    assert record["headers"]["content-type"] == "application/json"
    [request] = server.requests
    assert request["outcome"] == "accepted" and request["message_id"] == message_id


def test_message_ids_are_unique(server: SendGridServer, client: SendGridAPIClient) -> None:
    ids = {client.send(make_mail(f"user{i}@example.com")).headers["X-Message-Id"] for i in range(3)}
    assert len(ids) == 3
    assert len(server.accepted) == 3


def test_sandbox_mode_returns_200(server: SendGridServer, client: SendGridAPIClient) -> None:
    mail = make_mail()
    mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))

    response = client.send(mail)

    assert response.status_code == 200
    [record] = server.accepted
    assert record["sandbox"] is True and record["status"] == 200


def _duplicate_recipient() -> dict[str, Any]:
    return raw_body(
        personalizations=[
            {"to": [{"email": "ann@example.com"}]},
            {"to": [{"email": "bob@example.com"}], "cc": [{"email": "Ann@Example.com"}]},
        ]
    )


INVALID_BODIES: dict[str, tuple[Callable[[], Any], str | None]] = {
    "missing personalizations": (lambda: raw_body(personalizations=None), "personalizations"),
    "html before text": (
        lambda: raw_body(
            content=[
                {"type": "text/html", "value": "<p>hi</p>"},
                {"type": "text/plain", "value": "hi"},
            ]
        ),
        "content.1.type",
    ),
    "reserved header": (
        lambda: raw_body(headers={"reply-to": "x@example.com"}),
        "headers.reply-to",
    ),
    "reserved personalization header": (
        lambda: raw_body(
            personalizations=[
                {"to": [{"email": "a@example.com"}], "headers": {"DKIM-Signature": "x"}}
            ]
        ),
        "personalizations.0.headers.DKIM-Signature",
    ),
    "header name with space": (lambda: raw_body(headers={"X Custom": "1"}), "headers.X Custom"),
    "11 categories": (lambda: raw_body(categories=[f"c{i}" for i in range(11)]), "categories"),
    "non-ascii category": (lambda: raw_body(categories=["prämie"]), "categories.0"),
    "duplicate recipient": (_duplicate_recipient, "personalizations.1.cc.0.email"),
    "send_at 100h ahead": (lambda: raw_body(send_at=int(time.time()) + 100 * 3600), "send_at"),
    "too many recipients": (
        lambda: raw_body(
            personalizations=[
                {"to": [{"email": f"u{i}-{j}@example.com"} for j in range(500)]} for i in range(3)
            ]
        ),
        "personalizations",
    ),
    "custom_args number": (lambda: raw_body(custom_args={"attempt": 1}), "custom_args.attempt"),
    "unknown property": (lambda: raw_body(colour="blue"), "colour"),
    "empty to": (lambda: raw_body(personalizations=[{"to": []}]), "personalizations.0.to"),
    "missing subject": (lambda: raw_body(subject=None), "subject"),
}


@pytest.mark.parametrize("case", list(INVALID_BODIES), ids=list(INVALID_BODIES))
def test_invalid_bodies_are_rejected(
    case: str, server: SendGridServer, client: SendGridAPIClient
) -> None:
    make_body, expected_field = INVALID_BODIES[case]

    with pytest.raises(BadRequestsError) as caught:
        post_raw(client, make_body())

    assert caught.value.status_code == 400
    errors = json.loads(caught.value.body)["errors"]
    assert errors, "400 must list errors"
    assert all(set(e) == {"message", "field", "help"} and e["help"] is None for e in errors)
    assert expected_field in [e["field"] for e in errors]
    assert server.accepted == []
    [request] = server.requests
    assert request["outcome"] == "rejected" and request["status"] == 400
    assert request["errors"] == errors
    assert server.stats()["rejected"] == 1


def test_reference_raw_body_is_valid(server: SendGridServer, client: SendGridAPIClient) -> None:
    assert validate_mail(raw_body()) == []
    assert post_raw(client, raw_body(send_at=int(time.time()) + 71 * 3600)).status_code == 202


def test_invalid_json_is_rejected(server: SendGridServer) -> None:
    request = urllib.request.Request(
        server.url + "/v3/mail/send",
        data=b"{not json",
        headers={"Authorization": "Bearer SG.test", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=2)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["errors"][0]["field"] is None


def test_scripted_429_carries_rate_limit_headers(
    server: SendGridServer, client: SendGridAPIClient
) -> None:
    server.script(("status", 429, {"X-RateLimit-Reset": "1900000000"}))

    with pytest.raises(TooManyRequestsError) as caught:
        client.send(make_mail())

    headers = caught.value.headers
    assert headers["X-RateLimit-Reset"] == "1900000000"
    assert headers["X-RateLimit-Limit"] and headers["X-RateLimit-Remaining"] == "0"
    assert json.loads(caught.value.body)["errors"][0]["message"] == "too many requests"
    assert server.accepted == []
    assert server.requests[0]["outcome"] == "scripted"
    # The queue is consumed: the next request is answered normally.
    assert client.send(make_mail()).status_code == 202
    assert len(server.accepted) == 1


def test_scripted_429_default_reset_is_in_the_near_future(
    server: SendGridServer, client: SendGridAPIClient
) -> None:
    server.script(("status", 429))
    with pytest.raises(TooManyRequestsError) as caught:
        client.send(make_mail())
    reset = int(caught.value.headers["X-RateLimit-Reset"])
    assert time.time() - 1 <= reset <= time.time() + 5


def test_scripted_500_then_400_in_order(server: SendGridServer, client: SendGridAPIClient) -> None:
    server.script(("status", 500), ("status", 400))
    assert server.scripts_pending == 2

    with pytest.raises(InternalServerError):
        client.send(make_mail())
    with pytest.raises(BadRequestsError) as caught:
        client.send(make_mail())

    assert json.loads(caught.value.body)["errors"]
    assert server.scripts_pending == 0
    assert server.accepted == []
    assert [r["status"] for r in server.requests] == [500, 400]
    assert server.stats()["scripted"] == 2


def test_scripted_custom_body(server: SendGridServer, client: SendGridAPIClient) -> None:
    errors = {"errors": [{"message": "from must be verified", "field": "from", "help": None}]}
    server.script(("status", 403, {}, errors))
    with pytest.raises(Exception) as caught:  # noqa: B017 - the client raises ForbiddenError
        client.send(make_mail())
    assert caught.value.status_code == 403  # type: ignore[attr-defined]
    assert json.loads(caught.value.body) == errors  # type: ignore[attr-defined]


def test_client_timeout_is_not_counted_as_accepted(
    server: SendGridServer, client: SendGridAPIClient
) -> None:
    client.client.timeout = 0.5
    server.script(("delay", 3.0))
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        client.send(make_mail())

    [request] = server.wait_for_requests(1, timeout=2)
    assert time.monotonic() - started < 2, "server should notice the disconnect early"
    assert request["outcome"] == "client_disconnected"
    assert request["status"] == 202  # what SendGrid would have answered: the ambiguous case
    assert server.accepted == []
    assert server.stats()["client_disconnected"] == 1
    with pytest.raises(TimeoutError):
        server.wait_for(1, timeout=0.05)


def test_short_delay_is_answered_normally(
    server: SendGridServer, client: SendGridAPIClient
) -> None:
    server.script(("delay", 0.2))
    started = time.monotonic()
    assert client.send(make_mail()).status_code == 202
    assert time.monotonic() - started >= 0.2
    assert len(server.accepted) == 1


def test_delay_then_status(server: SendGridServer, client: SendGridAPIClient) -> None:
    server.script(("delay", 0.1, 503))
    with pytest.raises(Exception) as caught:  # noqa: B017 - ServiceUnavailableError
        client.send(make_mail())
    assert caught.value.status_code == 503  # type: ignore[attr-defined]
    assert server.accepted == []


def test_drop_closes_without_answer(server: SendGridServer, client: SendGridAPIClient) -> None:
    server.script(("drop",))
    with pytest.raises(http.client.RemoteDisconnected):
        client.send(make_mail())
    [request] = server.wait_for_requests(1, timeout=1)
    assert request["outcome"] == "dropped"
    assert server.accepted == []


def test_script_rejects_unknown_forms(server: SendGridServer) -> None:
    for bad in [("status",), ("status", 99), ("delay", -1), ("hang",), ("drop", 1), ()]:
        with pytest.raises(ValueError):
            server.script(bad)
    assert server.scripts_pending == 0


def test_missing_api_key_is_401(server: SendGridServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    keyless = SendGridAPIClient(api_key=None, host=server.url)  # sends "Bearer None"

    with pytest.raises(UnauthorizedError) as caught:
        keyless.send(make_mail())

    assert json.loads(caught.value.body)["errors"][0]["message"]
    assert server.accepted == []
    assert server.requests[0]["outcome"] == "rejected"


def test_no_authorization_header_is_401(server: SendGridServer) -> None:
    request = urllib.request.Request(
        server.url + "/v3/mail/send",
        data=json.dumps(raw_body()).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=2)
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["errors"][0]["message"] == "authorization required"


def test_trailing_slash_host_is_404(server: SendGridServer) -> None:
    sloppy = SendGridAPIClient(api_key="SG.test", host=server.url + "/")
    with pytest.raises(NotFoundError):
        sloppy.send(make_mail())
    assert server.accepted == []


def test_each_send_opens_a_connection(server: SendGridServer, client: SendGridAPIClient) -> None:
    for i in range(3):
        client.send(make_mail(f"user{i}@example.com"))

    assert server.connections == 3  # urllib sends Connection: close
    assert len({r["connection"] for r in server.requests}) == 3
    assert all(r["headers"]["connection"] == "close" for r in server.requests)


def test_keep_alive_reuses_one_connection(server: SendGridServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
    headers = {"Authorization": "Bearer SG.test", "Content-Type": "application/json"}
    try:
        for i in range(3):
            body = raw_body(personalizations=[{"to": [{"email": f"k{i}@example.com"}]}])
            conn.request("POST", "/v3/mail/send", json.dumps(body), headers)
            response = conn.getresponse()
            assert response.read() == b""
            assert response.status == 202
            assert response.getheader("Content-Length") == "0"
    finally:
        conn.close()

    assert server.connections == 1
    assert len(server.accepted) == 3


def test_stats_endpoint(server: SendGridServer, client: SendGridAPIClient) -> None:
    client.send(make_mail())
    with pytest.raises(BadRequestsError):
        post_raw(client, raw_body(personalizations=None))

    with urllib.request.urlopen(server.url + "/__stats", timeout=2) as response:
        stats = json.loads(response.read())

    assert stats["accepted"] == 1 and stats["rejected"] == 1
    assert stats["connections"] == 3  # two sends + this GET
    assert len(server.requests) == 2  # control endpoints are not recorded


def test_reset_clears_everything(server: SendGridServer, client: SendGridAPIClient) -> None:
    client.send(make_mail())
    server.script(("status", 500))
    server.reset()
    assert server.accepted == [] and server.requests == []
    assert server.connections == 0 and server.scripts_pending == 0


def test_standalone_process_serves_until_terminated() -> None:
    script = Path(__file__).with_name("sendgrid_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = SendGridAPIClient(api_key="SG.test", host=url)
        assert client.send(make_mail()).status_code == 202
        with urllib.request.urlopen(url + "/__stats", timeout=2) as response:
            assert json.loads(response.read())["accepted"] == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
