"""Connections to Redis and RQ, built the same way by the web and worker processes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.client import PubSub
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError, RedisError, TimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection
from rq import Queue
from rq.serializers import JSONSerializer

from ..config import Config, redis_tls, sentinel_addresses
from ..logs import record

T = TypeVar("T")


def text(value: Any) -> str:
    """A Redis reply (bytes, or None for a missing field) as text."""
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


class Outage:
    """Whether this process last found Redis unreachable, said once in the log each way.

    A worker's threads (RQ's loop, the scheduler, the sweeper, RQ's pubsub) all wait out the
    same outage; one `redis unreachable` line when the first of them fails and one `redis
    reachable` line when the first gets through again, instead of a line per retry each.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.log = logging.getLogger("receiver.redis")

    def failed(self, error: Exception) -> None:
        if self.since is None:
            with self._lock:
                if self.since is None:
                    self.since = time.monotonic()
                    record(
                        self.log,
                        "redis unreachable; retrying with backoff",
                        logging.WARNING,
                        outcome="unreachable",
                        error=type(error).__name__,
                    )

    def succeeded(self) -> None:
        if self.since is not None:
            with self._lock:
                since, self.since = self.since, None
            if since is not None:
                elapsed = round((time.monotonic() - since) * 1000)
                record(
                    self.log,
                    "redis reachable again",
                    logging.WARNING,
                    outcome="reconnected",
                    duration_ms=elapsed,
                )


OUTAGE = Outage()
PATIENT_BACKOFF_CAP = 1.0  # seconds between attempts at most: back within a second of Redis
# Set when this process is asked to stop (the worker's SIGTERM): a patient client stops
# waiting out an outage, so the stop is not held up by a Redis that may never come back.
STOPPING = threading.Event()


class Stopping(RedisError):
    """Redis is unreachable and this process is stopping: the command is given up."""


def stop_waiting() -> None:
    """This process is stopping: every patient command fails at its next failed attempt (or
    at once, if it is between attempts) instead of retrying; work it left half-way is the
    sweeper's, as after a crash."""
    STOPPING.set()


class PatientRetry(Retry):
    """redis-py's retry, forever, on connection errors and timeouts, reporting to OUTAGE.

    A command is sent again after a failure that may have followed its execution (a Redis
    killed between running it and replying); redis-py's default retry does the same. What
    the worker runs is built for it: tasks claim their records, and a repeated claim is seen
    as held and left to the lease and the sweeper.
    """

    def __init__(self) -> None:
        super().__init__(
            ExponentialWithJitterBackoff(base=0.05, cap=PATIENT_BACKOFF_CAP),
            -1,
            (ConnectionError, TimeoutError),
        )

    def pause(self, error: Exception, failures: int) -> None:
        """What a retry does between attempts, for callers with a loop of their own
        (store/scripts.py): report the outage, wait the backoff; `Stopping` once the process
        is stopping."""
        if STOPPING.is_set():
            raise Stopping("redis unreachable while stopping") from error
        if failures > 1:
            OUTAGE.failed(error)
        if STOPPING.wait(self._backoff.compute(failures)):
            raise Stopping("redis unreachable while stopping") from error

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        failures = 0

        def attempt() -> T:
            nonlocal failures
            try:
                result = do()
            except self._supported_errors as exc:
                if STOPPING.is_set():  # not retried: the stop must not wait for Redis
                    raise Stopping("redis unreachable while stopping") from exc
                failures += 1
                if failures > 1:  # one failure is a stale connection, replaced at once
                    OUTAGE.failed(exc)
                raise
            if failures:  # through after failing: Redis answered (a call that never failed
                OUTAGE.succeeded()  # may not have reached it: a pubsub poll, say)
            return result

        return super().call_with_retry(attempt, fail, is_retryable, with_failure_count)


class PrimaryConnection(SentinelManagedConnection):
    """redis-py's Sentinel-managed connection, connecting through Sentinel every time.

    redis-py asks the sentinels for the primary only in `connect()`, but a command sent on a
    closed connection connects by itself (`send_packed_command`) to the address it last had.
    A command retried after a failure does just that: redis-py's retry closes the connection
    and sends again, so after a failover a patient client (the worker's, retrying forever)
    kept dialling the dead primary, a blocking dequeue (RQ's BLPOP) included, and never took
    another job. Here a send on a closed connection goes through `connect()`, which asks the
    sentinels again on every attempt.
    """

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._sock:
            self.connect()  # type: ignore[no-untyped-call]
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class PrimarySSLConnection(PrimaryConnection, SSLConnection):
    """The same over TLS (redis-py's SentinelManagedSSLConnection, with the fix above)."""


# How long a pub/sub poll waits while nothing is subscribed (see PromptPubSub).
PUBSUB_IDLE_WAIT = 0.2


