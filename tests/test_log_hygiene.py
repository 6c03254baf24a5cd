"""Log lines cannot be forged or leak (issue 19): the text format escapes control characters,
and RQ's own line for a failed job, which carries the traceback and the exception's message,
is written as `job failed` with the class name and the code location only."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from receiver.logs import TextFormatter, configure, record
from tests.events import charge_succeeded


@pytest.fixture
def our_logging() -> Iterator[None]:
    """configure() replaces the root's handlers and sets levels: put pytest's back afterwards
    (a "receiver" logger left at INFO hides the DEBUG lines later tests read)."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    loggers = [root, logging.getLogger("receiver"), logging.getLogger("python_http_client")]
    levels = [logger.level for logger in loggers]
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_a_newline_in_a_field_does_not_make_a_second_line() -> None:
    entry = logging.LogRecord("receiver.x", logging.WARNING, __file__, 1, "refused", (), None)
    entry.receiver_fields = {"event_id": "ev_1\n12:00:00 notice sent  record_id=nt_forged"}
    line = TextFormatter().format(entry)
    assert "\n" not in line and "\\n12:00:00 notice sent" in line


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_rq_failure_lines_carry_the_class_and_location_not_the_message(
    fmt: str, our_logging: None, capsys: Any, rt: Any, send: Any, drain: Any
) -> None:
    event = charge_succeeded("in_broken")
    send.ten99(event)
    key = f"event:1099policy:{event['id']}"
    rt.redis.hset(key, "body", b'{"secret": "maya@example.com private words"')
    configure(fmt, "info")
    drain()
    err = capsys.readouterr().err
    assert "private words" not in err and "maya@example.com" not in err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "job failed" in line]
    assert "PayloadError" in line and "receiver/" in line and ".py:" in line


def test_our_own_lines_are_unchanged(our_logging: None, capsys: Any) -> None:
    configure("text", "info")
    record(logging.getLogger("receiver.test"), "notice sent", record_id="nt_1")
    assert "notice sent" in capsys.readouterr().err
