"""Redis over TLS (issue 12: "any rediss:// URL works too"), against real redis-servers that
listen on TLS only (`--port 0 --tls-port N`) and ask for a client certificate (Redis's default
`tls-auth-clients yes`), with a CA and certificates made for the test (tests/tls.py).

- One server, `REDIS_URL=rediss://...` and the REDIS_TLS_* files: the Procfile's web process
  accepts a signed delivery, a `worker.py` processes it and the email reaches the SendGrid
  stand-in; the same with redis-py's own URL query arguments instead of the settings; without
  the CA the server's certificate is refused (a 503, not a plain-text fallback).
- A primary, a replica and three sentinels, all TLS only (`tls-replication yes`), with
  REDIS_SENTINEL_TLS: web and worker find the primary through the sentinels, and after the
  primary is SIGKILLed and the replica promoted, the next delivery is accepted and mailed by
  the same processes.
- The RQ dashboard (/admin/rq) reads through the app's own client, so it lists the queues
  over TLS and behind Sentinel.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from receiver import create_app
from receiver.store import keys
from receiver.store.embedded import free_port
from tests.console_users import basic, enable
from tests.events import charge_succeeded
from tests.processes import deliver, start_web, start_worker, stop, wait_until
from tests.sentinels import MASTER, sentinel_cluster
from tests.signing import body_of, tv1_header
from tests.tls import TLSFiles, TLSRedisServer, make_tls_files, tls_capable

pytestmark = pytest.mark.skipif(
    not tls_capable(), reason="this redis-server was built without TLS (Debian's has it)"
)


@pytest.fixture
def tls(tmp_path: Path) -> TLSFiles:
    return make_tls_files(tmp_path / "tls")


@pytest.fixture
def tls_redis(tmp_path: Path, tls: TLSFiles) -> Iterator[TLSRedisServer]:
    server = TLSRedisServer(tmp_path / "redis", tls).start()
    yield server
    server.stop()


def post(client: Any, invoice: str) -> Any:
    body = body_of(charge_succeeded(invoice))
    return client.post(
        "/webhooks/1099policy", data=body, headers={"Ten99Policy-Signature": tv1_header(body)}
    )


def status_of(redis: Any, invoice: str) -> bytes | None:
    value: bytes | None = redis.hget(keys.event("1099policy", f"ev_paid_{invoice}"), "status")
    return value


def test_a_delivery_over_tls_is_accepted_processed_and_mailed(
    tls_redis: TLSRedisServer, tls: TLSFiles, config: dict[str, Any], sendgrid: Any, tmp_path: Path
) -> None:
    config.update(REDIS_URL=tls_redis.url, **tls.settings())
    worker = start_worker(config, tmp_path / "worker.log")
    port = free_port()
    web = start_web(config, port, tmp_path / "web.log")
    try:
        assert deliver(port, "in_tls") == 202
        [mail] = sendgrid.wait_for(1, timeout=60)
        assert mail["body"]["personalizations"][0]["to"][0]["email"]
        on_server = tls_redis.client()
        assert wait_until(lambda: status_of(on_server, "in_tls") == b"done")
        assert deliver(port, "in_tls") == 200  # the duplicate, found over TLS too
        assert [worker.poll(), web.poll()] == [None, None]
    finally:
        stop(web)
        stop(worker)


def test_the_urls_own_tls_arguments_work_and_the_ca_is_required(
    tls_redis: TLSRedisServer, tls: TLSFiles, config: dict[str, Any]
) -> None:
    # redis-py reads ssl_* query arguments of a rediss:// URL itself (as text): the settings
    # are the documented way, but a URL written for redis-py elsewhere works unchanged.
    query = urlencode({"ssl_ca_certs": tls.ca, "ssl_certfile": tls.cert, "ssl_keyfile": tls.key})
    client = create_app({**config, "REDIS_URL": f"{tls_redis.url}?{query}"}).test_client()
    assert post(client, "in_url_args").status_code == 202
    assert status_of(tls_redis.client(), "in_url_args") == b"received"
    # Without the CA (the system's trust store) the server's certificate is not trusted: the
    # delivery is refused as while Redis is down, never sent in plain text instead.
    without_ca = {**tls.settings(), "REDIS_TLS_CA_FILE": ""}
    client = create_app({**config, "REDIS_URL": tls_redis.url, **without_ca}).test_client()
    answer = post(client, "in_untrusted")
    assert answer.status_code == 503 and answer.json["error"] == "unavailable"
    assert client.get("/readyz").status_code == 503
    assert status_of(tls_redis.client(), "in_untrusted") is None


def queues_listed(client: Any) -> dict[str, int]:
    answer = client.get("/admin/rq/0/data/queues.json", headers=basic("vic"))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return {q["name"]: q["count"] for q in answer.json["queues"]}


def test_the_rq_dashboard_reads_through_the_apps_tls_client(
    tls_redis: TLSRedisServer, tls: TLSFiles, config: dict[str, Any]
) -> None:
    enable(config, REDIS_URL=tls_redis.url, **tls.settings())
    client = create_app(config).test_client()
    assert post(client, "in_dash").status_code == 202  # queued, no worker runs
    assert queues_listed(client)["events"] == 1
    page = client.get("/admin/rq/", headers=basic("vic")).get_data(as_text=True)
    assert f"rediss://127.0.0.1:{tls_redis.port}/0" in page and str(tls.ca) not in page
    for path in (
        "/admin/rq/0/view/workers",
        "/admin/rq/0/view/jobs",
        "/admin/rq/0/data/workers.json",
    ):
        assert client.get(path, headers=basic("vic")).status_code == 200, path
    # One Redis: no other dashboard instance to switch to.
    assert client.get("/admin/rq/1/data/queues.json", headers=basic("vic")).status_code == 404


def test_sentinel_over_tls_finds_the_primary_and_the_new_one_after_a_failover(
    tls: TLSFiles, config: dict[str, Any], sendgrid: Any, tmp_path: Path
) -> None:
    with sentinel_cluster(tmp_path / "cluster", tls) as (primary, replica, sentinels):
        enable(
            config,
            REDIS_SENTINELS=sentinels.setting,
            REDIS_SENTINEL_MASTER=MASTER,
            REDIS_SENTINEL_TLS="true",
            **tls.settings(),
        )
        worker = start_worker(config, tmp_path / "worker.log")
        port = free_port()
        web = start_web(config, port, tmp_path / "web.log")
        try:
            assert deliver(port, "in_before") == 202
            sendgrid.wait_for(1, timeout=60)
            on_primary = primary.client()
            assert wait_until(lambda: status_of(on_primary, "in_before") == b"done")
            # The dashboard, behind Sentinel too (an app of this process, no worker's queue
            # work in the way: what it lists is what the app's client reads).
            console = create_app(config).test_client()
            assert "events" in queues_listed(console)

            primary.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            primary.proc.wait()  # type: ignore[union-attr]
            assert wait_until(lambda: sentinels.primary_port() == replica.port, timeout=60)
            # The web process's next requests ask the sentinels again (a 503 while the
            # switch is in progress, as without TLS); the same worker takes the event.
            assert wait_until(lambda: deliver(port, "in_after") == 202, timeout=60)
            sendgrid.wait_for(2, timeout=60)
            on_new_primary = replica.client()
            assert wait_until(lambda: status_of(on_new_primary, "in_after") == b"done")
            assert "events" in queues_listed(console)
            assert [worker.poll(), web.poll()] == [None, None]
        finally:
            stop(web)
            stop(worker)
