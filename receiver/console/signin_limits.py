"""Failed console sign-ins, counted per client address and per user name in Redis, so every
web process and host shares one count; past a limit the next try is refused before any
password hash is computed.

A password check costs tens of milliseconds of CPU on purpose (scrypt, PBKDF2); unlimited
wrong tries would let anyone who can reach the service spend the web processes' CPU on them.
The counting is the maintained `limits` library (what Flask-Limiter is built on), its moving
window over our own Redis client's connection pool (the same server, TLS and Sentinel); the
keys are named in store/keys.py. Names and addresses are kept as digests, never as text.
Only failures are counted: a user whose browser resends good credentials is never refused
once they passed in this process (ConsoleUsers remembers them, at no hash cost).
"""

from __future__ import annotations

import hashlib
import math
import time

from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

from ..config import parse_limits
from ..store import keys


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SigninLimits:
    """Per address and per user name limits on failed sign-ins (see the module docstring)."""

    def __init__(self, redis: Redis, per_address: str, per_user: str) -> None:
        storage = RedisStorage(
            "redis://", connection_pool=redis.connection_pool, key_prefix=keys.CONSOLE_SIGNIN
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._rules = [("address", item) for item in parse_limits(per_address)] + [
            ("user", item) for item in parse_limits(per_user)
        ]

    def _identities(self, address: str, name: str) -> dict[str, str]:
        return {"address": _digest(address), "user": _digest(name.casefold())}

    def wait_seconds(self, address: str, name: str) -> int:
        """0 if a try from `address` for `name` may be checked now; otherwise the seconds until
        the fullest of its windows lets one more through (the Retry-After)."""
        ids = self._identities(address, name)
        wait = 0.0
        for kind, item in self._rules:
            if not self._limiter.test(item, kind, ids[kind]):
                reset = self._limiter.get_window_stats(item, kind, ids[kind]).reset_time
                wait = max(wait, reset - time.time(), 1.0)
        return math.ceil(wait)

    def failed(self, address: str, name: str) -> None:
        """Count one failed try against the address and the name."""
        ids = self._identities(address, name)
        for kind, item in self._rules:
            self._limiter.hit(item, kind, ids[kind])
