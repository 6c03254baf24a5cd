"""Console users and their roles, from CONSOLE_USERS: who is asking, and may they act.

A user comes either from HTTP Basic (name and password, checked against the werkzeug hash) or,
behind a single-sign-on proxy, from CONSOLE_TRUSTED_HEADER, whose value the proxy sets and
which must name a configured user. A `viewer` reads; an `operator` also replays, retries and
cancels.

Checking a werkzeug hash (scrypt by default) costs tens of milliseconds on purpose; a console
page makes one request per view, so credentials that passed once are remembered in this
process by a digest of name, password and hash, and a changed hash or password misses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

VIEWER = "viewer"
OPERATOR = "operator"
_REMEMBERED = 64
# Checked against when the name is unknown, so an unknown name costs what a known one does.
_DECOY = generate_password_hash(secrets.token_hex(8))


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    role: str

    @property
    def may_act(self) -> bool:
        return self.role == OPERATOR


class ConsoleUsers:
    """Authenticate console requests against CONSOLE_USERS (see the module docstring)."""

    def __init__(self, users: Mapping[str, tuple[str, str]], trusted_header: str | None) -> None:
        self.users = dict(users)
        self.trusted_header = trusted_header
        self._passed: dict[bytes, str] = {}
        self._salt = secrets.token_bytes(16)

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    def from_header(self, value: str) -> ConsoleUser | None:
        """The user the SSO proxy's header names, or None if it names nobody configured."""
        found = self.users.get(value.strip())
        return ConsoleUser(value.strip(), found[0]) if found else None

    def _digest(self, name: str, password: str) -> tuple[bytes, str, str]:
        role, password_hash = self.users.get(name, ("", _DECOY))
        text = f"{name}\0{password}\0{password_hash}".encode("utf-8", "surrogatepass")
        return hmac.new(self._salt, text, hashlib.sha256).digest(), role, password_hash

    def remembered(self, name: str, password: str) -> ConsoleUser | None:
        """The user, if these credentials passed the hash check in this process already (no
        hash is computed), else None."""
        digest, _, _ = self._digest(name, password)
        role = self._passed.get(digest)
        return ConsoleUser(name, role) if role else None

    def from_password(
        self,
        name: str,
        password: str,
        run: Callable[[Callable[[str, str], bool], str, str], bool] | None = None,
    ) -> ConsoleUser | None:
        """The user whose name and password these are, or None. `run(check, hash, password)`
        runs the hash check (the web process passes one that runs it off the gevent hub)."""
        digest, role, password_hash = self._digest(name, password)
        if digest in self._passed:
            return ConsoleUser(name, self._passed[digest])
        check = check_password_hash
        matched = run(check, password_hash, password) if run else check(password_hash, password)
        if not matched or not role:
            return None
        if len(self._passed) >= _REMEMBERED:
            self._passed.clear()
        self._passed[digest] = role
        return ConsoleUser(name, role)


def user_line(name: str, role: str, password: str) -> str:
    """The CONSOLE_USERS entry for a user (what `flask console-user` prints)."""
    return f"{name}:{role}:{generate_password_hash(password)}"
