"""REDIS_MIN_REPLICA_ACKS: a 2xx only once the write reached that many replicas (WAIT after the
accept script, in the same round trip); otherwise a 503 the sender retries."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from receiver import create_app
from receiver.config import load_config
from receiver.pipeline.runtime import build
from receiver.store import keys
from receiver.store.embedded import RedisServer
from tests.events import charge_succeeded
from tests.processes import wait_until
from tests.records import process_without_sending
from tests.signing import body_of, tv1_header


def post(client: Any, invoice: str) -> Any:
    body = body_of(charge_succeeded(invoice))
    headers = {"Ten99Policy-Signature": tv1_header(body)}
    return client.post("/webhooks/1099policy", data=body, headers=headers)


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    primary = RedisServer(tmp_path / "primary").start()
    replica = RedisServer(
        tmp_path / "replica", args=("--replicaof", "127.0.0.1", str(primary.port))
    ).start()
    try:
        on_replica = redis_lib.Redis(port=replica.port)
        assert wait_until(lambda: on_replica.info("replication")["master_link_status"] == "up")
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_without_the_replicas_asked_for_a_delivery_is_503_and_its_retry_too(config, redis):
    client = create_app({**config, "REDIS_MIN_REPLICA_ACKS": "1"}).test_client()
    r = post(client, "in_lonely")
    assert r.status_code == 503
    assert r.json == {"error": "unavailable", "detail": "not yet replicated"}
    assert int(r.headers["Retry-After"]) > 0
    # The write ran on the primary; the retry finds it (a duplicate) and waits for it again.
    assert redis.exists(keys.event("1099policy", "ev_paid_in_lonely"))
    assert post(client, "in_lonely").status_code == 503


def test_a_2xx_means_the_replica_has_it(primary_and_replica, config):
    primary, replica = primary_and_replica
    settings = {**config, "REDIS_URL": primary.url, "REDIS_MIN_REPLICA_ACKS": "1"}
    client = create_app(settings).test_client()
    assert post(client, "in_replicated").status_code == 202
    on_replica = redis_lib.Redis(port=replica.port)
    assert on_replica.hget(keys.event("1099policy", "ev_paid_in_replicated"), "status") == (
        b"received"
    )
    assert post(client, "in_replicated").status_code == 200  # a duplicate, replicated too
    # The replica gone: nothing more is acknowledged.
    replica.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    replica.proc.wait()  # type: ignore[union-attr]
    r = post(client, "in_after_replica")
    assert r.status_code == 503 and r.json["detail"] == "not yet replicated"


def test_an_email_goes_out_only_once_a_replica_has_its_claim(
    primary_and_replica, config, sendgrid, test_clock
):
    """The claim is the record's guard against a second email; one a failover could lose
    would let the record be found `pending` and sent again. So with acks asked for, a claim
    no replica has is put back, and the email waits for the replica."""
    primary, replica = primary_and_replica
    settings = {**config, "REDIS_URL": primary.url, "REDIS_MIN_REPLICA_ACKS": "1"}
    rt = build(load_config(settings), clock=test_clock)
    client = create_app(settings, clock=test_clock).test_client()
    assert post(client, "in_claimed").status_code == 202
    [rid] = process_without_sending(rt, keys.event("1099policy", "ev_paid_in_claimed"))
    replica.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    replica.proc.wait()  # type: ignore[union-attr]

    assert rt.sender.send(rid) == "pending"
    record = rt.records.get(rid)
    assert record["state"] == "pending" and record["attempts"] == "0"
    assert "had not reached a replica" in record["last_error"]
    assert sendgrid.accepted == []
    # Its send task is scheduled, a few seconds ahead, as for a retry.
    scheduled = rt.records.queue.scheduled_job_registry.get_job_ids()
    assert any(job_id.startswith(rid) for job_id in scheduled), scheduled

    replica.start()
    on_replica = redis_lib.Redis(port=replica.port)
    assert wait_until(lambda: on_replica.info("replication")["master_link_status"] == "up")
    assert rt.sender.send(rid) == "accepted"
    assert [m["body"]["custom_args"]["notice_record"] for m in sendgrid.accepted] == [rid]
    assert on_replica.hget(keys.notice(rid), "state") in (b"sending", b"accepted")
