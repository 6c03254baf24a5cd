"""The data format in Redis (receiver/store/format.py): written on an empty Redis, data of a
later release refused by web and workers with both versions named, data of an earlier release
upgraded so that its queued jobs still run."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from rq.serializers import JSONSerializer

from receiver import create_app
from receiver.store import keys
from receiver.store.format import FORMAT, DataFormatError, ensure
from receiver.version import VERSION
from tests.events import charge_succeeded

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


def test_jobs_queued_by_a_release_before_0_2_still_run(
    config: dict[str, Any], redis: Any, send: Any, rt: Any, drain: Any, sendgrid: Any
) -> None:
    """Format 1 had no format key and named the event task `receiver.processing.process_event`
    (a module 0.2.0 removed). The upgrade rewrites the queued job, which then sends its email."""
    assert send.ten99(charge_succeeded("inv_old_release")).status_code == 202
    serializer = JSONSerializer()
    (job_key,) = list(redis.scan_iter(match="rq:job:*", _type="HASH"))
    func, instance, args, kwargs = serializer.loads(zlib.decompress(redis.hget(job_key, "data")))
    assert func == "receiver.pipeline.tasks.process_event"
    old = serializer.dumps(("receiver.processing.process_event", instance, args, kwargs))
    redis.hset(job_key, "data", zlib.compress(old))
    redis.delete(keys.DATA_FORMAT)  # as a release before 0.2.0 left it

    assert ensure(redis) == FORMAT
    assert redis.get(keys.DATA_FORMAT) == str(FORMAT).encode()
    func = serializer.loads(zlib.decompress(redis.hget(job_key, "data")))[0]
    assert func == "receiver.pipeline.tasks.process_event"
    drain()
    assert len(sendgrid.requests) == 1  # the payment confirmation
