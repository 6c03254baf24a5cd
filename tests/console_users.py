"""Console users for tests: cheap hashes (the real default, scrypt, is slow on purpose)."""

from __future__ import annotations

import base64
from typing import Any

from werkzeug.security import generate_password_hash

PASSWORDS = {"olga": "operator-pass-1", "vic": "viewer-pass-1"}
USERS = ",".join(
    f"{name}:{'operator' if name == 'olga' else 'viewer'}:"
    + generate_password_hash(password, method="pbkdf2:sha256:1000")
    for name, password in PASSWORDS.items()
)


def basic(name: str, password: str | None = None) -> dict[str, str]:
    """The Authorization header of a console user (their right password by default)."""
    raw = f"{name}:{PASSWORDS.get(name, '') if password is None else password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def enable(config: dict[str, Any], **extra: Any) -> None:
    config.update(CONSOLE_USERS=USERS, **extra)
