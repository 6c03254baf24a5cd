"""Webhook receiver and notification service for 1099Policy integrations.

`create_app()` is the only entry point for the web process; nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from flask import Flask
from flask.cli import NoAppException
from redis.exceptions import RedisError

from .cli import local_environ
from .clock import Clock, system_clock
from .config import Config, console_users, load_config
from .console.audit import AuditLog
from .console.signin_limits import SigninLimits
from .console.users import ConsoleUsers
from .delivery.sendgrid_events import SendGridEvents
from .errors import ConfigError, register_error_handlers
from .ingest.inbox import Inbox
from .ingest.verify import SendGridEventVerifier, StandardWebhooksVerifier, TV1Verifier
from .pipeline.runtime import build as build_runtime
from .store import format as data_format
from .store.connection import build_queue, build_redis, notice_queue_name
from .store.metrics import Metrics
from .views import (
    console_auth,
    console_pages,
    coverage_api,
    coverage_page,
    creatoriq_api,
    headers,
    ops_api,
    probes,
    prometheus,
    proxies,
    rq_view,
    sendgrid_webhook,
    webhooks,
)


def _cli_config() -> Config:
    """The settings when the Flask CLI builds the app (`flask --app receiver routes`, `--help`):
    beside `make run` its Redis and secrets (receiver/cli.py), and a missing setting said in
    one line (Flask prints a NoAppException's message) instead of a ConfigError traceback."""
    try:
        return load_config(environ=local_environ())
    except (ConfigError, click.UsageError) as exc:
        problem = exc.format_message() if isinstance(exc, click.UsageError) else str(exc)
        raise NoAppException(
            f"{problem}\nThe app's own commands (routes, shell) need its settings: beside a "
            "running `make run` they are read from var/; elsewhere set them in the environment."
        ) from None


def create_app(test_config: Mapping[str, Any] | None = None, clock: Clock = system_clock) -> Flask:
    """Build the Flask app: config from the environment (then `test_config`), Redis, routes;
    every view reads the time from `clock`."""
    if test_config is None and click.get_current_context(silent=True) is not None:
        cfg = _cli_config()
    else:
        cfg = load_config(test_config)
    app = Flask(__name__)
    app.config["RECEIVER"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg.WEBHOOK_MAX_BYTES
    redis = build_redis(cfg)
    try:
        data_format.ensure(redis)  # DataFormatError: data of a later release; do not start
    except RedisError:  # unreachable now: requests answer 503 until it is back
        pass
    queue = build_queue(redis, cfg.QUEUE_NAME)
    app.extensions["redis"] = redis
    app.extensions["clock"] = clock
    app.extensions["inbox"] = Inbox.from_config(redis, queue, cfg)
    app.extensions["verifiers"] = {
        "1099policy": TV1Verifier(
            cfg.TEN99POLICY_WEBHOOK_SECRETS,
            cfg.TEN99POLICY_SIGNATURE_HEADER,
            cfg.WEBHOOK_TOLERANCE_SECONDS,
        ),
        "platform": StandardWebhooksVerifier(
            cfg.PLATFORM_WEBHOOK_SECRETS, cfg.WEBHOOK_TOLERANCE_SECONDS
        ),
    }
    if cfg.SENDGRID_WEBHOOK_PUBLIC_KEY:  # unset: /webhooks/sendgrid answers 503 not_configured
        app.extensions["sendgrid_verifier"] = SendGridEventVerifier(
            cfg.SENDGRID_WEBHOOK_PUBLIC_KEY, cfg.WEBHOOK_TOLERANCE_SECONDS
        )
    # Rep alerts are decided work: they go on the notices queue, ahead of any event backlog.
    alerts_queue = build_queue(redis, notice_queue_name(cfg.QUEUE_NAME))
    app.extensions["sendgrid_events"] = SendGridEvents(redis, alerts_queue)
    app.extensions["metrics"] = Metrics(redis)
    app.extensions["console_users"] = ConsoleUsers(console_users(cfg), cfg.CONSOLE_TRUSTED_HEADER)
    app.extensions["audit"] = AuditLog(redis, cfg.EVENT_RETENTION_DAYS, clock)
    if cfg.CONSOLE_USERS:  # the console replays, retries and renders as a worker would
        app.extensions["signin_limits"] = SigninLimits(
            redis, cfg.CONSOLE_SIGNIN_LIMIT_PER_ADDRESS, cfg.CONSOLE_SIGNIN_LIMIT_PER_USER
        )
        app.extensions["runtime"] = build_runtime(cfg, clock)
        rq_view.mount(app, redis, cfg)
    views = (
        webhooks,
        sendgrid_webhook,
        probes,
        coverage_api,
        creatoriq_api,
        coverage_page,
        prometheus,
        ops_api,
        console_pages,
    )
    for view in views:
        app.register_blueprint(view.bp)
    register_error_handlers(app, prometheus.refusal_counter(app.extensions["metrics"]))
    headers.install(app, cfg)
    app.extensions["trusted_proxies"] = proxies.networks(cfg.CONSOLE_TRUSTED_PROXIES)
    app.extensions["csrf_key"] = console_auth.csrf_key(cfg.SECRET_KEY, cfg.CONSOLE_USERS)
    app.wsgi_app = proxies.TrustedProxies(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions["trusted_proxies"]
    )
    return app
