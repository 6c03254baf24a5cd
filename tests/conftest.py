"""Shared fixtures: a real redis-server per test session, the app, a client, a SendGrid stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from receiver import create_app
from tests.redis_server import RedisServer
from tests.signing import PLATFORM_SECRET, TEN99_SECRET, body_of, sw_headers, tv1_header


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def config(redis_server: RedisServer, tmp_path: Path) -> dict[str, Any]:
    return {
        "REDIS_URL": redis_server.url,
        "TEN99POLICY_WEBHOOK_SECRETS": TEN99_SECRET,
        "PLATFORM_WEBHOOK_SECRETS": PLATFORM_SECRET,
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "EMAIL_FROM": "notices@example.com",
    }


@pytest.fixture
def app(config: dict[str, Any], redis: redis_lib.Redis) -> Any:
    app = create_app(config)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Sender:
    """Posts signed deliveries to the app, as 1099Policy and the platform would."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def ten99(self, event: dict[str, Any] | bytes, **kw: Any) -> Any:
        body = body_of(event)
        headers = {"Ten99Policy-Signature": tv1_header(body, **kw)}
        return self.client.post("/webhooks/1099policy", data=body, headers=headers)

    def platform(self, event: dict[str, Any] | bytes, msg_id: str, **kw: Any) -> Any:
        body = body_of(event)
        return self.client.post(
            "/webhooks/platform", data=body, headers=sw_headers(body, msg_id, **kw)
        )


@pytest.fixture
def send(client: Any) -> Sender:
    return Sender(client)


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app behind a real threaded HTTP server on a free port; yields its base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
