"""The receive contract (docs/event-contract.md), row by row, against a real Redis."""

from __future__ import annotations

import json
import time

import pytest

from tests.signing import (
    PLATFORM_OLD_SECRET,
    TEN99_OLD_SECRET,
    TEN99_SECRET,
    sw_headers,
    tv1_header,
)

EVENT = {"id": "ev_1", "type": "policy.active", "created": 1700000000, "data": {"id": "pl_1"}}


def stored(redis, source="1099policy", event_id="ev_1"):
    return {k.decode(): v for k, v in redis.hgetall(f"event:{source}:{event_id}").items()}


def queued_jobs(redis):
    return redis.lrange("rq:queue:events", 0, -1)


def test_accepted_event_is_stored_with_raw_bytes_and_queued(send, redis):
    body = json.dumps(EVENT, separators=(",", ":")).encode()
    r = send.ten99(body)
    assert r.status_code == 202
    assert r.json == {"id": "ev_1", "status": "queued"}
    record = stored(redis)
    assert record["body"] == body
    assert record["status"] == b"received"
    assert record["type"] == b"policy.active"
    assert b"Ten99Policy-Signature" not in record["headers"]
    assert 0 < redis.ttl("event:1099policy:ev_1") <= 30 * 86400
    assert len(queued_jobs(redis)) == 1


def test_duplicate_is_200_and_queues_nothing(send, redis):
    assert send.ten99(EVENT).status_code == 202
    r = send.ten99(EVENT)  # a retry: new timestamp, new signature, same event
    assert r.status_code == 200
    assert r.json == {"id": "ev_1", "status": "duplicate"}
    assert len(queued_jobs(redis)) == 1
    assert stored(redis)["duplicates"] == b"1"


def test_unknown_type_is_stored_as_ignored_and_not_queued(send, redis):
    r = send.ten99({**EVENT, "type": "policy.renamed_in_2027"})
    assert r.status_code == 202
    assert r.json == {"id": "ev_1", "status": "ignored"}
    assert stored(redis)["status"] == b"ignored"
    assert queued_jobs(redis) == []


def test_shape_b_nested_object(send, redis):
    event = {
        "id": "evt_abc",
        "type": "certificate.flagged",
        "created": 1706745620,
        "data": {"object": {"id": "cert_1", "status": "flagged"}},
    }
    assert send.ten99(event).status_code == 202
    assert stored(redis, event_id="evt_abc")["type"] == b"certificate.flagged"


def test_shape_c_without_id_gets_a_stable_derived_id(send, redis):
    event = {
        "type": "policy.active",
        "created": "2023-09-29T19:28:51",
        "data": {"id": "pl_iJ5A9JKnG8", "is_active": True},
    }
    first = send.ten99(event)
    assert first.status_code == 202
    assert first.json["id"].startswith("derived_")
    again = send.ten99(event)
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    later = send.ten99({**event, "created": 1696015999})
    assert later.status_code == 202 and later.json["id"] != first.json["id"]


def test_rotation_old_secret_still_accepted(app, redis):
    from receiver import create_app

    cfg = dict(app.config["RECEIVER"].__dict__)
    app2 = create_app(
        {
            "REDIS_URL": cfg["REDIS_URL"],
            "TEN99POLICY_WEBHOOK_SECRETS": f"{TEN99_SECRET},{TEN99_OLD_SECRET}",
            "PLATFORM_WEBHOOK_SECRETS": f"whsec_AAAA,{PLATFORM_OLD_SECRET}",
        }
    )
    c = app2.test_client()
    body = json.dumps(EVENT).encode()
    r = c.post(
        "/webhooks/1099policy",
        data=body,
        headers={"Ten99Policy-Signature": tv1_header(body, TEN99_OLD_SECRET)},
    )
    assert r.status_code == 202
    pbody = json.dumps({"type": "contractor.updated", "data": {"id": "cn_1"}}).encode()
    r = c.post(
        "/webhooks/platform", data=pbody, headers=sw_headers(pbody, "msg_1", PLATFORM_OLD_SECRET)
    )
    assert r.status_code == 202


