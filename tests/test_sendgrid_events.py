"""SendGrid's Event Webhook end to end: signed batches in, notice records and suppressions out.

A P-256 key pair is minted here and batches are signed exactly as SendGrid signs them (ECDSA
SHA-256 over timestamp + raw body, base64 DER signature in
X-Twilio-Email-Event-Webhook-Signature). Real Redis, RQ jobs run by SimpleWorker, mails to the
SendGrid stand-in; the notice records come from real 1099Policy/platform events.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from receiver import create_app
from receiver.config import load_config
from receiver.delivery.sendgrid_events import REASON_CHARS, mask_addresses
from receiver.delivery.suppressions import Suppressions, address_hash
from receiver.errors import ConfigError
from tests.events import assignment_created, charge_succeeded, sg_event
from tests.signing import SIGNATURE, TIMESTAMP, SendGridPoster, public_b64, sign

MAYA = "maya@example.com"
T0 = int(time.time())


@pytest.fixture(scope="module")
def sg_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(autouse=True)
def _webhook_key(config: dict[str, Any], sg_key: Any) -> None:
    """Configure the public key before any app in this module is built."""
    config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = public_b64(sg_key)


@pytest.fixture
def post(client: Any, sg_key: Any) -> SendGridPoster:
    return SendGridPoster(client, sg_key)


def record(redis: Any, rid: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis.hgetall(f"notice:{rid}").items()}


def sent_record_id(sendgrid: Any, index: int = -1) -> str:
    """The record id SendGrid got in custom_args, which its events echo back."""
    return sendgrid.accepted[index]["body"]["custom_args"]["notice_record"]


@pytest.fixture
def rid(send: Any, rt: Any, drain: Any, sendgrid: Any) -> str:
    """A payment confirmation to Maya, accepted by SendGrid."""
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    drain()
    assert len(sendgrid.accepted) == 1
    return sent_record_id(sendgrid)


# --- applying events ----------------------------------------------------------------------


def test_batch_moves_the_record_and_leaves_the_send_state(post, redis, rid):
    r = post(
        [
            sg_event("processed", rid),
            sg_event("delivered", rid, ts=T0 + 2, response="250 2.0.0 OK", tls=1),
        ]
    )
    assert r.status_code == 200
    assert r.json == {
        "events": 2,
        "applied": 2,
        "stale": 0,
        "duplicate": 0,
        "unmatched": 0,
        "ignored": 0,
    }
    rec = record(redis, rid)
    assert rec["state"] == "accepted"
    assert (rec["delivery"], rec["delivery_at"], rec["delivery_reason"]) == (
        "delivered",
        str(T0 + 2),
        "250 2.0.0 OK",
    )
    assert rec["delivery_events"] == "2"


def test_duplicates_are_counted_once(post, redis, rid):
    processed, delivered = sg_event("processed", rid), sg_event("delivered", rid, ts=T0 + 1)
    r = post([processed, delivered, processed])
    assert (r.json["applied"], r.json["duplicate"]) == (2, 1)
    r = post([delivered, processed])  # SendGrid retrying the whole batch
    assert (r.json["applied"], r.json["duplicate"]) == (0, 2)
    # A redelivery with a new sg_event_id is still the same event.
    r = post([{**delivered, "sg_event_id": "bmV3LWlkLWZvci10aGUtc2FtZS1ldmVudA"}])
    assert r.json["duplicate"] == 1
    assert record(redis, rid)["delivery_events"] == "2"


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["processed", "deferred", "delivered"]))
)
def test_any_order_ends_delivered(post, redis, rid, order):
    for n, name in enumerate(order):  # one batch each: the worst case for ordering
        assert post([sg_event(name, rid, ts=T0 + n)]).status_code == 200
    assert record(redis, rid)["delivery"] == "delivered"


def test_ranks_never_move_backwards(post, redis, rid):
    post([sg_event("deferred", rid, response="421 try later", attempt="1")])
    assert record(redis, rid)["delivery"] == "deferred"
    post([sg_event("delivered", rid, ts=T0 + 5)])  # forward
    r = post([sg_event("deferred", rid, ts=T0 + 9, attempt="2")])  # backwards: ignored
    assert r.json["stale"] == 1 and record(redis, rid)["delivery"] == "delivered"
    post([sg_event("bounce", rid, ts=T0 + 60, type="bounce", reason="550 gone")])  # async
    post([sg_event("delivered", rid, ts=T0 + 61), sg_event("dropped", rid, reason="Invalid")])
    rec = record(redis, rid)
    assert (rec["delivery"], rec["delivery_type"], rec["delivery_reason"]) == (
        "bounced",
        "bounce",
        "550 gone",
    )


def test_engagement_junk_and_strangers_are_acknowledged(post, redis, rid):
    batch = [
        1,
        "x",
        None,
        [],
        {"event": "open", "notice_record": rid},
        {"event": "click", "url": "https://example.com"},
        {"no": "event"},
        sg_event("delivered", "nt_" + "0" * 32),  # expired or another environment's
        sg_event("delivered", None),
        sg_event("delivered", "not-a-record-id"),
    ]
    r = post(batch)
    assert r.status_code == 200
    assert (r.json["ignored"], r.json["unmatched"], r.json["applied"]) == (7, 3, 0)
    assert "delivery" not in record(redis, rid)


@pytest.mark.parametrize("body", [b"not json", b'{"event": "delivered"}', b""])
def test_signed_but_not_an_array_is_400(post, body):
    r = post(body)
    assert r.status_code == 400 and r.json["error"] == "invalid_payload"


# --- what does not verify ----------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "wrong_key",
        "tampered_body",
        "timestamp_changed",
        "whitespace_reserialized",
        "no_signature",
        "no_timestamp",
        "empty_signature",
        "bad_padding",
        "not_base64",
        "non_ascii_signature",
        "too_long_signature",
        "garbage_der",
        "stale",
        "future",
        "fraction_timestamp",
        "signed_timestamp",
        "spaced_timestamp",
        "non_utf8_body",
    ],
)
def test_what_does_not_verify_is_401_and_changes_nothing(client, post, redis, rid, sg_key, case):
    body = json.dumps([sg_event("bounce", rid, type="bounce", reason="550")]).encode()
    now = str(int(time.time()))
    good = {SIGNATURE: sign(sg_key, body, now), TIMESTAMP: now}
    other = ec.generate_private_key(ec.SECP256R1())
    headers, data = dict(good), body
    if case == "wrong_key":
        headers[SIGNATURE] = sign(other, body, now)
    elif case == "tampered_body":
        data = body.replace(b"550", b"551")
    elif case == "timestamp_changed":
        headers[TIMESTAMP] = str(int(now) - 1)
    elif case == "whitespace_reserialized":
        data = json.dumps(json.loads(body), indent=1).encode()
    elif case == "no_signature":
        del headers[SIGNATURE]
    elif case == "no_timestamp":
        del headers[TIMESTAMP]
    elif case == "empty_signature":
        headers[SIGNATURE] = ""
    elif case == "bad_padding":
        headers[SIGNATURE] = "abc"  # the helper would raise binascii.Error
    elif case == "not_base64":
        headers[SIGNATURE] = "!!!!" + good[SIGNATURE][4:]
    elif case == "non_ascii_signature":
        headers[SIGNATURE] = "é" + good[SIGNATURE][1:]  # the helper would raise ValueError
    elif case == "too_long_signature":
        headers[SIGNATURE] = "A" * 4000
    elif case == "garbage_der":
        headers[SIGNATURE] = base64.b64encode(b"\x30\x02\x00\x00").decode()
    elif case in ("stale", "future"):
        t = str(int(now) + (-301 if case == "stale" else 301))
        headers.update({TIMESTAMP: t, SIGNATURE: sign(sg_key, body, t)})
    elif case in ("fraction_timestamp", "signed_timestamp", "spaced_timestamp"):
        t = {
            "fraction_timestamp": f"{now}.0",
            "signed_timestamp": f"+{now}",
            "spaced_timestamp": f" {now}",
        }[case]
        headers.update({TIMESTAMP: t, SIGNATURE: sign(sg_key, body, t)})
    elif case == "non_utf8_body":
        data = b"[\xff]"
        headers[SIGNATURE] = sign(sg_key, data, now)
    r = client.post("/webhooks/sendgrid", data=data, headers=headers)
    assert r.status_code == 401, r.json
    assert r.json["error"] == "invalid_signature"
    assert "delivery" not in record(redis, rid)
    assert not redis.keys("suppressed:*") and not redis.keys("sgevent:*")


@pytest.mark.parametrize("skew", [-300, 300])
def test_tolerance_is_symmetric_and_inclusive_on_an_injected_clock(config, redis, sg_key, skew):
    fixed = 1_800_000_000
    client = create_app(config, clock=lambda: fixed).test_client()
    poster = SendGridPoster(client, sg_key)
    assert poster([sg_event("processed", None)], t=fixed + skew).status_code == 200
    beyond = skew + (1 if skew > 0 else -1)
    assert poster([sg_event("processed", None)], t=fixed + beyond).status_code == 401


def test_too_large_413_by_content_length(config, redis, sg_key):
    client = create_app({**config, "WEBHOOK_MAX_BYTES": 2048}).test_client()
    events = [sg_event("processed", None) for _ in range(20)]
    r = SendGridPoster(client, sg_key)(events)
    assert r.status_code == 413 and r.json == {"error": "payload_too_large"}
    assert not redis.keys("sgevent:*")


def test_real_http_valid_batch_then_too_large_streamed(app, live_server, redis, sg_key):
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(live_server)
    body = json.dumps([sg_event("processed", None)]).encode()
    now = str(int(time.time()))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request(
        "POST",
        "/webhooks/sendgrid",
        body=body,
        headers={
            SIGNATURE: sign(sg_key, body, now),
            TIMESTAMP: now,
            "Content-Type": "application/json",
        },
    )
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["unmatched"] == 1
    limit = app.config["RECEIVER"].WEBHOOK_MAX_BYTES
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    chunks = (b" " * 65536 for _ in range(limit // 65536 + 2))
    conn.request(
        "POST",
        "/webhooks/sendgrid",
        body=chunks,
        encode_chunked=True,
        headers={SIGNATURE: "AAAA", TIMESTAMP: now},
    )
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == "payload_too_large"


def test_without_a_public_key_the_endpoint_is_503_not_configured(config, redis, sg_key):
    del config["SENDGRID_WEBHOOK_PUBLIC_KEY"]
    client = create_app(config).test_client()
    r = SendGridPoster(client, sg_key)([sg_event("processed", None)])
    assert r.status_code == 503
    assert r.json == {"error": "not_configured", "detail": "SENDGRID_WEBHOOK_PUBLIC_KEY is not set"}
    assert not redis.keys("sgevent:*")


def _p384_key() -> str:
    return public_b64(ec.generate_private_key(ec.SECP384R1()))


def _rsa_key() -> str:
    return public_b64(rsa.generate_private_key(public_exponent=65537, key_size=1024))


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        "AAAA",
        "QUJD",
        "-----BEGIN PUBLIC KEY-----",
        "  ",
        "MFkwEwYHKoZIzj0CAQYI",
        _p384_key(),
        _rsa_key(),
    ],
)
def test_malformed_public_key_stops_start_up(config, value):
    with pytest.raises(ConfigError) as raised:
        load_config({**config, "SENDGRID_WEBHOOK_PUBLIC_KEY": value})
    assert raised.value.name == "SENDGRID_WEBHOOK_PUBLIC_KEY"
    assert value.strip() == "" or value not in str(raised.value)


def test_public_key_with_surrounding_whitespace_is_accepted(config, sg_key):
    cfg = load_config({**config, "SENDGRID_WEBHOOK_PUBLIC_KEY": f"  {public_b64(sg_key)}\n"})
    assert cfg.SENDGRID_WEBHOOK_PUBLIC_KEY is not None


# --- the send state, by evidence -----------------------------------------------------------


def test_interrupted_record_is_accepted_by_a_processed_event(
    send, rt, drain, sendgrid, redis, post
):
    from tests.records import process_without_sending

    send.ten99(charge_succeeded("in_cut"))
    [rid] = process_without_sending(rt, "event:1099policy:ev_paid_in_cut")  # the record
    # A worker claimed the send and died during the SendGrid call: lease long gone.
    redis.hset(f"notice:{rid}", mapping={"state": "sending", "lease_until": 0, "attempts": 1})
    rt.records.requeue(rid)  # the sweeper finds it
    drain()
    assert record(redis, rid)["state"] == "failed"
    assert record(redis, rid)["last_error"].startswith("interrupted")
    assert post([sg_event("processed", rid)]).json["applied"] == 1
    rec = record(redis, rid)
    assert (rec["state"], rec["delivery"]) == ("accepted", "processed")
    assert "processed" in rec["accepted_by"]
    assert sendgrid.accepted == []  # nothing was (re)sent by us


def test_ambiguous_timeout_then_processed_event_is_not_sent_again(
    send, rt, drain, sendgrid, redis, post
):
    from receiver.pipeline.tasks import send_notice

    rt.mailer.timeout = 0.3
    # SendGrid takes it, but would answer long after our timeout (the stand-in stops waiting
    # when we hang up): however late a loaded machine wakes us, the call has timed out.
    sendgrid.script(("delay", 60.0))
    send.ten99(charge_succeeded("in_slow"))
    drain()
    [key] = [k.decode() for k in redis.keys("notice:*")]
    rid = key.removeprefix("notice:")
    assert record(redis, rid)["state"] == "pending"  # a retry is scheduled
    post([sg_event("processed", rid)])
    assert record(redis, rid)["state"] == "accepted"
    assert redis.zscore("notices:pending", key) is None
    assert send_notice(rid) == "accepted"  # the retry coming due sends nothing
    sendgrid.wait_for_requests(1, timeout=5)
    assert len(sendgrid.requests) == 1 and sendgrid.accepted == []


def test_evidence_received_during_the_send_call_prevents_the_resend(
    send, rt, drain, sendgrid, redis, post
):
    # SendGrid's `processed` for a record whose send call is still open (and then times out)
    # is kept on the record, so the retry sends nothing.
    from receiver.pipeline.tasks import send_notice

    # Ordered by the record's state, not by timing: our call stays open for 2 s (SendGrid
    # would answer after 60; the stand-in gives up when we hang up), and the reporter below
    # reports as soon as it sees `sending`. It has the whole 2 s, ample on a loaded machine.
    rt.mailer.timeout = 2.0
    sendgrid.script(("delay", 60.0))
    assert send.ten99(charge_succeeded("in_race")).status_code == 202
    posted: list[Any] = []

    def sendgrid_reports_it() -> None:
        deadline = time.monotonic() + 30  # only bounds a broken test
        while time.monotonic() < deadline:
            for key in redis.keys("notice:*"):
                if redis.hget(key, "state") == b"sending":
                    rid = key.decode().removeprefix("notice:")
                    posted.append((rid, post([sg_event("processed", rid)]).json))
                    return
            time.sleep(0.01)

    reporter = threading.Thread(target=sendgrid_reports_it)
    reporter.start()
    drain()  # the send times out: ambiguous, a retry is scheduled
    reporter.join(30)
    [(rid, answer)] = posted
    assert answer["applied"] == 1
    assert record(redis, rid)["delivery"] == "processed"
    sendgrid.wait_for_requests(1, timeout=10)  # the first call, recorded once we hung up
    send_notice(rid)  # the scheduled retry comes due; a resend would be recorded by now
    assert len(sendgrid.requests) == 1, "the mail SendGrid already reported was sent again"


# --- suppression -------------------------------------------------------------------------


def categories_and_args(mail: dict[str, Any]) -> str:
    body = mail["body"]
    return json.dumps(
        [
            body.get("categories"),
            body.get("custom_args"),
            [p.get("custom_args") for p in body["personalizations"]],
        ]
    )


def test_bounce_suppresses_later_notices_and_alerts_the_rep_once(
    send, rt, drain, sendgrid, redis, post, caplog
):
    import logging

    caplog.set_level(logging.DEBUG)
    send.platform(assignment_created(1200), "msg_a1")  # remembers the job and its rep
    drain()
    [mail] = sendgrid.accepted
    rid = sent_record_id(sendgrid)
    reason = f"550 5.1.1 <{MAYA}>: Recipient address rejected: User unknown"
    r = post(
        [
            sg_event(
                "bounce",
                rid,
                type="bounce",
                status="5.1.1",
                reason=reason,
                bounce_classification="Invalid Address",
            )
        ]
    )
    assert r.status_code == 200 and MAYA not in r.get_data(as_text=True)
    rec = record(redis, rid)
    assert rec["delivery"] == "bounced"
    assert rec["delivery_reason"] == (
        "550 5.1.1 <address>: Recipient address rejected: User unknown"
    )
    drain()  # the alert job
    alerts = [m for m in sendgrid.accepted if m["body"]["categories"] == ["address_suppressed_rep"]]
    assert len(alerts) == 1
    [alert] = alerts
    assert alert["body"]["personalizations"][0]["to"][0]["email"] == "rep@agency.example"
    assert MAYA not in categories_and_args(alert)
    assert MAYA in alert["body"]["content"][0]["value"]  # the rep needs to see it
    assert "Maya Thompson" in alert["body"]["subject"]

    sendgrid.reset()
    for n in range(3):  # several later notices to the same address
        send.ten99(charge_succeeded(f"in_later{n}"))
        send.ten99(
            {
                "id": f"ev_fail{n}",
                "type": "invoice.charge_card_failed",
                "created": T0,
                "data": {
                    "id": f"in_f{n}",
                    "premium_due": 2500,
                    "job": "jb_1",
                    "contractor": {
                        "id": "cn_1",
                        "email": "MAYA@example.com",
                        "first_name": "Maya",
                        "last_name": "Thompson",
                    },
                },
            }
        )
    drain()
    drain()  # alert jobs queued by held notices
    assert sendgrid.requests == []  # nothing to Maya, and no second alert
    states = [
        record(redis, k.decode().removeprefix("notice:"))["state"] for k in redis.keys("notice:*")
    ]
    assert states.count("suppressed") == 6
    # + the first notice + the alert + the reps' lapse alerts of the three failed charges,
    # scheduled CHARGE_RECOVERY_HOURS ahead (to the rep, not to the suppressed address)
    assert len([k for k in redis.keys("notice:*")]) == 6 + 2 + 3
    for key in redis.keys("*"):
        assert b"@" not in key and b"maya" not in key.lower()
    assert MAYA not in caplog.text and "maya@" not in caplog.text.lower()


def test_unmatched_bounce_suppresses_and_the_first_held_notice_alerts(
    send, rt, drain, sendgrid, redis, post, config
):
    post([sg_event("dropped", None, reason="Bounced Address")])  # e.g. another sender's mail
    assert Suppressions(redis).get(MAYA).reason == "dropped"
    assert redis.exists(f"suppressed:{address_hash(MAYA)}")
    send.platform(assignment_created(1200), "msg_a1")
    drain()
    drain()
    [alert] = sendgrid.accepted
    assert alert["body"]["categories"] == ["address_suppressed_rep"]
    assert "refuses to send" in alert["body"]["content"][0]["value"]
    send.ten99(charge_succeeded("in_2"))
    drain()
    drain()
    assert len(sendgrid.accepted) == 1


@pytest.mark.parametrize(
    "event",
    [
        sg_event("dropped", None, reason="Unsubscribed Address"),
        sg_event("dropped", None, reason="Invalid SMTPAPI header"),
        sg_event("bounce", None, type="blocked", reason="554 IP listed"),
        sg_event("bounce", None, type="expired", reason="421 try again later (72 hours)"),
        sg_event("deferred", None, response="421 busy"),
    ],
)
def test_sender_side_problems_do_not_suppress(send, rt, drain, sendgrid, redis, post, event):
    assert post([event]).status_code == 200
    assert not redis.keys("suppressed:*")
    send.ten99(charge_succeeded("in_ok"))
    drain()
    assert len(sendgrid.accepted) == 1


def test_spam_report_suppresses(post, redis, rid, send, drain, sendgrid):
    post([sg_event("delivered", rid), sg_event("spamreport", rid, ts=T0 + 100)])
    assert record(redis, rid)["delivery"] == "spamreport"
    assert Suppressions(redis).contains(MAYA.upper())
    sendgrid.reset()
    send.ten99(charge_succeeded("in_after_spam"))
    drain()
    drain()
    # charge_succeeded names its job by id only and no rep is configured: the alert is a
    # visible failed record, and nothing reaches SendGrid.
    assert sendgrid.requests == []
    alert = [
        r
        for k in redis.keys("notice:*")
        if (r := record(redis, k.decode().removeprefix("notice:")))["notice"]
        == "address_suppressed_rep"
    ]
    assert len(alert) == 1 and alert[0]["state"] == "failed"
    assert "ORG_REP_EMAILS" in alert[0]["last_error"]


def test_lifting_a_suppression_sends_again(post, redis, rid, send, drain, sendgrid):
    post([sg_event("bounce", rid, type="bounce", reason="550")])
    assert Suppressions(redis).remove(MAYA)
    sendgrid.reset()
    send.ten99(charge_succeeded("in_after_fix"))
    drain()
    assert [m["body"]["categories"] for m in sendgrid.accepted] == [["payment_confirmation"]]


def test_event_with_invalid_unicode_is_ignored_and_the_rest_applied(post, redis, rid):
    """Valid JSON can carry a lone surrogate; such an event can be neither hashed nor stored,
    so it is skipped as junk (never a 500) and the batch's other events still count."""
    junk = [
        sg_event("delivered", rid, sg_event_id="\ud800"),
        sg_event("bounce", None, email="victim\udc00@example.com", type="bounce"),
        sg_event("deferred", rid, reason="x\ud800"),
    ]
    r = post([*junk, sg_event("delivered", rid)])
    assert r.status_code == 200
    assert r.get_json()["ignored"] == 3 and r.get_json()["applied"] == 1
    assert record(redis, rid)["delivery"] == "delivered"
    assert not redis.keys("suppressed:*")


def test_huge_reason_is_masked_and_cut_without_stalling(post, redis, rid):
    """200 KB of reason without an `@` used to take minutes in the address mask (quadratic
    backtracking), holding the worker past gunicorn's timeout; only a prefix is searched now."""
    reason = f"450 <{MAYA}> busy " + "a" * 200_000
    r = post([sg_event("deferred", rid, response=reason)])
    assert r.status_code == 200 and r.get_json()["applied"] == 1
    kept = record(redis, rid)["delivery_reason"]
    assert kept.startswith("450 <address> busy aaa") and len(kept) == REASON_CHARS
    assert MAYA not in kept


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("550 <maya@example.com>: unknown", "550 <address>: unknown"),
        ("to maya.o'neil+tag@mail.example.co.uk, cc x@y.z", "to <address>, cc <address>"),
        ("refused: 'maya@example.com'", "refused: <address>'"),
        ("no address here", "no address here"),
        ("@@@ a@ @b", "@@@ a@ @b"),
    ],
)
def test_mask_addresses(text: str, masked: str) -> None:
    assert mask_addresses(text) == masked
