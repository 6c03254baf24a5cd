"""Every setting the service reads, in one place, from the environment.

`load_config()` is called once by `create_app()` and once by the worker's `main()`. A missing or
malformed setting raises `ConfigError` naming the variable, so a bad deploy stops at start-up
instead of failing on the first webhook.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from limits import RateLimitItem, parse_many

from .errors import ConfigError

SENDGRID_DEFAULT_HOST = "https://api.sendgrid.com"


@dataclass(frozen=True)
class Config:
    """The settings, typed. Defaults are the embedded ones `make run` uses."""

    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_SENTINELS: tuple[str, ...] = ()
    REDIS_SENTINEL_MASTER: str | None = None
    REDIS_SENTINEL_PASSWORD: str | None = None
    REDIS_PASSWORD: str | None = None
    REDIS_SENTINEL_TLS: bool = False
    REDIS_TLS_CA_FILE: str | None = None
    REDIS_TLS_CERT_FILE: str | None = None
    REDIS_TLS_KEY_FILE: str | None = None
    REDIS_MIN_REPLICA_ACKS: int = 0
    REDIS_REPLICA_ACK_TIMEOUT_MS: int = 500
    TEN99POLICY_WEBHOOK_SECRETS: tuple[str, ...] = ()
    TEN99POLICY_SIGNATURE_HEADER: str = "Ten99Policy-Signature"
    PLATFORM_WEBHOOK_SECRETS: tuple[str, ...] = ()
    WEBHOOK_TOLERANCE_SECONDS: int = 300
    WEBHOOK_MAX_BYTES: int = 1_048_576
    EVENT_RETENTION_DAYS: int = 30
    CONTRACTOR_RETENTION_DAYS: int = 400
    RECONCILE_INTERVAL_MINUTES: int = 60
    SWEEP_AFTER_SECONDS: int = 300
    SENDGRID_API_KEY: str | None = None
    SENDGRID_API_HOST: str = SENDGRID_DEFAULT_HOST
    SENDGRID_TIMEOUT_SECONDS: float = 10.0
    SENDGRID_RETRY_BASE_SECONDS: float = 10.0
    SENDGRID_TRANSPORT: str = "session"
    SENDGRID_WEBHOOK_PUBLIC_KEY: str | None = None
    # With the Event Webhook configured: how long an interrupted send waits for SendGrid's
    # events before it is sent again, once (delivery/records.py).
    INTERRUPTED_SEND_WAIT_MINUTES: int = 15
    EMAIL_FROM: str = "notifications@example.com"
    OUTBOX_DIR: str = "var/outbox"
    BRAND_NAME: str = "Coverage Notices"
    SUPPORT_EMAIL: str = "support@example.com"
    QUEUE_NAME: str = "events"
    REMINDER_LEAD_HOURS: int = 24
    COVERAGE_ALERT_HOURS: int = 12
    CHARGE_RECOVERY_HOURS: int = 48
    QUOTE_LOOKUP_DELAY_SECONDS: int = 300
    CREATORIQ_SYNC_WAIT_HOURS: int = 24
    REMIT_REMINDER_DAYS: int = 7
    NOTICE_COALESCE_SECONDS: int = 300
    WORKER_PROCESSES: int = 0  # worker.py's processes; 0: two per CPU it may run on
    LOG_FORMAT: str = "json"
    LOG_LEVEL: str = "info"
    ORG_REP_EMAILS: tuple[str, ...] = ()
    ORG_WITHHOLD_PREMIUM: bool = False
    TEN99POLICY_API_KEY: str | None = None
    TEN99POLICY_API_BASE: str = "https://api.1099policy.com"
    TEN99POLICY_API_TIMEOUT_SECONDS: float = 10.0
    PORT: int = 8000
    API_TOKENS: tuple[str, ...] = ()
    PLATFORM_CALLBACK_URL: str | None = None
    PLATFORM_CALLBACK_SECRET: str | None = None
    SECRET_KEY: str | None = None
    PUBLIC_BASE_URL: str | None = None
    COVERAGE_LINK_MAX_AGE_DAYS: int = 30
    METRICS_TOKEN: str | None = None
    CONSOLE_USERS: tuple[str, ...] = ()
    CONSOLE_TRUSTED_HEADER: str | None = None
    CONSOLE_REPLAY_CAP: int = 10_000
    CONSOLE_SIGNIN_LIMIT_PER_ADDRESS: str = "10 per minute; 100 per day"
    CONSOLE_SIGNIN_LIMIT_PER_USER: str = "10 per minute; 100 per day"
    HSTS_SECONDS: int = 0
    CONSOLE_TRUSTED_PROXIES: tuple[str, ...] = ()


_INT = {
    "REDIS_MIN_REPLICA_ACKS",
    "REDIS_REPLICA_ACK_TIMEOUT_MS",
    "WEBHOOK_TOLERANCE_SECONDS",
    "WEBHOOK_MAX_BYTES",
    "EVENT_RETENTION_DAYS",
    "CONTRACTOR_RETENTION_DAYS",
    "RECONCILE_INTERVAL_MINUTES",
    "SWEEP_AFTER_SECONDS",
    "INTERRUPTED_SEND_WAIT_MINUTES",
    "PORT",
    "COVERAGE_LINK_MAX_AGE_DAYS",
    "REMINDER_LEAD_HOURS",
    "COVERAGE_ALERT_HOURS",
    "CHARGE_RECOVERY_HOURS",
    "QUOTE_LOOKUP_DELAY_SECONDS",
    "CREATORIQ_SYNC_WAIT_HOURS",
    "REMIT_REMINDER_DAYS",
    "NOTICE_COALESCE_SECONDS",
    "CONSOLE_REPLAY_CAP",
    "WORKER_PROCESSES",
    "HSTS_SECONDS",
}
_FLOAT = {
    "SENDGRID_TIMEOUT_SECONDS",
    "SENDGRID_RETRY_BASE_SECONDS",
    "TEN99POLICY_API_TIMEOUT_SECONDS",
}
_LISTS = {
    "REDIS_SENTINELS",
    "TEN99POLICY_WEBHOOK_SECRETS",
    "PLATFORM_WEBHOOK_SECRETS",
    "ORG_REP_EMAILS",
    "API_TOKENS",
    "CONSOLE_USERS",
    "CONSOLE_TRUSTED_PROXIES",
}
_OPTIONAL = {
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_PASSWORD",
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_KEY_FILE",
    "SENDGRID_API_KEY",
    "TEN99POLICY_API_KEY",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "PLATFORM_CALLBACK_URL",
    "PLATFORM_CALLBACK_SECRET",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
    "METRICS_TOKEN",
    "CONSOLE_TRUSTED_HEADER",
}
_BOOL = {"ORG_WITHHOLD_PREMIUM", "REDIS_SENTINEL_TLS"}
REQUIRED = ("TEN99POLICY_WEBHOOK_SECRETS", "PLATFORM_WEBHOOK_SECRETS")


def _parse(name: str, raw: Any) -> Any:
    """Turn one raw value (env string or test override) into its typed form."""
    if name in _LISTS:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(s.strip() for s in items if s and s.strip())
    if name in _OPTIONAL:
        return raw or None
    if name in _BOOL:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(name, "must be true or false")
    if name in _INT:
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(name, "must be an integer") from None
    if name in _FLOAT:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(name, "must be a number") from None
    return str(raw)


def _validate(cfg: Config) -> None:
    """Reject values that would make the service silently unsafe or useless."""
    if cfg.WEBHOOK_TOLERANCE_SECONDS <= 0:
        # A tolerance of 0 disables replay protection in Stripe's library; we refuse it.
        raise ConfigError("WEBHOOK_TOLERANCE_SECONDS", "must be a positive number of seconds")
    if cfg.WEBHOOK_MAX_BYTES <= 0:
        raise ConfigError("WEBHOOK_MAX_BYTES", "must be positive")
    if cfg.EVENT_RETENTION_DAYS <= 0:
        raise ConfigError("EVENT_RETENTION_DAYS", "must be positive")
    if cfg.CONTRACTOR_RETENTION_DAYS <= 0:
        raise ConfigError("CONTRACTOR_RETENTION_DAYS", "must be positive")
    if cfg.RECONCILE_INTERVAL_MINUTES < 0:
        raise ConfigError("RECONCILE_INTERVAL_MINUTES", "must not be negative (0: off)")
    if cfg.INTERRUPTED_SEND_WAIT_MINUTES <= 0:
        # 0 would send again before SendGrid's events had any time to say it took the mail.
        raise ConfigError("INTERRUPTED_SEND_WAIT_MINUTES", "must be a positive number of minutes")
    if cfg.SENDGRID_TIMEOUT_SECONDS <= 0:
        raise ConfigError("SENDGRID_TIMEOUT_SECONDS", "must be positive")
    if not cfg.REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL", "must be a redis://, rediss:// or unix:// URL")
    _validate_sentinel(cfg)
    _validate_tls(cfg)
    if not cfg.SENDGRID_API_HOST.startswith(("http://", "https://")):
        raise ConfigError("SENDGRID_API_HOST", "must be an http(s) URL")
    for name in REQUIRED:
        if not getattr(cfg, name):
            raise ConfigError(name, "is required (one or more comma-separated secrets)")
    for secret in cfg.PLATFORM_WEBHOOK_SECRETS:
        key = secret.removeprefix("whsec_")
        try:
            if not secret.startswith("whsec_") or not base64.b64decode(key, validate=True):
                raise ValueError
        except (ValueError, binascii.Error):
            raise ConfigError(
                "PLATFORM_WEBHOOK_SECRETS", "each secret must be whsec_ followed by base64"
            ) from None
    for name in (
        "REMINDER_LEAD_HOURS",
        "COVERAGE_ALERT_HOURS",
        "CHARGE_RECOVERY_HOURS",
        "QUOTE_LOOKUP_DELAY_SECONDS",
        "CREATORIQ_SYNC_WAIT_HOURS",
        "REMIT_REMINDER_DAYS",
        "NOTICE_COALESCE_SECONDS",
        "WORKER_PROCESSES",
        "HSTS_SECONDS",
    ):
        if getattr(cfg, name) < 0:
            raise ConfigError(name, "must not be negative")
    if cfg.LOG_FORMAT not in ("json", "text"):
        raise ConfigError("LOG_FORMAT", "must be json or text")
    if cfg.LOG_LEVEL not in ("debug", "info", "warning"):
        raise ConfigError("LOG_LEVEL", "must be debug, info or warning")
    if cfg.SENDGRID_TRANSPORT not in ("session", "client"):
        raise ConfigError("SENDGRID_TRANSPORT", "must be session or client")
    if cfg.SENDGRID_WEBHOOK_PUBLIC_KEY is not None:
        try:
            sendgrid_public_key(cfg.SENDGRID_WEBHOOK_PUBLIC_KEY)
        except ValueError as exc:
            raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY", str(exc)) from None
    if "@" not in cfg.EMAIL_FROM:
        raise ConfigError("EMAIL_FROM", "must be an email address")
    if any("@" not in rep for rep in cfg.ORG_REP_EMAILS):
        raise ConfigError("ORG_REP_EMAILS", "must be comma-separated email addresses")
    if not cfg.TEN99POLICY_API_BASE.startswith(("http://", "https://")):
        raise ConfigError("TEN99POLICY_API_BASE", "must be an http(s) URL")
    if cfg.METRICS_TOKEN is not None and len(cfg.METRICS_TOKEN) < 16:
        raise ConfigError("METRICS_TOKEN", "must be at least 16 characters")
    _validate_coverage(cfg)
    _validate_console(cfg)


def parse_limits(text: str) -> list[RateLimitItem]:
    """`limits` notation (`10 per minute; 50 per hour`); ValueError when it is not."""
    found = parse_many(text)
    if not found:
        raise ValueError("no limit given")
    return found


def sendgrid_public_key(value: str) -> str:
    """Check a SendGrid Event Webhook verification key; return it without outer whitespace.

    The key is what SendGrid's UI shows: base64 of a DER SubjectPublicKeyInfo for P-256.
    Raises ValueError saying what is wrong (never echoing the value).
    """
    key = value.strip()
    try:
        der = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("must be the base64 public key SendGrid shows (no PEM lines)") from None
    try:
        public = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("is not a DER-encoded public key") from None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise ValueError("must be an ECDSA P-256 public key")
    return key


def sentinel_addresses(cfg: Config) -> list[tuple[str, int]]:
    """REDIS_SENTINELS as (host, port) pairs; `[::1]:26379` for an IPv6 host."""
    found = []
    for entry in cfg.REDIS_SENTINELS:
        host, _, port = entry.rpartition(":")
        found.append((host.strip("[]"), int(port)))
    return found


def _validate_sentinel(cfg: Config) -> None:
    """Sentinel settings: all of the pair or none; every address host:port."""
    for entry in cfg.REDIS_SENTINELS:
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("REDIS_SENTINELS", "must be comma-separated host:port addresses")
    if cfg.REDIS_SENTINELS and not cfg.REDIS_SENTINEL_MASTER:
        raise ConfigError("REDIS_SENTINEL_MASTER", "is required with REDIS_SENTINELS")
    if cfg.REDIS_SENTINEL_MASTER and not cfg.REDIS_SENTINELS:
        raise ConfigError("REDIS_SENTINELS", "is required with REDIS_SENTINEL_MASTER")
    if cfg.REDIS_MIN_REPLICA_ACKS < 0:
        raise ConfigError("REDIS_MIN_REPLICA_ACKS", "must not be negative (0: off)")
    if not 0 < cfg.REDIS_REPLICA_ACK_TIMEOUT_MS <= 4000:
        # Under the 5 s socket timeout: a WAIT must end before the connection gives up on it.
        raise ConfigError("REDIS_REPLICA_ACK_TIMEOUT_MS", "must be between 1 and 4000")


def redis_tls(cfg: Config) -> bool:
    """Whether the service speaks TLS to Redis: a rediss:// URL, or REDIS_SENTINEL_TLS."""
    if cfg.REDIS_SENTINELS:
        return cfg.REDIS_SENTINEL_TLS
    return cfg.REDIS_URL.startswith("rediss://")