def test_platform_event_uses_webhook_id(send, redis):
    event = {
        "type": "contractor.updated",
        "created": 1700000000,
        "data": {"id": "cn_1", "email": "a@example.com"},
    }
    r = send.platform(event, "msg_42")
    assert (r.status_code, r.json) == (202, {"id": "msg_42", "status": "queued"})
    assert send.platform(event, "msg_42").status_code == 200
    assert stored(redis, "platform", "msg_42")["type"] == b"contractor.updated"


# --- bad input: each row is a clear 4xx with a JSON body, and nothing is stored ------------


def assert_nothing_stored(redis):
    assert redis.keys("event:*") == []
    assert queued_jobs(redis) == []


def test_missing_signature_401(client, redis):
    r = client.post("/webhooks/1099policy", data=json.dumps(EVENT))
    assert r.status_code == 401
    assert r.json["error"] == "invalid_signature"
    assert_nothing_stored(redis)


def test_wrong_secret_401(client, redis):
    body = json.dumps(EVENT).encode()
    r = client.post(
        "/webhooks/1099policy",
        data=body,
        headers={"Ten99Policy-Signature": tv1_header(body, "whsec_wrong")},
    )
    assert r.status_code == 401 and r.json["error"] == "invalid_signature"
    assert_nothing_stored(redis)


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamp_outside_tolerance_401(send, redis, skew):
    r = send.ten99(EVENT, t=int(time.time()) + skew)
    assert r.status_code == 401 and "tolerance" in r.json["detail"]
    assert_nothing_stored(redis)


@pytest.mark.parametrize(
    "header", ["t=abc,v1=00", "garbage", "t=1700000000.5,v1=" + "0" * 64, "t=\u00ff,v1=1"]
)
def test_malformed_signature_headers_401_never_500(client, redis, header):
    r = client.post(
        "/webhooks/1099policy", data=json.dumps(EVENT), headers={"Ten99Policy-Signature": header}
    )
    assert r.status_code == 401 and r.json["error"] == "invalid_signature"
    assert_nothing_stored(redis)


def test_platform_non_utf8_body_401(client, redis):
    body = b"\xff\xfe{}"
    headers = sw_headers(b"{}", "msg_1")
    r = client.post("/webhooks/platform", data=body, headers=headers)
    assert r.status_code == 401
    assert_nothing_stored(redis)


@pytest.mark.parametrize(
    "body,detail",
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "ev_1", "data": {}}', "no event type"),
        (b'{"id": "ev_1", "type": "", "data": {}}', "no event type"),
        (b'{"id": "ev_1", "type": "policy.active", "data": []}', "data"),
        (b'{"id": 7, "type": "policy.active", "data": {}}', "id"),
        (b'{"id": "ev_1", "type": "policy.active", "created": "yesterday"}', "created"),
        (b'{"type": "policy.active", "data": {}}', "no id"),
    ],
)
def test_signed_but_unusable_body_400(send, redis, body, detail):
    r = send.ten99(body)
    assert r.status_code == 400
    assert r.json["error"] == "invalid_payload"
    assert detail in r.json["detail"]
    assert_nothing_stored(redis)


# --- signed bodies a parser chokes on: 400 invalid_payload, never a 500 ---------------------


