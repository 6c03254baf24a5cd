"""Behind the TLS proxy (CONSOLE_TRUSTED_PROXIES): its X-Forwarded-* are applied, anyone
else's are dropped; and the console's CSRF token is bound to the user (issue 19)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.console_users import basic, enable
from tests.events import charge_succeeded

PROXY = {"REMOTE_ADDR": "10.9.8.7"}
STRANGER = {"REMOTE_ADDR": "198.51.100.4"}
VIA_TLS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"}


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(
        config, CONSOLE_TRUSTED_PROXIES="10.0.0.0/8", CONSOLE_SIGNIN_LIMIT_PER_ADDRESS="1/minute"
    )


def _cookie(answer: Any) -> str:
    return answer.headers.get("Set-Cookie", "")


def test_the_proxys_forwarded_scheme_makes_the_csrf_cookie_secure(client: Any) -> None:
    page = client.get("/admin/events", headers={**basic("vic"), **VIA_TLS}, environ_base=PROXY)
    assert "Secure" in _cookie(page)
    spoofed = client.get(
        "/admin/events", headers={**basic("olga"), **VIA_TLS}, environ_base=STRANGER
    )
    assert "console_csrf=" in _cookie(spoofed) and "Secure" not in _cookie(spoofed)


def test_the_sign_in_limit_counts_the_client_behind_the_proxy_not_a_claimed_one(
    client: Any,
) -> None:
    # Through the proxy: the forwarded client address is what is counted.
    for client_address in ("203.0.113.1", "203.0.113.2"):
        forwarded = {**basic("nobody", "x"), "X-Forwarded-For": client_address}
        assert client.get("/admin/events", headers=forwarded, environ_base=PROXY).status_code == 401
    # From elsewhere: a claimed X-Forwarded-For changes nothing; the peer is counted.
    for claimed in ("192.0.2.1", "192.0.2.2"):
        answer = client.get(
            "/admin/events",
            headers={**basic("someone", "x"), "X-Forwarded-For": claimed},
            environ_base=STRANGER,
        )
        last = answer.status_code
    assert last == 429


def _token(page: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found
    return found.group(1)


def test_the_csrf_token_is_the_users_own(client: Any, rt: Any, send: Any, drain: Any) -> None:
    event = charge_succeeded("in_c")
    send.ten99(event)
    drain()
    action = f"/admin/events/1099policy/{event['id']}/replay"
    page = client.get(f"/admin/events/1099policy/{event['id']}", headers=basic("olga"))
    mine = _token(page)
    # A value planted as the cookie (from a sibling domain) and repeated in the form: refused.
    client.set_cookie("console_csrf", "A" * 43, path="/admin")
    planted = client.post(
        action, data={"csrf_token": "A" * 43, "reason": "x"}, headers=basic("olga")
    )
    assert planted.status_code == 403
    # Another user's token is not olga's.
    vic = re.search(
        r"console_csrf=([^;]+)", _cookie(client.get("/admin/events", headers=basic("vic")))
    )
    assert vic and len(vic.group(1)) == len(mine) and vic.group(1) != mine
    done = client.post(action, data={"csrf_token": mine, "reason": "x"}, headers=basic("olga"))
    assert done.status_code == 303