_TLS_FILES = ("REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE")


def _validate_tls(cfg: Config) -> None:
    """TLS files only where TLS is spoken (a CA file beside a redis:// URL would otherwise
    leave the connection in plain text unnoticed); a client certificate with its key; every
    file readable now, not at the first connection."""
    if cfg.REDIS_SENTINEL_TLS and not cfg.REDIS_SENTINELS:
        raise ConfigError("REDIS_SENTINEL_TLS", "needs REDIS_SENTINELS (else use a rediss:// URL)")
    for name in _TLS_FILES:
        path = getattr(cfg, name)
        if path is None:
            continue
        if not redis_tls(cfg):
            raise ConfigError(
                name, "needs TLS: a rediss:// REDIS_URL, or REDIS_SENTINEL_TLS with sentinels"
            )
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise ConfigError(name, "must name a readable file")
    if (cfg.REDIS_TLS_CERT_FILE is None) != (cfg.REDIS_TLS_KEY_FILE is None):
        raise ConfigError("REDIS_TLS_KEY_FILE", "and REDIS_TLS_CERT_FILE go together")


CONSOLE_ROLES = ("viewer", "operator")


def console_users(cfg: Config) -> dict[str, tuple[str, str]]:
    """CONSOLE_USERS as name -> (role, werkzeug password hash). Split on the first two colons
    only: a werkzeug hash has colons of its own (`scrypt:32768:8:1$salt$hash`)."""
    users: dict[str, tuple[str, str]] = {}
    for entry in cfg.CONSOLE_USERS:
        name, _, rest = entry.partition(":")
        role, _, password_hash = rest.partition(":")
        users[name.strip()] = (role.strip(), password_hash.strip())
    return users


