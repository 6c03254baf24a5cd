"""Who is asking the console or the ops API, and whether they may act.

- CONSOLE_USERS unset: everything under /admin and /api/ops answers 404, as if absent.
- CONSOLE_TRUSTED_HEADER set and present: the SSO proxy's word names the user (it must be one
  of CONSOLE_USERS); otherwise HTTP Basic. No known user: 401 with a Basic challenge.
- HTTP Basic: failed tries are counted per client address and per user name in Redis
  (console/signin_limits.py); past CONSOLE_SIGNIN_LIMIT_* the answer is 429 with Retry-After,
  before any hash is computed. The hash check itself runs on gevent's thread pool in the web
  process (`off_hub`), so a check never holds up the other requests of that process.
- CONSOLE_TRUSTED_HEADER is believed only from a peer in CONSOLE_TRUSTED_PROXIES (the proxy
  itself, not what X-Forwarded-For claims); from anyone else it is a 401.
- Actions need the operator role (403 for a viewer). A page action is a POST carrying the
  user's CSRF token, an HMAC of their name with a server key (`csrf_key`), also set as a
  SameSite=Strict cookie; a token planted in a cookie from a sibling domain is not the
  user's, so it does not pass. An ops API action must be sent as
  JSON, which no cross-site HTML form can do, so remembered Basic credentials cannot be
  ridden from another site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from redis.exceptions import RedisError

from ..console.audit import AuditLog
from ..console.signin_limits import SigninLimits
from ..console.users import ConsoleUser, ConsoleUsers
from ..errors import (
    ConsoleUnauthorized,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unavailable,
    UnsupportedMediaType,
)
from ..pipeline.runtime import Runtime
from .proxies import from_trusted_proxy

CSRF_COOKIE = "console_csrf"
CSRF_FIELD = "csrf_token"
T = TypeVar("T")


# Password checks at once per web process, each on a thread of its own at the lowest CPU
# priority: a flood of them queues here (greenlets waiting, not blocking) instead of taking
# the cores from the webhooks.
HASH_THREADS = 1
_pool: Any = None  # this process's gevent ThreadPool, made at the first check (after the fork)


def _at_low_priority(fn: Callable[[str, str], T], first: str, second: str) -> T:
    try:  # Linux: the nice value is per thread, and 0 names the calling one
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    except (OSError, AttributeError):
        pass
    return fn(first, second)


def off_hub(fn: Callable[[str, str], T], first: str, second: str) -> T:
    """`fn(first, second)` on a thread when this process runs under gevent (the web process:
    gunicorn's gevent worker patches the socket module), so CPU-bound work that releases the
    GIL (hashlib's scrypt and PBKDF2 do) lets the hub serve other requests meanwhile; a plain
    call anywhere else. The threads are a pool of our own rather than the hub's, which gevent
    also resolves host names on, since they run at the lowest priority (see HASH_THREADS)."""
    global _pool
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return fn(first, second)
    if _pool is None:
        from gevent.threadpool import ThreadPool  # type: ignore[import-untyped]

        _pool = ThreadPool(HASH_THREADS)
    result: T = _pool.apply(_at_low_priority, (fn, first, second))
    return result


def _users() -> ConsoleUsers:
    users: ConsoleUsers = current_app.extensions["console_users"]
    return users


def authenticate() -> ConsoleUser:
    """The console user of this request (kept in `g.console_user`), or 404/401."""
    users = _users()
    if not users.enabled:
        raise NotFound("not found")
    user: ConsoleUser | None = None
    header = users.trusted_header
    if header and request.headers.get(header):
        if not from_trusted_proxy():
            raise ConsoleUnauthorized("the single-sign-on header is only taken from the proxy")
        user = users.from_header(request.headers[header])
        if user is None:
            raise ConsoleUnauthorized("the single-sign-on user is not a console user")
    else:
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username:
            raise ConsoleUnauthorized("console credentials are required")
        user = _basic(users, auth.username, auth.password or "")
    g.console_user = user
    return user


def _basic(users: ConsoleUsers, name: str, password: str) -> ConsoleUser:
    """The HTTP Basic user, counting a failure against the address and the name; 429 once
    either has failed too often (see the module docstring)."""
    remembered = users.remembered(name, password)
    if remembered is not None:
        return remembered
    limits: SigninLimits = current_app.extensions["signin_limits"]
    address = request.remote_addr or "unknown"
    try:
        wait = limits.wait_seconds(address, name)
        if wait:
            raise TooManyRequests(
                "too many failed sign-ins from this address or for this user; try again later",
                retry_after=wait,
            )
        user = users.from_password(name, password, run=off_hub)
        if user is None:
            limits.failed(address, name)
            raise ConsoleUnauthorized("unknown user or wrong password")
    except RedisError:  # the counts cannot be read: refuse rather than check unlimited
        raise Unavailable("storage unavailable") from None
    return user


def current_user() -> ConsoleUser:
    user: ConsoleUser = g.console_user
    return user


def require_operator() -> ConsoleUser:
    user = current_user()
    if not user.may_act:
        raise Forbidden("this needs the operator role")
    return user


def require_json() -> None:
    """An ops API action must say it is JSON (see the module docstring)."""
    if not request.is_json:
        raise UnsupportedMediaType("send the request as application/json")


def csrf_key(secret_key: str | None, console_users: tuple[str, ...]) -> bytes:
    """The server key of the CSRF tokens, the same in every process: from SECRET_KEY when set,
    else from CONSOLE_USERS (its password hashes are secret, and change with the users)."""
    source = secret_key or "\n".join(console_users)
    return hashlib.sha256(b"console-csrf\0" + source.encode()).digest()


def _user_token(name: str) -> str:
    key: bytes = current_app.extensions["csrf_key"]
    digest = hmac.new(key, name.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token() -> str:
    """The signed-in user's CSRF token (set as the cookie too, when the browser lacks it)."""
    token = _user_token(current_user().name)
    if request.cookies.get(CSRF_COOKIE) != token:
        g.new_csrf = token
    return token


def check_csrf() -> None:
    """A page form's token must be the signed-in user's (403 otherwise)."""
    sent = request.form.get(CSRF_FIELD, "")
    expected = _user_token(current_user().name)
    if not hmac.compare_digest(expected.encode(), sent.encode("utf-8", "surrogatepass")):
        raise Forbidden("the form's CSRF token is missing or does not match; reload the page")


def runtime() -> Runtime:
    """The runtime the console acts with (built by `create_app` when the console is on)."""
    rt: Runtime = current_app.extensions["runtime"]
    return rt


def audit_log() -> AuditLog:
    audit: AuditLog = current_app.extensions["audit"]
    return audit
