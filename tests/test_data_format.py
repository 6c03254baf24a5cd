"""The data format in Redis (receiver/store/format.py): written on an empty Redis, data of a
later release refused by web and workers with both versions named. The upgrade of data of
releases before 0.2.0, whose queued jobs must still run, is tested job by job in
tests/test_tasks.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from receiver import create_app
from receiver.store import keys
from receiver.store.format import FORMAT, DataFormatError, ensure
from receiver.version import VERSION

ROOT = Path(__file__).resolve().parent.parent


def test_an_empty_redis_gets_this_release_format(config: dict[str, Any], redis: Any) -> None:
    create_app(config)
    assert redis.get(keys.DATA_FORMAT) == str(FORMAT).encode()


def test_the_web_app_refuses_data_of_a_later_release(config: dict[str, Any], redis: Any) -> None:
    redis.set(keys.DATA_FORMAT, FORMAT + 1)
    with pytest.raises(DataFormatError) as refused:
        create_app(config)
    message = str(refused.value)
    assert f"format {FORMAT + 1}" in message and f"up to {FORMAT}" in message
    assert VERSION in message
    assert redis.get(keys.DATA_FORMAT) == str(FORMAT + 1).encode()  # left as it was


def test_a_worker_refuses_data_of_a_later_release(config: dict[str, Any], redis: Any) -> None:
    redis.set(keys.DATA_FORMAT, FORMAT + 1)
    env = {**__import__("os").environ, **{k: str(v) for k, v in config.items()}}
    done = subprocess.run(
        [sys.executable, "worker.py", "--burst", "--processes", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"format {FORMAT + 1}" in done.stderr and f"up to {FORMAT}" in done.stderr


def test_a_malformed_format_is_named(redis: Any) -> None:
    redis.set(keys.DATA_FORMAT, "two")
    with pytest.raises(DataFormatError, match=keys.DATA_FORMAT):
        ensure(redis)
