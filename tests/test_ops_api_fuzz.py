"""No input makes the ops API answer 5xx: every parameter of every /api/ops operation in
/api/openapi.json (query, path, JSON body fields), filled by hypothesis with text, numbers,
non-ASCII digits, NaN and infinities, and cursors that decode to odd JSON (issue 19).
A refused input is a 4xx with a JSON body that says what was wrong."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.console_users import basic, enable

OPERATOR = basic("olga")
_NUMBERS = st.sampled_from(
    ["²", "٣", "1e309", "NaN", "nan", "inf", "-inf", "-1", "0", "1.5", "9" * 40, " 5", "0x10"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def _cursor(value: Any) -> str:
    raw = json.dumps(value, allow_nan=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSORS = st.builds(
    _cursor,
    st.one_of(
        st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10)),
        _JSON,
    ),
)
_TEXT = st.text(max_size=60) | _NUMBERS | st.sampled_from(["../x", "a/b", "..", "%00", "x\r\ny"])


def _value(param: dict[str, Any]) -> st.SearchStrategy[str | None]:
    """Mostly absent (so one odd value is not hidden behind another parameter's 400), else a
    value the schema allows, or anything."""
    schema = param.get("schema", {})
    allowed = [str(v) for v in schema.get("enum", [])] or ["5"]
    odd = _CURSORS | _TEXT if param["name"] == "cursor" else _TEXT
    return st.one_of(st.none(), st.none(), st.none(), st.sampled_from(allowed), odd)


def _operations(client: Any) -> list[tuple[str, str, dict[str, Any]]]:
    doc = client.get("/api/openapi.json").get_json()
    found = []
    for path, item in doc["paths"].items():
        if not path.startswith("/api/ops"):
            continue
        for method, op in item.items():
            if method in ("get", "post"):
                found.append((method, path, op))
    return found


@pytest.fixture(autouse=True)
def console_on(config: dict[str, Any]) -> None:
    enable(config)


ODD = [
    "²",
    "٣",
    "1e309",
    "NaN",
    "-inf",
    "-1",
    "0",
    "9" * 40,
    "",
    " ",
    "../../notices/nt_x",
    "a/b",
    "x\r\ny",
    "\x00",
    "é" * 300,
    *(
        _cursor(v)
        for v in (
            [float("nan"), "events:index"],
            [float("inf"), "x"],
            [True, "x"],
            [1],
            {"a": 1},
            ["1", "x"],
            [1, None],
        )
    ),
]


def _send(client: Any, method: str, url: str, query: dict[str, str], body: Any = None) -> Any:
    if method == "get":
        return client.get(url, query_string=query, headers=OPERATOR)
    return client.post(url, json=body, query_string=query, headers=OPERATOR)


def _check(answer: Any, *what: Any) -> None:
    assert answer.status_code < 500, (*what, answer.get_data(as_text=True)[:300])
    if answer.status_code >= 400:
        body = answer.get_json(silent=True)
        assert body and body["error"], (*what, answer.status_code)


def test_no_odd_value_of_any_parameter_answers_5xx(client: Any, rt: Any) -> None:
    """Each parameter alone (the others absent), each odd value: 2xx, or a 4xx saying why."""
    operations = _operations(client)
    assert len(operations) >= 12
    for method, path, op in operations:
        params = op.get("parameters", [])
        for param in params:
            for value in ODD:
                url, query = path, {}
                for other in params:
                    if other["in"] == "path":
                        given = value if other is param else "x"
                        url = url.replace("{" + other["name"] + "}", quote(given or "-", safe=""))
                if param["in"] == "query":
                    query[param["name"]] = value
                _check(_send(client, method, url, query, {}), method, url, query)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
def test_no_ops_input_answers_5xx(client: Any, rt: Any, data: Any) -> None:
    method, path, op = data.draw(st.sampled_from(_operations(client)))
    query: dict[str, str] = {}
    url = path
    for param in op.get("parameters", []):
        value = data.draw(_value(param) if param["in"] == "query" else _TEXT)
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", quote(value or "x", safe=""))
        elif value is not None:
            query[param["name"]] = value
    body: Any = None
    if method == "post":
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        names = list(schema.get("schema", {}).get("properties", {})) + ["filter", "extra"]
        body = data.draw(st.dictionaries(st.sampled_from(names), _JSON | _TEXT, max_size=4) | _JSON)
    _check(_send(client, method, url, query, body), method, url, query, body)