def _validate_console(cfg: Config) -> None:
    """The operator's console: each user `name:role:hash`; no entry may be half-written."""
    names: set[str] = set()
    for entry in cfg.CONSOLE_USERS:
        name, _, rest = entry.partition(":")
        role, _, password_hash = rest.partition(":")
        name = name.strip()
        if not name or role.strip() not in CONSOLE_ROLES or "$" not in password_hash:
            # The entry is not echoed: it holds a password hash.
            raise ConfigError(
                "CONSOLE_USERS",
                "each entry must be name:role:hash with role viewer or operator and a werkzeug "
                "password hash (flask --app receiver console-user NAME ROLE prints one)",
            )
        if name in names:
            raise ConfigError("CONSOLE_USERS", f"names a user twice ({name})")
        names.add(name)
    if cfg.CONSOLE_TRUSTED_HEADER is not None and not cfg.CONSOLE_USERS:
        raise ConfigError("CONSOLE_TRUSTED_HEADER", "needs CONSOLE_USERS (the roles come from it)")
    if cfg.CONSOLE_TRUSTED_HEADER is not None and not cfg.CONSOLE_TRUSTED_PROXIES:
        raise ConfigError(
            "CONSOLE_TRUSTED_HEADER", "needs CONSOLE_TRUSTED_PROXIES (the proxy's addresses)"
        )
    for cidr in cfg.CONSOLE_TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(
                "CONSOLE_TRUSTED_PROXIES", f"{cidr!r} is not an address or CIDR"
            ) from None
    if cfg.CONSOLE_REPLAY_CAP <= 0:
        raise ConfigError("CONSOLE_REPLAY_CAP", "must be positive")
    for name in ("CONSOLE_SIGNIN_LIMIT_PER_ADDRESS", "CONSOLE_SIGNIN_LIMIT_PER_USER"):
        try:
            parse_limits(getattr(cfg, name))
        except ValueError:
            raise ConfigError(name, "must be limits such as `10 per minute; 100 per day`") from None


