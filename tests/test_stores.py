"""DirectScript: the receive path's one Lua call, on a per-thread connection of its own.

It bypasses redis-py's pool and retry layers for speed, so what those layers would have done
for us is tested here: a script flushed from Redis is loaded again, a connection Redis closed
is replaced, and a forked child never talks over its parent's socket.
"""

from __future__ import annotations

import os

import pytest
import redis as redis_lib

from receiver.stores import DirectScript

# Create-if-absent, like the inbox: returns 1 the first time a key is seen, else 0.
SOURCE = "return redis.call('SET', KEYS[1], ARGV[1], 'NX') and 1 or 0"


@pytest.fixture
def script(redis: redis_lib.Redis) -> DirectScript:
    return DirectScript(redis, SOURCE)


def test_runs_and_passes_arguments_exactly(script: DirectScript, redis: redis_lib.Redis) -> None:
    assert script("k1", b"\x00bytes\xff") == 1
    assert script("k1", "other") == 0
    assert redis.get("k1") == b"\x00bytes\xff"


def test_script_flushed_from_redis_is_loaded_again(
    script: DirectScript, redis: redis_lib.Redis
) -> None:
    assert script("k1", 1) == 1
    redis.script_flush()
    assert script("k2", 2) == 1
    assert redis.get("k2") == b"2"


def test_connection_closed_by_redis_is_replaced(
    script: DirectScript, redis: redis_lib.Redis
) -> None:
    assert script("k1", 1) == 1
    redis.client_kill_filter(_type="normal", skipme=True)
    assert script("k2", 2) == 1
    assert redis.get("k2") == b"2"


def test_forked_child_uses_its_own_connection(script: DirectScript) -> None:
    assert script("parent-1", 1) == 1
    parent_conn = script._connection()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report whether it got a connection of its own and the script worked
        try:
            ok = script._connection() is not parent_conn and script("child-1", 1) == 1
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    # The parent's connection is untouched: its replies still line up with its commands.
    assert script("parent-2", 1) == 1
    assert script("parent-2", 1) == 0
