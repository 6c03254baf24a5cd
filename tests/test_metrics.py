"""/metrics: Prometheus text read from Redis, so every process's counts add up to one total."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from receiver import create_app
from tests.events import MAYA, assignment_created, charge_succeeded, platform_event

PREFIX = "ten99_receiver_"
TOKEN = "metrics-token-0123456789"


def scrape(client: Any, **headers: str) -> dict[str, Any]:
    """Every sample of a scrape, by family name."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}


def value(families: dict[str, Any], family: str, sample: str = "", **labels: str) -> float:
    """The sum of a family's samples (named `sample`, default the family's own) that carry
    these label values; 0 when there are none."""
    name = PREFIX + family
    wanted = name + sample if sample else None
    total = 0.0
    for s in families[name].samples:
        if wanted and s.name != wanted:
            continue
        if not wanted and s.name not in (name, name + "_total"):
            continue
        if all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def run_pipeline(send: Any, drain: Any) -> None:
    """Two new 1099Policy events and a duplicate, a platform event, an unknown type, a refusal."""
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    assert send.ten99(charge_succeeded("in_2")).status_code == 202
    assert send.ten99(charge_succeeded("in_1")).status_code == 200
    assert send.platform(assignment_created(), "msg_1").status_code == 202
    assert send.platform(platform_event("thing.unknown", {"id": "x"}), "msg_u").status_code == 202
    assert send.ten99(charge_succeeded("in_3"), t=1).status_code == 401
    drain()


