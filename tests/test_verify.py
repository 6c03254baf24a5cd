"""Known-answer and matrix tests of both signature schemes (pure functions, no services)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from receiver.errors import SignatureError
from receiver.ingest.verify import StandardWebhooksVerifier, TV1Verifier

T = 1700000000
CONTRACT_BODY = b'{"id":"ev_1","type":"policy.active","created":1700000000,"data":{"id":"pl_1"}}'
SW2_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
SW3_SECRET = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
SW2_BODY = (
    b'{"type":"invoice.paid","timestamp":"2024-01-01T00:00:00Z",'
    b'"data":{"id":"inv_123","amount":4200}}'
)
SW2_SIG = "v1,3GfvgIqgSd1IbOFA4EU52ZlmW2A2P/nzSqOBd6fBvCA="
SW3_SIG = "v1,fn5yknI/nanWwspJAsfxbcJzNBr5C+Ltks60136XHJU="
ST1_SECRET = "whsec_test_5f3b9c0e1d2a4b6c8e0f1a2b3c4d5e6f"
ST2_SECRET = "whsec_test_OLDSECRET000000000000000000000"
ST1_BODY = (
    b'{"id":"evt_1TestEvent","object":"event","type":"payment_intent.succeeded",'
    b'"data":{"object":{"id":"pi_123","amount":2000}}}'
)
ST1_V1 = "1665bccadb874166cdc760db94f6a811e19f8c02d98bb3d5e6f9d6cb05db77ac"
ST2_V1 = "b37ec34f6926887a85401298164e1662adc33352d64d763bdf7b7f2eb2e34469"

HEADER = "Ten99Policy-Signature"


def tv1(*secrets: str) -> TV1Verifier:
    return TV1Verifier(list(secrets), HEADER, 300)


def sw(*secrets: str) -> StandardWebhooksVerifier:
    return StandardWebhooksVerifier(list(secrets), 300)


def sw_headers(sig: str, msg_id: str = "msg_2mZ8qT0example", ts: str = str(T)) -> dict:
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}


# --- t/v1 (1099Policy) -------------------------------------------------------------------


def test_contract_worked_example_computed_with_hmac():
    mac = hmac.new(b"whsec_test_secret", b"1700000000." + CONTRACT_BODY, hashlib.sha256)
    header = {HEADER: f"t={T},v1={mac.hexdigest()}"}
    assert tv1("whsec_test_secret").verify(CONTRACT_BODY, header, now=T) is None


def test_stripe_vector_st1_and_rotation():
    assert tv1(ST1_SECRET).verify(ST1_BODY, {HEADER: f"t={T},v1={ST1_V1}"}, now=T + 30) is None
    both = {HEADER: f"t={T},v1={ST1_V1},v1={ST2_V1}"}
    assert tv1(ST1_SECRET).verify(ST1_BODY, both, now=T) is None
    assert tv1(ST2_SECRET).verify(ST1_BODY, both, now=T) is None
    # Two configured secrets, header signed only by the old one.
    old_only = {HEADER: f"t={T},v1={ST2_V1}"}
    assert tv1(ST1_SECRET, ST2_SECRET).verify(ST1_BODY, old_only, now=T) is None


def test_key_is_the_whole_secret_string_prefix_included():
    stripped = "bf883b323a50b655659398eaea6cd6081e8e66a137b33b0c705974f4583e43fd"
    with pytest.raises(SignatureError):
        tv1(ST1_SECRET).verify(ST1_BODY, {HEADER: f"t={T},v1={stripped}"}, now=T)


@pytest.mark.parametrize("delta", [-300, 300])
def test_tv1_tolerance_edge_accepted(delta):
    assert tv1(ST1_SECRET).verify(ST1_BODY, {HEADER: f"t={T},v1={ST1_V1}"}, now=T - delta) is None


@pytest.mark.parametrize("delta", [-301, 301])
def test_tv1_tolerance_edge_plus_one_rejected(delta):
    with pytest.raises(SignatureError, match="tolerance"):
        tv1(ST1_SECRET).verify(ST1_BODY, {HEADER: f"t={T},v1={ST1_V1}"}, now=T - delta)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"t={T}",  # no v1
        f"t={T},v0={ST1_V1}",  # only another scheme
        f"v1={ST1_V1}",  # no timestamp
        f"t={T},v1={ST1_V1.upper()}",  # uppercase hex
        f"t={T},v1=zz{ST1_V1[2:]}",  # non-hex
        f"t={T}, v1={ST1_V1}",  # space after comma
        f"t={T},v1",  # entry without '='
        f"t=1700000000.5,v1={ST1_V1}",
        f"t= 1700000000,v1={ST1_V1}",
        f"t=+1700000000,v1={ST1_V1}",
        f"t=,v1={ST1_V1}",
        f"t={T},t={T},v1={ST1_V1}",
        f"t={T},v1=\u00e9{ST1_V1[1:]}",  # non-ASCII
        f"t=99999999999999999999,v1={ST1_V1}",
    ],
)
def test_tv1_malformed_headers_are_signature_errors(header):
    headers = {} if header is None else {HEADER: header}
    with pytest.raises(SignatureError):
        tv1(ST1_SECRET).verify(ST1_BODY, headers, now=T)


@pytest.mark.parametrize(
    "body",
    [ST1_BODY + b"\n", ST1_BODY.replace(b":", b": "), b"\xff\xfe" + ST1_BODY],
)
def test_tv1_altered_or_non_utf8_body_rejected(body):
    with pytest.raises(SignatureError):
        tv1(ST1_SECRET).verify(body, {HEADER: f"t={T},v1={ST1_V1}"}, now=T)


def test_tv1_header_name_is_configurable():
    v = TV1Verifier([ST1_SECRET], "X-Other-Signature", 300)
    assert v.verify(ST1_BODY, {"X-Other-Signature": f"t={T},v1={ST1_V1}"}, now=T) is None
    with pytest.raises(SignatureError):
        v.verify(ST1_BODY, {HEADER: f"t={T},v1={ST1_V1}"}, now=T)


# --- Standard Webhooks (platform) ----------------------------------------------------------


def test_published_vector_sw1():
    v = sw("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    headers = sw_headers(
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
    )
    assert v.verify(b'{"test": 2432232314}', headers, now=1614265330 + 30) == (
        "msg_p5jXN8AQM9LWM0D4loKWxJek"
    )


def test_sw2_sw3_and_rotation_header():
    assert sw(SW2_SECRET).verify(SW2_BODY, sw_headers(SW2_SIG), now=T + 30)
    assert sw(SW3_SECRET).verify(SW2_BODY, sw_headers(SW3_SIG), now=T)
    rotation = sw_headers(f"{SW3_SIG} {SW2_SIG}")
    assert sw(SW2_SECRET).verify(SW2_BODY, rotation, now=T)
    assert sw(SW3_SECRET).verify(SW2_BODY, rotation, now=T)
    assert sw(SW2_SECRET, SW3_SECRET).verify(SW2_BODY, sw_headers(SW3_SIG), now=T)


def test_sw4_utf8_body():
    body = '{"name":"Zoë","city":"Kraków"}'.encode()
    headers = sw_headers("v1,vuRBB9cVgXtDoz5JgnNkec+NIyCeyBVplvTrys/qf4E=", "msg_utf8")
    assert sw(SW2_SECRET).verify(body, headers, now=T) == "msg_utf8"


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "invoice.paid", "timestamp": "2024-01-01T00:00:00Z", '
        b'"data": {"id": "inv_123", "amount": 4200}}',
        SW2_BODY + b"\n",
        b"\xff" + SW2_BODY,
    ],
)
def test_sw_negative_bodies(body):
    with pytest.raises(SignatureError):
        sw(SW2_SECRET).verify(body, sw_headers(SW2_SIG), now=T)


@pytest.mark.parametrize("delta,ok", [(300, True), (-300, True), (301, False), (-301, False)])
def test_sw_tolerance_edges(delta, ok):
    v = sw(SW2_SECRET)
    if ok:
        assert v.verify(SW2_BODY, sw_headers(SW2_SIG), now=T + delta)
    else:
        with pytest.raises(SignatureError, match="tolerance"):
            v.verify(SW2_BODY, sw_headers(SW2_SIG), now=T + delta)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        sw_headers(""),
        sw_headers("v1"),  # entry without a comma
        sw_headers("v1,a,b"),  # three parts
        sw_headers("v1,not-base64!!"),
        sw_headers("v1a,3GfvgIqgSd1IbOFA4EU52ZlmW2A2P/nzSqOBd6fBvCA="),
        sw_headers("v2,3GfvgIqgSd1IbOFA4EU52ZlmW2A2P/nzSqOBd6fBvCA="),
        sw_headers("v1,\u00e93GfvgIqgSd1IbOFA4EU52ZlmW2A2P/nzSqOBd6fBvCA"),
        sw_headers(SW2_SIG, ts="1700000000.5"),
        sw_headers(SW2_SIG, ts=" 1700000000"),
        sw_headers(SW2_SIG, ts="+1700000000"),
        sw_headers(SW2_SIG, ts=""),
        sw_headers(SW2_SIG, msg_id=""),
        sw_headers(SW2_SIG, msg_id="msg.with.dots"),
        {"webhook-id": "msg_2mZ8qT0example", "webhook-signature": SW2_SIG},
    ],
)
def test_sw_malformed_headers_are_signature_errors(headers):
    with pytest.raises(SignatureError):
        sw(SW2_SECRET).verify(SW2_BODY, headers, now=T)
