"""The bulk-replay preview is bounded and an operator's (issue 19): it looks at no more than
PREVIEW_BUDGET stored events and then answers "more than N"; a viewer may not run it."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.console import replays
from tests.console_users import basic, enable
from tests.events import charge_succeeded


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(config)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replays, "PREVIEW_BUDGET", 200)  # one chunk of the index (paging.py)


def test_a_viewer_cannot_run_the_preview(client: Any, rt: Any) -> None:
    assert client.get("/admin/replays", headers=basic("vic")).status_code == 200
    answer = client.get("/admin/replays?preview=1&type=invoice.*", headers=basic("vic"))
    assert answer.status_code == 403
    assert client.get("/admin/replays?preview=1", headers=basic("olga")).status_code == 200


def test_the_preview_stops_at_its_budget_and_says_more(
    small_budget: None, client: Any, rt: Any, send: Any
) -> None:
    for n in range(250):
        send.ten99(charge_succeeded(f"in_{n}"))
    page = client.get("/admin/replays?preview=1&type=invoice.*", headers=basic("olga"))
    assert "More than <strong>200</strong> events would be replayed" in page.get_data(as_text=True)
    found = replays.dry_run(rt, replays.parse_filter({"type": "invoice.*"}))
    assert found["more"] and found["count"] == 200