def test_a_pipeline_run_is_counted_as_a_user_would_count_it(
    send, client, rt, drain, sendgrid, clock
):
    run_pipeline(send, drain)
    families = scrape(client)

    def webhooks(**labels: str) -> float:
        return value(families, "webhook_requests", **labels)

    assert webhooks(source="1099policy", outcome="queued") == 2
    assert webhooks(source="1099policy", outcome="duplicate") == 1
    assert webhooks(source="platform", outcome="queued") == 1
    assert webhooks(source="platform", outcome="ignored") == 1
    assert webhooks(source="1099policy", outcome="rejected", reason="invalid_signature") == 1
    assert webhooks() == 6
    assert families[PREFIX + "webhook_requests"].type == "counter"

    assert value(families, "events_processed", outcome="done") == 3
    assert value(families, "events_processed", type="invoice.charge_card_succeeded") == 2
    assert value(families, "event_processing_seconds", "_count") == 3
    buckets = [
        s
        for s in families[PREFIX + "event_processing_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert {s.labels["le"] for s in buckets} >= {"0.005", "60.0", "+Inf"}

    # Every email the SendGrid stand-in took is an accepted notice, and a 2xx answer.
    sent = len(sendgrid.accepted)
    assert sent >= 2
    assert value(families, "notices", outcome="accepted") == sent
    assert value(families, "notices", notice="payment_confirmation", outcome="accepted") == 2
    assert value(families, "sendgrid_responses", status_class="2xx") == sent
    assert value(families, "notice_latency_seconds", "_count") == sent
    # The two halves of webhook -> email: received -> processed, due -> accepted.
    assert value(families, "event_latency_seconds", "_count") == 3
    assert value(families, "event_latency_seconds", "_sum") == pytest.approx(0, abs=1)

    # Received by the frozen clock; nothing left unprocessed.
    last = value(families, "last_event_received_timestamp_seconds", source="1099policy")
    assert last == pytest.approx(clock(), abs=1)
    assert value(families, "unprocessed_events") == 0
    assert value(families, "oldest_unprocessed_event_age_seconds") == 0


def test_a_repeated_send_task_counts_nothing_twice(send, client, rt, drain, sendgrid):
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    drain()
    [mail] = sendgrid.accepted
    rid = mail["body"]["custom_args"]["notice_record"]
    assert rt.sender.send(rid) == "accepted"  # a re-run of a finished task
    families = scrape(client)
    assert value(families, "notices", outcome="accepted") == 1
    assert value(families, "sendgrid_responses") == 1


def test_sendgrid_errors_are_counted_by_status_class(send, client, rt, drain, sendgrid):
    sendgrid.script(("status", 500))
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    drain()
    families = scrape(client)
    assert value(families, "sendgrid_responses", status_class="5xx") == 1
    assert value(families, "notices", outcome="pending") == 1  # a retry is scheduled


def test_the_oldest_unprocessed_event_ages_with_the_clock(send, client, clock):
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    clock.now += 90
    families = scrape(client)
    assert value(families, "unprocessed_events") == 1
    assert value(families, "oldest_unprocessed_event_age_seconds") == pytest.approx(90, abs=1)


def test_no_label_value_is_an_id_or_an_address(send, client, rt, drain, sendgrid):
    run_pipeline(send, drain)
    body = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(body):
        assert family.name.startswith(PREFIX)
        for sample in family.samples:
            for label in sample.labels.values():
                assert "@" not in label
                assert not re.search(r"\b(in|cn|jb|nt|msg|evt?|derived)_", label), label
    for secret in (MAYA["email"], MAYA["first_name"], "in_1", "msg_1"):
        assert secret not in body


def test_two_app_instances_sharing_redis_report_the_same_totals(config, redis, send, test_clock):
    other = create_app(config, clock=test_clock).test_client()
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    assert other.post("/webhooks/1099policy", data=b"{}").status_code == 401
    first, second = scrape(send.client), scrape(other)
    for families in (first, second):
        assert value(families, "webhook_requests", outcome="queued") == 1
        assert value(families, "webhook_requests", reason="invalid_signature") == 1


def test_another_process_adds_to_the_same_totals(config, redis, send, client):
    """A separate Python process (as a second gunicorn worker would be) counts into Redis."""
    script = textwrap.dedent(
        f"""
        from receiver import create_app
        from tests.events import charge_succeeded
        from tests.signing import body_of, tv1_header
        import time
        app = create_app({config!r})
        body = body_of(charge_succeeded("in_other"))
        headers = {{"Ten99Policy-Signature": tv1_header(body, t=int(time.time()))}}
        answer = app.test_client().post("/webhooks/1099policy", data=body, headers=headers)
        assert answer.status_code == 202
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    assert value(scrape(client), "webhook_requests", outcome="queued") == 2


@pytest.fixture
def locked(config: dict[str, Any], redis: Any) -> Any:
    config.update(METRICS_TOKEN=TOKEN)
    return create_app(config).test_client()


def test_a_metrics_token_is_required_when_set(locked):
    assert locked.get("/metrics").status_code == 401
    assert locked.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert locked.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    ok = scrape(locked, Authorization=f"Bearer {TOKEN}")
    assert PREFIX + "webhook_requests" in ok


def test_without_a_token_metrics_are_open(client):
    assert client.get("/metrics").status_code == 200


def test_a_short_metrics_token_stops_start_up(config):
    from receiver.errors import ConfigError

    config.update(METRICS_TOKEN="short")
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        create_app(config)


def test_webhook_to_email_latency_covers_notices_sent_at_once(send, client, rt, drain, sendgrid):
    later = int(rt.clock()) + 10 * 86400
    assert send.ten99(charge_succeeded("in_e2e")).status_code == 202
    assert send.platform(assignment_created(charge_at=later), "msg_far").status_code == 202
    drain()
    families = scrape(client)
    confirmations = value(families, "end_to_end_seconds", "_count", notice="payment_confirmation")
    assert confirmations == 1
    assert value(families, "end_to_end_seconds", "_sum", notice="payment_confirmation") > 0
    # A reminder scheduled days ahead is not a webhook -> email latency.
    assert value(families, "end_to_end_seconds", "_count", notice="assignment_charge_reminder") == 0


# What the alert rules (deploy/prometheus/alerts.yml) read besides the counters above.


def test_workers_seen_counts_workers_by_their_last_heartbeat(client, redis, rt, clock):
    from receiver.store.workers import SEEN_TTLS, ReceiverWorker

    assert value(scrape(client), "workers_seen") == 0
    worker = ReceiverWorker(rt.queues, connection=redis, serializer=rt.queue.serializer)
    worker.register_birth()
    try:
        worker.heartbeat()
        last = worker.last_heartbeat.timestamp()
        seen_for = SEEN_TTLS * worker.worker_ttl
        clock.freeze(last + seen_for - 1)
        assert value(scrape(client), "workers_seen") == 1
        clock.freeze(last + seen_for + 1)  # silent too long: not counted
        assert value(scrape(client), "workers_seen") == 0
    finally:
        worker.register_death()
    clock.freeze(last)
    assert value(scrape(client), "workers_seen") == 0  # a worker that stopped leaves at once


def test_an_unsent_notice_past_its_due_time_is_overdue(send, client, rt, drain, redis, clock):
    from receiver.store import keys

    later = int(clock()) + 10 * 86400
    assert send.platform(assignment_created(charge_at=later), "msg_far").status_code == 202
    drain()
    [(_, due)] = redis.zrange(keys.NOTICES_PENDING, 0, -1, withscores=True)
    assert due > clock()  # a reminder, due days from now
    families = scrape(client)
    assert value(families, "overdue_notices") == 0
    assert PREFIX + "oldest_overdue_notice_age_seconds" not in families
    clock.freeze(due + 900)  # nothing sent it (no worker ran)
    families = scrape(client)
    assert value(families, "overdue_notices") == 1
    assert value(families, "oldest_overdue_notice_age_seconds") == pytest.approx(900)


def test_redis_persistence_and_replicas_are_read_from_redis(client):
    families = scrape(client)
    assert value(families, "redis_aof_enabled") == 1  # the tests' Redis keeps an AOF
    assert value(families, "redis_aof_last_write_ok") == 1
    assert value(families, "redis_rdb_last_bgsave_ok") == 1
    assert value(families, "redis_connected_replicas") == 0
    assert value(families, "redis_min_replica_acks") == 0


def test_a_failed_snapshot_and_an_aof_left_off_are_reported(config, tmp_path):
    import shutil

    from receiver.store.embedded import RedisServer
    from tests.processes import wait_until

    server = RedisServer(tmp_path / "lost", appendonly=False).start()
    try:
        on_server = server.client()
        shutil.rmtree(server.directory)  # the disk Redis snapshots to is gone
        on_server.bgsave()
        assert wait_until(lambda: not on_server.info("persistence")["rdb_bgsave_in_progress"])
        families = scrape(create_app({**config, "REDIS_URL": server.url}).test_client())
    finally:
        server.stop()
    assert value(families, "redis_aof_enabled") == 0
    assert value(families, "redis_rdb_last_bgsave_ok") == 0


def test_missing_replicas_show_against_the_acks_asked_for(config, redis):
    from tests.events import charge_succeeded as paid
    from tests.signing import body_of, tv1_header

    client = create_app({**config, "REDIS_MIN_REPLICA_ACKS": "1"}).test_client()
    body = body_of(paid("in_lonely"))
    headers = {"Ten99Policy-Signature": tv1_header(body)}
    assert client.post("/webhooks/1099policy", data=body, headers=headers).status_code == 503
    families = scrape(client)
    assert value(families, "redis_min_replica_acks") == 1
    assert value(families, "redis_connected_replicas") == 0
    assert value(families, "webhook_requests", outcome="rejected", reason="unavailable") == 1
    # Counted once, as a webhook refusal with its reason, not again as a server error.
    assert value(families, "http_server_errors") == 0


def test_server_errors_are_counted_by_status(config, redis):
    app = create_app(config)  # not TESTING: an exception becomes a 500, as in production

    def broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", view_func=broken)
    client = app.test_client()
    assert client.get("/broken").status_code == 500
    assert client.get("/healthz").status_code == 200
    assert client.post("/webhooks/sendgrid", data=b"[]").status_code == 503  # no public key
    families = scrape(client)
    assert value(families, "http_server_errors", status="500", area="none") == 1
    assert value(families, "http_server_errors") == 1
    assert value(families, "webhook_requests", source="sendgrid", reason="not_configured") == 1


def test_the_reconcile_interval_is_zero_without_an_api_key(config, redis):
    assert value(scrape(create_app(config).test_client()), "reconcile_interval_seconds") == 0
    on = create_app({**config, "TEN99POLICY_API_KEY": "t9sk_test_key_0123456789"})
    assert value(scrape(on.test_client()), "reconcile_interval_seconds") == 3600