def _validate_coverage(cfg: Config) -> None:
    """The coverage API, push and page settings (all optional; each feature is off without)."""
    if any(len(token) < 16 for token in cfg.API_TOKENS):
        raise ConfigError("API_TOKENS", "each token must be at least 16 characters")
    for name in ("PLATFORM_CALLBACK_URL", "PUBLIC_BASE_URL"):
        value = getattr(cfg, name)
        if value is not None and not value.startswith(("http://", "https://")):
            raise ConfigError(name, "must be an http(s) URL")
    secret = cfg.PLATFORM_CALLBACK_SECRET
    if cfg.PLATFORM_CALLBACK_URL and not secret:
        # An unsigned push would be indistinguishable from a forged one.
        raise ConfigError("PLATFORM_CALLBACK_SECRET", "is required with PLATFORM_CALLBACK_URL")
    if secret is not None:
        try:
            if not secret.startswith("whsec_") or not base64.b64decode(
                secret.removeprefix("whsec_"), validate=True
            ):
                raise ValueError
        except (ValueError, binascii.Error):
            raise ConfigError(
                "PLATFORM_CALLBACK_SECRET", "must be whsec_ followed by base64"
            ) from None
    if cfg.SECRET_KEY is not None and len(cfg.SECRET_KEY) < 16:
        raise ConfigError("SECRET_KEY", "must be at least 16 characters")
    if cfg.COVERAGE_LINK_MAX_AGE_DAYS <= 0:
        raise ConfigError("COVERAGE_LINK_MAX_AGE_DAYS", "must be positive")


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read defaults, then the environment, then `overrides` (tests), into a checked Config."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Config)}
    for name in known:
        if name in env:
            values[name] = _parse(name, env[name])
    for name, raw in (overrides or {}).items():
        if name not in known:  # a typo in a test or an embedding app must not pass silently
            raise ConfigError(name, "is not a setting")
        values[name] = _parse(name, raw)
    cfg = replace(Config(), **values)
    # The sendgrid client builds "<host>/v3/..."; a trailing slash would make "//v3".
    cfg = replace(
        cfg,
        SENDGRID_API_HOST=cfg.SENDGRID_API_HOST.rstrip("/"),
        TEN99POLICY_API_BASE=cfg.TEN99POLICY_API_BASE.rstrip("/"),
    )
    _validate(cfg)
    return cfg
