"""Failed console sign-ins are limited per client address and per user name, across processes
(the counts live in Redis), and refused with 429 before any password hash is checked; in the
web process the hash check runs off the gevent hub, so it holds up no other request."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from receiver import create_app
from tests.console_users import basic, enable
from tests.processes import ROOT


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(
        config,
        CONSOLE_SIGNIN_LIMIT_PER_ADDRESS="3 per minute",
        CONSOLE_SIGNIN_LIMIT_PER_USER="5 per minute",
    )


def _from(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": address}


def test_an_address_past_its_failures_gets_429_even_with_the_right_password(
    client: Any,
) -> None:
    for _ in range(3):
        answer = client.get("/admin/events", headers=basic("olga", "wrong"))
        assert answer.status_code == 401
    # Right credentials now: refused all the same, so the hash was not what decided.
    refused = client.get("/admin/events", headers=basic("olga"))
    assert refused.status_code == 429
    assert "too many failed sign-ins" in refused.get_data(as_text=True)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another address is not held back by this one's failures.
    other = client.get("/admin/events", headers=basic("vic"), environ_base=_from("10.0.0.9"))
    assert other.status_code == 200


def test_a_name_past_its_failures_gets_429_from_any_address(client: Any) -> None:
    for n in range(5):  # five addresses, one failure each: no address reaches its limit
        answer = client.get(
            "/admin/events", headers=basic("vic", "guess"), environ_base=_from(f"10.0.1.{n}")
        )
        assert answer.status_code == 401
    fresh = _from("10.0.2.1")
    assert client.get("/admin/events", headers=basic("vic"), environ_base=fresh).status_code == 429
    assert client.get("/admin/events", headers=basic("olga"), environ_base=fresh).status_code == 200


def test_unknown_names_count_too(client: Any) -> None:
    for _ in range(3):
        assert client.get("/admin/events", headers=basic("nobody", "x")).status_code == 401
    assert client.get("/admin/events", headers=basic("nobody", "x")).status_code == 429


def test_the_count_is_shared_by_every_process(
    config: dict[str, Any], client: Any, redis: Any
) -> None:
    other_process = create_app(config).test_client()
    for _ in range(3):
        assert other_process.get("/admin/events", headers=basic("olga", "no")).status_code == 401
    assert client.get("/admin/events", headers=basic("olga")).status_code == 429
    assert redis.keys("console:signin:*"), "the counts live in Redis under keys.CONSOLE_SIGNIN"
    assert not [k for k in redis.keys("console:signin:*") if b"olga" in k or b"127.0" in k]


def test_a_signed_in_user_is_not_locked_out_by_someone_guessing_their_name(client: Any) -> None:
    assert client.get("/admin/events", headers=basic("olga")).status_code == 200
    for n in range(5):  # the name's limit, from attackers' addresses
        client.get(
            "/admin/events", headers=basic("olga", "guess"), environ_base=_from(f"10.6.{n}.6")
        )
    assert client.get("/admin/events", headers=basic("olga", "guess")).status_code == 429
    # Olga's browser resends what already passed in this process: no hash, no count, no 429.
    assert client.get("/admin/events", headers=basic("olga")).status_code == 200


def test_a_bad_limit_setting_stops_the_start(config: dict[str, Any]) -> None:
    from receiver.errors import ConfigError

    config["CONSOLE_SIGNIN_LIMIT_PER_USER"] = "often"
    with pytest.raises(ConfigError, match="CONSOLE_SIGNIN_LIMIT_PER_USER"):
        create_app(config)


_UNDER_GEVENT = """
from gevent import monkey

monkey.patch_all()
import gevent
from werkzeug.security import generate_password_hash

from receiver.console.users import ConsoleUsers
from receiver.views.console_auth import off_hub

slow = generate_password_hash("right", method="pbkdf2:sha256:300000")
users = ConsoleUsers({"slowpoke": ("viewer", slow)}, None)
checking = False
served = 0


def other_requests():
    global served
    while True:
        served += checking
        gevent.sleep(0)


def sign_in():
    global checking
    checking = True
    assert users.from_password("slowpoke", "wrong", run=off_hub) is None
    checking = False


other = gevent.spawn(other_requests)
gevent.spawn(sign_in).join()
other.kill()
print(served)
"""


def test_the_hash_check_runs_off_the_gevent_hub() -> None:
    """Under gevent (as in the web process), other greenlets run while a password hash is
    being checked; a check on the hub would let none run until it ended."""
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_GEVENT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0
