"""Every key in Redis is one docs/redis-keys.md names, and every Lua script says what it touches.

The table is the map an operator reads before touching Redis by hand; these tests keep it true.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from receiver.pipeline.sweeper import sweep
from receiver.store import keys
from tests.coverage_events import T0, assignment, policy, session
from tests.events import (
    MAYA,
    assignment_created,
    charge_succeeded,
    invoice,
    platform_event,
    sg_event,
)
from tests.signing import SIGNATURE, TIMESTAMP, public_b64, sign

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "redis-keys.md"


def documented_patterns() -> dict[str, re.Pattern[str]]:
    """The first column of the table as regular expressions; `<...>` stands for an id."""
    patterns = {}
    for line in TABLE.read_text().splitlines():
        found = re.match(r"\| `([^`]+)` \|", line)
        if found:
            key = found.group(1)
            regex = re.sub(r"<[^>]+>", ".+", re.escape(key))
            patterns[key] = re.compile(regex + r"\Z")
    return patterns


def undocumented(names: list[str]) -> list[str]:
    patterns = documented_patterns().values()
    return sorted(n for n in names if not any(p.match(n) for p in patterns))


def test_the_table_names_every_key_builder():
    built = [value for name, value in vars(keys).items() if name.isupper()]
    for fn in vars(keys).values():
        if inspect.isfunction(fn) and fn.__module__ == keys.__name__:
            built.append(fn(*["x1"] * len(inspect.signature(fn).parameters)))
    assert len(built) > 15
    assert undocumented(built) == []


def test_the_table_rejects_what_it_does_not_name():
    assert undocumented(["event:1099policy:ev_1", "rq:job:abc", "suppressed:none"]) == []
    assert undocumented(["eventx", "cache:foo", "notice"]) == ["cache:foo", "eventx", "notice"]


@pytest.fixture
def sg_key(config: dict[str, Any]) -> Any:
    key = ec.generate_private_key(ec.SECP256R1())
    config.update(SENDGRID_WEBHOOK_PUBLIC_KEY=public_b64(key), ORG_REP_EMAILS="ops@org.example")
    return key


def post_sendgrid(client: Any, key: Any, events: list[Any], now: float) -> Any:
    body = json.dumps(events).encode()
    stamp = str(int(now))
    headers = {
        SIGNATURE: sign(key, body, stamp),
        TIMESTAMP: stamp,
    }
    return client.post("/webhooks/sendgrid", data=body, headers=headers)


def test_a_full_pipeline_writes_only_documented_keys(
    sg_key, callback, send, client, rt, drain, sendgrid, redis, test_clock
):
    now = int(test_clock())
    # 1099Policy: a charge (confirmation), coverage events, one parked until its contractor
    # is known, and a charge for a contractor whose email nobody told us yet (waits).
    assert send.ten99(policy("policy.active", T0 - 90)).status_code == 202
    assert send.ten99(session("application.complete", T0 - 100)).status_code == 202
    assert send.ten99(assignment("assignment.active", T0 - 10)).status_code == 202
    assert send.ten99(charge_succeeded("in_1")).status_code == 202
    waiting = {"id": "cn_9", "first_name": "Sam"}
    assert send.ten99(charge_succeeded("in_9", contractor=waiting)).status_code == 202
    # The platform: an assignment (reminder), two invoices of one job (ledger, re-price),
    # and the late contact that releases the waiting notice.
    assert send.platform(assignment_created(), "msg_a").status_code == 202
    assert send.platform(invoice("invoice.created", 5000, now, "in_2"), "msg_i1").status_code == 202
    assert (
        send.platform(invoice("invoice.updated", 6000, now + 1, "in_2"), "msg_i2").status_code
        == 202
    )
    contact = {"id": "cn_9", "email": "sam@example.com", "first_name": "Sam", "last_name": "R"}
    assert send.platform(platform_event("contractor.updated", contact), "msg_c").status_code == 202
    # An unknown type and a duplicate are stored (and counted) too.
    assert send.platform(platform_event("thing.unknown", {"id": "x"}), "msg_u").status_code == 202
    assert send.ten99(charge_succeeded("in_1")).status_code == 200
    drain()
    accepted = [m["body"]["custom_args"]["notice_record"] for m in sendgrid.accepted]
    assert len(accepted) >= 2
    # SendGrid reports: one delivered, one bounced (suppression, then the rep's alert).
    batch = [
        sg_event("delivered", accepted[0], email=MAYA["email"]),
        sg_event("bounce", accepted[1], email="sam@example.com", type="bounce", reason="550"),
    ]
    assert post_sendgrid(client, sg_key, batch, test_clock()).status_code == 200
    drain()
    redis.delete(keys.SWEEPER_LOCK)
    sweep(rt, now=test_clock() + 86400 * 2)
    drain()

    names = [k.decode() for k in redis.scan_iter(count=1000)]
    assert undocumented(names) == []
    families = {n.split(":")[0] for n in names}
    assert {
        "event",
        "notice",
        "contractor",
        "job",
        "ledger",
        "invoice_premium",
        "settled",
        "suppressed",
        "sgevent",
        "coverage",
        "rq",
    } <= families


def test_every_lua_script_names_its_keys_and_arguments():
    scripts = {}
    for path in (ROOT / "receiver").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and "redis.call(" in node.value.value
            ):
                name = f"{path.relative_to(ROOT)}:{node.targets[0].id}"  # type: ignore[attr-defined]
                scripts[name] = node.value.value
    assert len(scripts) >= 12
    for name, source in scripts.items():
        lines = source.strip().splitlines()
        comments = " ".join(line for line in lines if line.startswith("--"))
        code = " ".join(line for line in lines if not line.startswith("--"))
        assert "KEYS[1]" in comments, name
        if "ARGV" in code:
            assert "ARGV" in comments, name
