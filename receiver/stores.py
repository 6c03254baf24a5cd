"""Connections to Redis and RQ, built the same way by the web and worker processes."""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from hiredis import pack_command
from redis import Redis
from redis.exceptions import ConnectionError, DataError, NoScriptError, TimeoutError
from rq import Queue
from rq.serializers import JSONSerializer


def text(value: Any) -> str:
    """A Redis reply (bytes, or None for a missing field) as text."""
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


def build_redis(url: str) -> Redis:
    """A Redis client with short timeouts, so an outage becomes a fast 503, not a hang."""
    return Redis.from_url(
        url,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def build_queue(redis: Redis, name: str) -> Queue:
    """The event queue: JSON-serialized jobs only (RQ's pickle default is unsafe)."""
    return Queue(name, connection=redis, serializer=JSONSerializer)


class DirectScript:
    """One Lua script run on a connection of this thread's own, past redis-py's call layers.

    Called as `script(*keys, *args)` with `numkeys` keys first. The receive path and the
    notice send job are bound by Python work per Redis call (see bench/ and the README):
    redis-py's pool checkout, retry wrapper, argument filtering and per-call health check cost
    as much again as packing the command. This keeps what matters of them: a script missing
    after a Redis restart is loaded again; a broken or stale connection is dropped and the
    call tried once more on a new one; a reply that timed out is not retried (the script may
    have run). Errors are redis-py's own exception classes. A forked child never inherits a
    parent's connection: the per-thread connections are tagged with the fork generation.
    """

    _generation = 0  # bumped in every forked child
    _fork_hook = False

    def __init__(self, redis: Redis, source: str, numkeys: int = 1) -> None:
        if not DirectScript._fork_hook:
            os.register_at_fork(after_in_child=_forked)
            DirectScript._fork_hook = True
        self.pool = redis.connection_pool
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.numkeys = numkeys
        self._local = threading.local()

    def _connection(self) -> Any:
        local = self._local
        if getattr(local, "generation", -1) != DirectScript._generation:
            local.conn = self.pool.make_connection()
            local.generation = DirectScript._generation
        return local.conn

    def _send(self, conn: Any, args: tuple[Any, ...]) -> None:
        # hiredis (a dependency) packs the whole command in C; redis-py's own serializer
        # wraps that in a per-argument Python loop first.
        try:
            packed = pack_command(args)
        except TypeError as exc:  # as redis-py reports an argument it cannot encode
            raise DataError(str(exc)) from exc
        conn.send_packed_command([packed], check_health=False)

    def _drop(self, conn: Any) -> None:
        conn.disconnect()
        self._local.generation = -1

    def __call__(self, *keys_and_args: Any) -> Any:
        for attempt in range(3):
            conn = self._connection()
            try:
                try:
                    self._send(conn, ("EVALSHA", self.sha, self.numkeys, *keys_and_args))
                    return conn.read_response()
                except NoScriptError:
                    self._send(conn, ("SCRIPT", "LOAD", self.source))
                    conn.read_response()
            except TimeoutError:
                # Redis is slow, not gone: the script may well have run. Running it again
                # would report a create-if-absent call as a repeat of itself, so fail and
                # let the caller answer 503 (the sender retries and is told "duplicate").
                self._drop(conn)
                raise
            except ConnectionError:
                # A connection Redis had closed (restart, idle timeout, CLIENT KILL) fails
                # on first use, before the command ran: once more on a new connection.
                self._drop(conn)
                if attempt:
                    raise
        raise ConnectionError("script could not be run")


def _forked() -> None:
    DirectScript._generation += 1
