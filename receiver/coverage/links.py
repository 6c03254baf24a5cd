"""Signed, time-limited links to a contractor's coverage page: no login, no stored tokens.

The token is itsdangerous' URL-safe timed serialization of the contractor id, keyed with
SECRET_KEY under a salt of its own (so no other token signed with the same key can be replayed
here) and HMAC-SHA256. It proves who the page is for and when the link was made; the page
refuses it after COVERAGE_LINK_MAX_AGE_DAYS. The clock is a parameter so tests can age a link
without sleeping.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from ..config import Config

SALT = "coverage-page-link"


class LinkExpired(Exception):
    """Authentic but older than the allowed age: the page answers 410."""


class LinkInvalid(Exception):
    """Tampered, truncated or made with another key: the page answers 404."""


def _serializer(secret: str, now: float) -> URLSafeTimedSerializer:
    """itsdangerous reads its own clock; this signer reads ours (the one the caller passes)."""
    fixed = int(now)

    class _At(TimestampSigner):
        def get_timestamp(self) -> int:
            return fixed

    return URLSafeTimedSerializer(
        secret, salt=SALT, signer=_At, signer_kwargs={"digest_method": hashlib.sha256}
    )


def make_token(secret: str, contractor_id: str, now: float) -> str:
    return _serializer(secret, now).dumps({"c": contractor_id})


def read_token(secret: str, token: str, max_age_seconds: int, now: float) -> str:
    """The contractor id a token was made for; raises LinkExpired or LinkInvalid."""
    try:
        data = _serializer(secret, now).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise LinkExpired() from None
    except BadData:
        raise LinkInvalid() from None
    contractor = data.get("c") if isinstance(data, dict) else None
    if not isinstance(contractor, str) or not contractor:
        raise LinkInvalid()
    return contractor


def coverage_link(cfg: Config, contractor_id: str, now: float) -> str | None:
    """The absolute page URL for a contractor's emails; None when links are not configured."""
    if not cfg.SECRET_KEY or not cfg.PUBLIC_BASE_URL or not contractor_id:
        return None
    token = make_token(cfg.SECRET_KEY, contractor_id, now)
    return f"{cfg.PUBLIC_BASE_URL.rstrip('/')}/coverage/{token}"