@pytest.fixture
def as_sender(app, send):
    """`send`, with the app answering an uncaught error with the 500 a sender would see
    (instead of raising it into the test)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return send


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "ev_\ud800", "type": "policy.active", "created": 1, "data": {"id": "pl_1"}},
        {"id": "ev_ok", "type": "policy.\ud800", "created": 1, "data": {"id": "pl_1"}},
        {"type": "policy.active", "created": 1, "data": {"id": "pl_\ud800"}},  # shape C
        # Anywhere else too: accepted, it would fail every processing retry (UnicodeEncodeError).
        {
            "id": "ev_c",
            "type": "invoice.charge_card_succeeded",
            "created": 1,
            "data": {"id": "in_1", "contractor": {"id": "cn_1", "email": "m\udc00@example.com"}},
        },
        {"id": "ev_k", "type": "policy.active", "created": 1, "data": {"id": "pl_1", "\ud800": 1}},
    ],
)
def test_lone_surrogate_anywhere_is_400_not_500(as_sender, redis, doc):
    # The escape "\ud800" is valid JSON but not encodable text: it is refused when the body is
    # parsed, before a Redis key, a stored field or a derived id would fail to encode it.
    r = as_sender.ten99(json.dumps(doc).encode())
    assert r.status_code == 400, r.status_code


def test_surrogate_encoded_in_the_bytes_is_400_and_nothing_is_stored(as_sender, redis):
    # Python's JSON reader decodes bytes with "surrogatepass": no escape needed.
    body = (
        b'{"id": "ev_raw", "type": "policy.active", "created": 1, '
        b'"data": {"id": "pl_1", "note": "\xed\xa0\x80"}}'
    )
    r = as_sender.ten99(body)
    assert r.status_code == 400 and "surrogate" in r.get_json()["detail"]
    assert not redis.keys("event:*")


def test_non_ascii_text_and_escaped_pairs_are_accepted(as_sender, redis):
    doc = {
        "id": "ev_text",
        "type": "policy.active",
        "created": 1,
        "data": {"id": "pl_1", "holder": "Zoë Ñúñez 김", "mood": "\U0001f600"},
    }
    for body in (json.dumps(doc).encode(), json.dumps(doc, ensure_ascii=False).encode()):
        r = as_sender.ten99(body)
        assert r.status_code in (200, 202), r.get_json()
    assert redis.hget("event:1099policy:ev_text", "status") == b"received"


def test_deeply_nested_json_is_400_not_500(as_sender, redis):
    # Nesting deep enough to exhaust the JSON reader's recursion (a 600 KB signed body) is an
    # unusable payload, not a crash.
    body = b'{"type": "policy.active", "data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    r = as_sender.ten99(body)
    assert r.status_code == 400, r.status_code


def test_webhook_with_a_superscript_created_is_400_not_500(as_sender):
    # "²" passes str.isdigit() but not int(): an unreadable `created` is a bad payload.
    response = as_sender.ten99(
        {"id": "ev_sup", "type": "policy.active", "created": "²", "data": {"id": "pl_1"}}
    )
    assert response.status_code == 400


def test_too_large_413_by_content_length(app, client, redis):
    limit = app.config["RECEIVER"].WEBHOOK_MAX_BYTES
    body = b'{"pad": "' + b"x" * limit + b'"}'
    r = client.post(
        "/webhooks/1099policy", data=body, headers={"Ten99Policy-Signature": tv1_header(body)}
    )
    assert r.status_code == 413 and r.json == {"error": "payload_too_large"}
    assert_nothing_stored(redis)


def test_too_large_413_when_streamed_without_length(app, live_server, redis):
    import http.client
    from urllib.parse import urlsplit

    limit = app.config["RECEIVER"].WEBHOOK_MAX_BYTES
    url = urlsplit(live_server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    chunks = (b"x" * 65536 for _ in range(limit // 65536 + 2))
    conn.request(
        "POST",
        "/webhooks/1099policy",
        body=chunks,
        encode_chunked=True,
        headers={"Ten99Policy-Signature": "t=1,v1=" + "0" * 64},
    )
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == "payload_too_large"
    assert_nothing_stored(redis)


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_only_post_405(client, method):
    r = getattr(client, method)("/webhooks/1099policy")
    assert r.status_code == 405
    assert r.json["error"] == "method_not_allowed"
    assert "POST" in r.headers["Allow"]


def test_unknown_path_is_json_404(client):
    r = client.post("/webhooks/nobody")
    assert r.status_code == 404 and r.json["error"] == "not_found"
