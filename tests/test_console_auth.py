"""Who may use the console and the ops API: off when unset, Basic or the SSO proxy's header,
roles, the `console-user` command, and the audit log's own listing."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug.security import check_password_hash

from receiver import create_app
from receiver.cli import console_user_command
from receiver.config import ConfigError, load_config
from tests.console_users import USERS, basic, enable


def test_console_and_ops_api_are_absent_when_no_user_is_configured(client: Any) -> None:
    for path in ("/api/ops/audit", "/api/ops/events", "/admin", "/admin/events"):
        answer = client.get(path, headers=basic("olga"))
        assert answer.status_code == 404, path


@pytest.fixture
def console(config: dict[str, Any], redis: Any, test_clock: Any) -> Any:
    enable(config)
    app = create_app(config, clock=test_clock)
    return app.test_client()


def test_unknown_user_and_wrong_password_get_401_with_a_basic_challenge(console: Any) -> None:
    for headers in ({}, basic("mallory", "x"), basic("olga", "wrong-password"), basic("vic", "")):
        answer = console.get("/api/ops/audit", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
        assert answer.json["error"] == "unauthorized"


def test_viewer_and_operator_read(console: Any) -> None:
    for name in ("vic", "olga"):
        answer = console.get("/api/ops/audit", headers=basic(name))
        assert answer.status_code == 200
        assert answer.json == {"items": [], "next_cursor": None}


def test_the_sso_header_names_the_user_and_only_a_configured_one(
    config: dict[str, Any], redis: Any, test_clock: Any
) -> None:
    enable(
        config,
        CONSOLE_TRUSTED_HEADER="X-Auth-Request-Email",
        CONSOLE_TRUSTED_PROXIES="10.0.0.0/8,::1",
    )
    client = create_app(config, clock=test_clock).test_client()
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    sso = {"X-Auth-Request-Email": "vic"}
    assert client.get("/api/ops/audit", headers=sso, environ_base=proxy).status_code == 200
    refused = client.get(
        "/api/ops/audit", headers={"X-Auth-Request-Email": "eve@example.com"}, environ_base=proxy
    )
    assert refused.status_code == 401
    # The same header from anyone but the proxy (a client that reached the service directly,
    # whatever X-Forwarded-For it claims) names nobody.
    direct = {"REMOTE_ADDR": "203.0.113.9"}
    claimed = {**sso, "X-Forwarded-For": "10.1.2.3"}
    assert client.get("/api/ops/audit", headers=claimed, environ_base=direct).status_code == 401
    # Without the header (a request that did not come through the proxy), Basic still works.
    assert client.get("/api/ops/audit", headers=basic("olga")).status_code == 200


@pytest.mark.parametrize(
    "users",
    [
        "olga:admin:pbkdf2:sha256:1000$salt$hash",  # no such role
        "olga:operator:",  # no hash
        ":viewer:pbkdf2:sha256:1000$salt$hash",  # no name
        "olga:operator:plaintext-password",  # not a werkzeug hash
    ],
)
def test_a_malformed_user_entry_stops_start_up_without_echoing_it(
    config: dict[str, Any], users: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({**config, "CONSOLE_USERS": users})
    assert "CONSOLE_USERS" in str(caught.value)
    assert "plaintext-password" not in str(caught.value)


def test_the_same_name_twice_and_a_header_without_users_are_refused(config: dict[str, Any]) -> None:
    twice = USERS + "," + USERS.split(",")[0]
    with pytest.raises(ConfigError, match="twice"):
        load_config({**config, "CONSOLE_USERS": twice})
    with pytest.raises(ConfigError, match="CONSOLE_TRUSTED_HEADER"):
        load_config({**config, "CONSOLE_TRUSTED_HEADER": "X-Auth-Request-Email"})


def test_console_user_prints_an_entry_that_start_up_accepts_and_that_logs_in(
    config: dict[str, Any], redis: Any, test_clock: Any
) -> None:
    result = CliRunner().invoke(
        console_user_command, ["dana", "operator"], input="a-long-password\na-long-password\n"
    )
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    name, role, password_hash = line.split(":", 2)
    assert (name, role) == ("dana", "operator")
    assert check_password_hash(password_hash, "a-long-password")
    assert "a-long-password" not in result.output.replace("Password", "")
    config.update(CONSOLE_USERS=line)
    client = create_app(config, clock=test_clock).test_client()
    headers = basic("dana", "a-long-password")
    assert client.get("/api/ops/audit", headers=headers).status_code == 200


def test_console_user_refuses_a_short_password_and_a_name_with_a_colon() -> None:
    short = CliRunner().invoke(console_user_command, ["dana", "viewer"], input="short\nshort\n")
    assert short.exit_code != 0 and "12 characters" in short.output
    colon = CliRunner().invoke(
        console_user_command, ["da:na", "viewer"], input="a-long-password\na-long-password\n"
    )
    assert colon.exit_code != 0


def test_the_audit_log_pages_newest_first_through_entries_of_one_second(
    console: Any, test_clock: Any
) -> None:
    audit = console.application.extensions["audit"]
    test_clock.freeze(1_800_000_000)
    for n in range(5):
        audit.record("olga", "replay", {"event": f"ev_{n}"}, 1, f"reason {n}")
    test_clock.now += 1
    audit.record("olga", "cancel", {"notice": "nt_1"}, 1, "later")
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = console.get("/api/ops/audit", headers=basic("vic"), query_string=query).json
        seen += [entry["reason"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen[0] == "later"
    assert sorted(seen[1:]) == [f"reason {n}" for n in range(5)]
    assert console.get("/api/ops/audit?cursor=nonsense", headers=basic("vic")).status_code == 400
    assert console.get("/api/ops/audit?limit=0", headers=basic("vic")).status_code == 400


def test_audit_entries_older_than_the_retention_are_dropped(console: Any, test_clock: Any) -> None:
    audit = console.application.extensions["audit"]
    test_clock.freeze(1_800_000_000)
    audit.record("olga", "replay", {"event": "old"}, 1, "old")
    test_clock.now += 31 * 86400
    audit.record("olga", "replay", {"event": "new"}, 1, "new")
    items = console.get("/api/ops/audit", headers=basic("vic")).json["items"]
    assert [entry["reason"] for entry in items] == ["new"]