class PromptPubSub(PubSub):
    """redis-py's PubSub, whose `get_message()` waits at most PUBSUB_IDLE_WAIT seconds, not its
    whole timeout, while nothing is subscribed, so the thread polling it stops promptly.

    Every RQ worker has a pub/sub thread (redis-py's `run_in_thread(sleep_time=60)`). RQ's
    teardown sends UNSUBSCRIBE, then calls the thread's `stop()`. When the thread reads the
    unsubscribe reply before `stop()` clears its running flag (often, on a loaded machine), it
    calls `get_message(timeout=60)` once more, and with nothing subscribed that waits the whole
    60 s for a subscription. Up to redis-py 8.1 `stop()` returned at once and nothing waited for
    the thread; from 8.2 `stop()` joins it, so a worker took those 60 s to exit (issue 18).
    Here the thread is back in its loop within PUBSUB_IDLE_WAIT, sees the flag and exits.
    While subscribed, a poll waits its whole timeout on the socket, as before.
    """

    def get_message(
        self, ignore_subscribe_messages: bool = False, timeout: float | None = 0.0
    ) -> Any:
        if not self.subscribed and (timeout is None or timeout > PUBSUB_IDLE_WAIT):
            timeout = PUBSUB_IDLE_WAIT
        return super().get_message(ignore_subscribe_messages, timeout)  # type: ignore[arg-type]

    get_sharded_message = get_message


class PromptRedis(Redis):
    """redis-py's client, with PromptPubSub for its pub/sub objects (RQ's worker makes one)."""

    def pubsub(self, **kwargs: Any) -> PubSub:
        return PromptPubSub(self.connection_pool, event_dispatcher=self._event_dispatcher, **kwargs)


def tls_options(cfg: Config) -> dict[str, Any]:
    """redis-py's TLS arguments from REDIS_TLS_*: the CA that signed the servers' (and the
    sentinels') certificates, else the system's trust store; a client certificate for
    servers that ask for one (Redis's `tls-auth-clients yes`, its default). redis-py's
    defaults are kept: the certificate is verified, and so is the host name (a server's
    certificate must name the address connected to; with Sentinel, the address the sentinels
    report)."""
    options: dict[str, Any] = {}
    if cfg.REDIS_TLS_CA_FILE:
        options["ssl_ca_certs"] = cfg.REDIS_TLS_CA_FILE
    if cfg.REDIS_TLS_CERT_FILE:
        options["ssl_certfile"] = cfg.REDIS_TLS_CERT_FILE
        options["ssl_keyfile"] = cfg.REDIS_TLS_KEY_FILE
    return options


def build_redis(cfg: Config, patient: bool = False) -> Redis:
    """A Redis client with short timeouts, so an outage becomes a fast 503, not a hang.

    REDIS_URL names one server (redis://, rediss:// for TLS, unix://). With REDIS_SENTINELS
    the client asks the sentinels for REDIS_SENTINEL_MASTER's current primary whenever it
    connects (redis-py's Sentinel), so after a failover every new connection goes to the new
    primary, and a connection to a demoted one is dropped on its first READONLY reply. With
    REDIS_SENTINEL_TLS both the sentinels and the primary are spoken to over TLS.

    `patient` (the worker's): every command waits an outage out instead, reconnecting with a
    backoff of at most PATIENT_BACKOFF_CAP seconds, so RQ's loop, the scheduler and the
    sweeper carry on by themselves when Redis is back (a restart, a failover).
    """
    options: dict[str, Any] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }
    if patient:
        options["retry"] = PatientRetry()
    if cfg.REDIS_PASSWORD:
        options["password"] = cfg.REDIS_PASSWORD
    if not cfg.REDIS_SENTINELS:
        # A rediss:// URL's own query arguments (ssl_ca_certs=..., which redis-py reads too)
        # win over the REDIS_TLS_* settings.
        tls = tls_options(cfg) if redis_tls(cfg) else {}
        return PromptRedis.from_url(cfg.REDIS_URL, **options, **tls)
    sentinel_kwargs: dict[str, Any] = {
        "password": cfg.REDIS_SENTINEL_PASSWORD,
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
    }
    options["connection_class"] = PrimaryConnection
    if redis_tls(cfg):
        sentinel_kwargs.update(ssl=True, **tls_options(cfg))
        options.update(connection_class=PrimarySSLConnection, **tls_options(cfg))
    sentinel = Sentinel(sentinel_addresses(cfg), sentinel_kwargs=sentinel_kwargs, **options)
    master: Redis = sentinel.master_for(str(cfg.REDIS_SENTINEL_MASTER), redis_class=PromptRedis)
    return master


# The queue of decided work (notice sends, rep alerts, coverage pushes, and the scheduled
# reminders and retries among them) is named after QUEUE_NAME, the events queue, so the web
# and worker processes of one deployment always agree on it. Workers dequeue it first.
NOTICE_QUEUE_SUFFIX = "-notices"


def notice_queue_name(events_queue: str) -> str:
    """The notices queue that goes with the events queue `events_queue` (QUEUE_NAME)."""
    return events_queue + NOTICE_QUEUE_SUFFIX


def build_queue(redis: Redis, name: str) -> Queue:
    """An RQ queue of JSON-serialized jobs only (RQ's pickle default is unsafe)."""
    return Queue(name, connection=redis, serializer=JSONSerializer)
