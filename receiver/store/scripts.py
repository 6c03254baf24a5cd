"""Two ways of running Lua on Redis that the service relies on.

- `DirectScript`: one script on a connection of its own small free list, past redis-py's
  per-call layers (the receive path and the notice send task are bound by Python work per
  Redis call).
- `CreateIfAbsent`: record commands on an unexecuted pipeline and apply them in one round trip
  only if a key is new. Used wherever "store this and queue its task, exactly once" must hold
  under races and crashes: the inbox (one event, one task) and notice records (one record, one
  send task). The commands are recorded on an unexecuted MULTI pipeline, so RQ's own enqueue
  code writes the job exactly as RQ expects, and one Lua call checks the key and replays them.

Every Lua script of the service opens with a comment naming its KEYS and ARGV, and is
registered once, when the object that runs it is built.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import Any

from hiredis import pack_command
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import (
    ConnectionError,
    DataError,
    NoScriptError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from .connection import OUTAGE, PatientRetry


class NotReplicated(RedisError):
    """A write that ran on the primary but reached fewer replicas than asked, in time;
    `reply` is what the script returned there."""

    def __init__(self, acks: int, reply: Any = None) -> None:
        super().__init__(f"acknowledged by {acks} replicas")
        self.acks = acks
        self.reply = reply


class DirectScript:
    """One Lua script run on a connection of this script's own free list, past redis-py's call
    layers.

    Called as `script(*keys, *args)` with `numkeys` keys first. The receive path and the
    notice send job are bound by Python work per Redis call (see bench/ and docs/performance.md):
    redis-py's pool checkout, retry wrapper, argument filtering and per-call health check cost
    as much again as packing the command. This keeps what matters of them: a script missing
    after a Redis restart is loaded again; a broken or stale connection is dropped and the
    call tried once more on a new one; a reply that timed out is not retried (the script may
    have run). Errors are redis-py's own exception classes. On a patient client (the
    worker's, store/connection.py) a lost connection is waited out instead of failing.

    Connections: a call takes one from the free list (or makes one) and puts it back only
    after a complete reply, so a call interrupted anywhere never leaves a half-read reply for
    the next. `list.pop`/`list.append` are atomic for threads and greenlets alike, so the same
    code serves gunicorn's gevent worker (thousands of short-lived greenlets share the few
    connections that are ever busy at once; a greenlet-local connection would be one new TCP
    connection per request) and gthread or RQ's threads. A forked child never uses a parent's
    connection: the list is tagged with the fork generation.
    """

    _generation = 0  # bumped in every forked child
    _fork_hook = False

    def __init__(
        self,
        redis: Redis,
        source: str,
        numkeys: int = 1,
        replicas: int = 0,
        replica_timeout_ms: int = 500,
    ) -> None:
        if not DirectScript._fork_hook:
            os.register_at_fork(after_in_child=_forked)
            DirectScript._fork_hook = True
        self.pool = redis.connection_pool
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.numkeys = numkeys
        self._free: list[Any] = []
        self._free_generation = DirectScript._generation
        retry = self.pool.connection_kwargs.get("retry")
        self._patient = retry if isinstance(retry, PatientRetry) else None
        # `replicas` > 0: each call is followed by WAIT on its connection, and a write fewer
        # replicas acknowledged within the timeout raises NotReplicated (after it ran).
        self.replicas = replicas
        wait: tuple[Any, ...] = ("WAIT", replicas, replica_timeout_ms)
        self._wait = pack_command(wait) if replicas else None

    def _connection(self) -> Any:
        if self._free_generation != DirectScript._generation:
            self._free = []  # the parent's: never touched, never closed, here
            self._free_generation = DirectScript._generation
        try:
            return self._free.pop()
        except IndexError:
            # Built as the pool would, but not counted by it: the pool caps the connections
            # it has ever made (100 by default) and these are dropped and replaced outside
            # its bookkeeping, so `make_connection` would refuse after enough reconnects.
            return self.pool.connection_class(**self.pool.connection_kwargs)

    def _discard_idle(self) -> None:
        while self._free:
            try:
                self._free.pop().disconnect()
            except IndexError:  # another thread took the last one
                break

    def _send(self, conn: Any, args: tuple[Any, ...], wait: bool = True) -> None:
        # hiredis (a dependency) packs the whole command in C; redis-py's own serializer
        # wraps that in a per-argument Python loop first. WAIT, when asked for, goes in the
        # same write: one round trip.
        try:
            packed = pack_command(args)
        except TypeError as exc:  # as redis-py reports an argument it cannot encode
            raise DataError(str(exc)) from exc
        if wait and self._wait:
            conn.send_packed_command([packed, self._wait], check_health=False)
        else:
            conn.send_packed_command([packed], check_health=False)

    def __call__(self, *keys_and_args: Any) -> Any:
        failures = 0  # connection failures of this call
        for attempt in itertools.count():
            if attempt >= 3 and self._patient is None:
                raise ConnectionError("script could not be run")
            conn = self._connection()
            try:
                if conn._sock is None:
                    # connect(), not the implicit connect of a first send: a Sentinel-managed
                    # connection asks the sentinels for the primary only in connect(); the
                    # implicit one would go to the connection's default, localhost:6379.
                    conn.connect()
                self._send(conn, ("EVALSHA", self.sha, self.numkeys, *keys_and_args))
                try:
                    reply = conn.read_response()
                except ResponseError as exc:  # a complete reply, an error one
                    reply = exc
                acks = conn.read_response() if self._wait else None
                if isinstance(reply, NoScriptError):
                    self._send(conn, ("SCRIPT", "LOAD", self.source), wait=False)
                    conn.read_response()
                    self._free.append(conn)
                    continue
            except TimeoutError:
                # Redis is slow, not gone: the script may well have run. Running it again
                # would report a create-if-absent call as a repeat of itself, so fail and
                # let the caller answer 503 (the sender retries and is told "duplicate").
                conn.disconnect()
                raise
            except ConnectionError as exc:
                # A connection Redis had closed (restart, idle timeout, CLIENT KILL) fails
                # on first use, before the command ran: once more on a new connection. The
                # other idle ones went with it (a restart closes them all), so they go too.
                # A patient client (the worker's) waits the outage out instead of failing.
                conn.disconnect()
                self._discard_idle()
                failures += 1
                if self._patient is not None:
                    self._patient.pause(exc, failures)
                elif failures > 1:
                    raise
                continue
            except BaseException:
                conn.disconnect()  # interrupted mid-call (a greenlet killed, Ctrl-C)
                raise
            self._free.append(conn)
            if failures:
                OUTAGE.succeeded()
            if isinstance(reply, ResponseError):
                raise reply
            if acks is not None and acks < self.replicas:
                raise NotReplicated(acks, reply)
            return reply
        raise AssertionError("unreachable")


def _forked() -> None:
    DirectScript._generation += 1


_APPLY_IF_ABSENT = """
-- KEYS[1]: the key whose absence allows the commands
-- ARGV[1]: a hash field of KEYS[1] to increment when it exists ('' for none); then the
--          commands, each prefixed by its length: n, cmd, arg1..argn-1, n, ...
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
  return 0
end
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""


class CreateIfAbsent:
    """A reusable script object bound to one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_APPLY_IF_ABSENT)

    def recorder(self) -> Pipeline:
        """A pipeline to record commands on; it is never executed itself."""
        pipe = self.redis.pipeline()
        pipe.multi()  # RQ insists on an explicit transaction when handed a pipeline.
        return pipe

    def apply(self, key: str, recorder: Pipeline, count_field: str = "") -> bool:
        """Apply the recorded commands if `key` does not exist; else bump `count_field`.

        Returns True when the commands were applied (the key was new).
        """
        argv: list[Any] = [count_field]
        for args, _options in recorder.command_stack:
            argv.append(len(args))
            argv.extend(args)
        return bool(self._script(keys=[key], args=argv))
