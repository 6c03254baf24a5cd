"""Who is asking the console or the ops API, and whether they may act.

- CONSOLE_USERS unset: everything under /admin and /api/ops answers 404, as if absent.
- CONSOLE_TRUSTED_HEADER set and present: the SSO proxy's word names the user (it must be one
  of CONSOLE_USERS); otherwise HTTP Basic. No known user: 401 with a Basic challenge.
- Actions need the operator role (403 for a viewer). A page action is a POST carrying the
  CSRF token of a SameSite=Strict cookie (double submit); an ops API action must be sent as
  JSON, which no cross-site HTML form can do, so remembered Basic credentials cannot be
  ridden from another site.
"""

from __future__ import annotations

import hmac
import secrets

from flask import current_app, g, request

from ..console.audit import AuditLog
from ..console.users import ConsoleUser, ConsoleUsers
from ..errors import ConsoleUnauthorized, Forbidden, NotFound, UnsupportedMediaType
from ..pipeline.runtime import Runtime

CSRF_COOKIE = "console_csrf"
CSRF_FIELD = "csrf_token"


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
        user = users.from_header(request.headers[header])
        if user is None:
            raise ConsoleUnauthorized("the single-sign-on user is not a console user")
    else:
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username:
            raise ConsoleUnauthorized("console credentials are required")
        user = users.from_password(auth.username, auth.password or "")
        if user is None:
            raise ConsoleUnauthorized("unknown user or wrong password")
    g.console_user = user
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


def csrf_token() -> str:
    """This browser's CSRF token: the cookie's, or a new one set on the response."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) != 43:
        token = g.get("new_csrf") or secrets.token_urlsafe(32)
        g.new_csrf = token
    return token


def check_csrf() -> None:
    """A page form's token must equal its cookie's (403 otherwise)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden("the form's CSRF token is missing or does not match; reload the page")


def runtime() -> Runtime:
    """The runtime the console acts with (built by `create_app` when the console is on)."""
    rt: Runtime = current_app.extensions["runtime"]
    return rt


def audit_log() -> AuditLog:
    audit: AuditLog = current_app.extensions["audit"]
    return audit
