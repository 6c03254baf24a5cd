"""`GET /metrics`: Prometheus text format, read from Redis at scrape time.

Every process (gunicorn workers, RQ workers, on any host) adds to the same Redis hashes
(store/metrics.py), so any web process answers a scrape with the service's totals; the
exposition is prometheus-client's. With METRICS_TOKEN set, the scrape needs
`Authorization: Bearer <token>` (compared in constant time); unset, it is open.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from ..clock import Clock
from ..config import Config
from ..errors import Unauthorized, Unavailable
from ..store import metrics as m

bp = Blueprint("metrics", __name__)

PREFIX = "ten99_receiver_"
# The senders whose refusals are counted: a label value per sender, never a stranger's path.
_SOURCES = frozenset({"1099policy", "platform", "sendgrid"})


def refusal_counter(metrics: m.Metrics) -> Any:
    """The error handler's hook: count a refused webhook by source and error code."""

    def refused(source: str, code: str) -> None:
        if source in _SOURCES:
            g.refusal_counted = True  # one count (one Redis call) per refusal, not two
            metrics.webhook_refused(source, code)

    return refused


@bp.after_app_request
def count_server_errors(response: Response) -> Response:
    """Count the 5xx answers (ours, Flask's 500s) by status and blueprint; a webhook's are
    counted by `refusal_counter` instead, with the reason."""
    if response.status_code >= 500 and not g.get("refusal_counted"):
        current_app.extensions["metrics"].server_error(
            response.status_code, request.blueprint or "none"
        )
    return response


def _split(raw: str, parts: int) -> list[str]:
    """Label values of a field; the first value may itself contain '|' (an event type)."""
    return raw.rsplit("|", parts - 1)


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    doc: str,
    labels: list[str],
    values: dict[str, str],
) -> Metric:
    """A counter or gauge family from its hash (field: label values, value: the number)."""
    family = kind(PREFIX + name, doc, labels=labels)
    for raw, value in sorted(values.items()):
        family.add_metric(_split(raw, len(labels)), float(value))
    return family


def _histogram(
    name: str, doc: str, label: str, values: dict[str, str], bounds: tuple[float, ...]
) -> HistogramMetricFamily:
    """A histogram family from its hash (per-bucket counts, cumulated here, and sums)."""
    family = HistogramMetricFamily(PREFIX + name, doc, labels=[label])
    per: dict[str, dict[str, float]] = {}
    for raw, value in values.items():
        key, _, le = raw.rpartition("|")
        per.setdefault(key, {})[le] = float(value)
    for key, counts in sorted(per.items()):
        buckets: list[tuple[str, float]] = []
        total = 0.0
        for bound in (*(repr(b) for b in bounds), "+Inf"):
            total += counts.get(bound, 0.0)
            buckets.append((bound, total))
        family.add_metric([key], buckets, counts.get("sum", 0.0))
    return family


_PRESENT = {
    "workers_seen": "Workers whose own heartbeat record is recent enough to count them alive "
    "(as /readyz counts them).",
    "overdue_notices": "Unsent notices whose due time has passed (notices:pending).",
    "oldest_overdue_notice_age_seconds": "How long ago the most overdue unsent notice was due; "
    "absent when none is.",
    "redis_aof_enabled": "1 when Redis has append-only persistence on (INFO persistence).",
    "redis_aof_last_write_ok": "0 when Redis's last append-only write failed.",
    "redis_rdb_last_bgsave_ok": "0 when Redis's last background snapshot (RDB) failed.",
    "redis_connected_replicas": "Replicas connected to the Redis primary (INFO replication).",
}


class RedisCollector(Collector):
    """Builds every family from one read of the metric hashes."""

    def __init__(self, metrics: m.Metrics, clock: Clock, cfg: Config) -> None:
        self.metrics = metrics
        self.clock = clock
        self.cfg = cfg

    def collect(self) -> Iterator[Metric]:
        data = self.metrics.read()
        now = self.clock()
        yield from self._present(now)
        yield from self._settings()

        yield _family(
            CounterMetricFamily,
            "webhook_requests",
            "Webhook deliveries by source and outcome (queued, ignored, duplicate, "
            "accepted for SendGrid batches, rejected with the error code as reason).",
            ["source", "outcome", "reason"],
            data[m.WEBHOOKS],
        )
        yield _family(
            GaugeMetricFamily,
            "last_event_received_timestamp_seconds",
            "Unix time of the last verified delivery (new or duplicate), by source.",
            ["source"],
            data[m.LAST_RECEIVED],
        )
        reconciled = data[m.RECONCILE]
        if "last_success" in reconciled:
            yield GaugeMetricFamily(
                PREFIX + "last_reconcile_success_timestamp_seconds",
                "Unix time of the last reconcile run that completed.",
                value=float(reconciled["last_success"]),
            )
        yield CounterMetricFamily(
            PREFIX + "reconcile_recovered_events",
            "Events that never arrived by webhook, accepted by reconcile runs.",
            value=float(reconciled.get("recovered", 0)),
        )
        pending = data["events_pending"]
        yield GaugeMetricFamily(
            PREFIX + "unprocessed_events",
            "Events stored but not yet done or failed (events:pending).",
            value=float(pending["count"]),
        )
        oldest = float(pending["oldest"]) if "oldest" in pending else now
        yield GaugeMetricFamily(
            PREFIX + "oldest_unprocessed_event_age_seconds",
            "Age of the oldest unprocessed event (since received or last re-queued); 0 if none.",
            value=max(0.0, now - oldest),
        )
        yield _family(
            CounterMetricFamily,
            "events_processed",
            "Event tasks by event type and outcome (done, retrying, failed).",
            ["type", "outcome"],
            data[m.EVENTS],
        )
        yield _histogram(
            "event_processing_seconds",
            "Time to process one event task (handler and bookkeeping), by event type.",
            "type",
            data[m.EVENT_SECONDS],
            m.EVENT_BUCKETS,
        )
        yield _histogram(
            "event_latency_seconds",
            "From receiving an event to its processing done (queue wait, retries included), "
            "by event type: the first half of webhook -> email.",
            "type",
            data[m.EVENT_LATENCY],
            m.LATENCY_BUCKETS,
        )
        yield _family(
            CounterMetricFamily,
            "notices",
            "Notice sends by notice id and what they ended in (accepted, failed, pending = "
            "retry scheduled, cancelled, suppressed, interrupted, error).",
            ["notice", "outcome"],
            data[m.NOTICES],
        )
        yield _histogram(
            "notice_latency_seconds",
            "From when a notice was due (created while its event was processed, or its send "
            "time) to SendGrid accepting it: the second half of webhook -> email.",
            "notice",
            data[m.NOTICE_SECONDS],
            m.LATENCY_BUCKETS,
        )
        yield _histogram(
            "end_to_end_seconds",
            "From the webhook delivery being received to SendGrid accepting the notice it "
            "caused, for notices sent at once (not reminders scheduled for later).",
            "notice",
            data[m.END_TO_END],
            m.LATENCY_BUCKETS,
        )
        yield _family(
            CounterMetricFamily,
            "sendgrid_responses",
            "SendGrid mail/send answers by status class (2xx, 4xx, 5xx; none: no answer).",
            ["status_class"],
            data[m.SENDGRID],
        )
        yield _family(
            CounterMetricFamily,
            "http_server_errors",
            "5xx answers by status and the part of the app (blueprint) that gave them, but for "
            "webhook refusals (webhook_requests, outcome rejected); those given while Redis is "
            "unreachable are lost (the scrape fails then too).",
            ["status", "area"],
            data[m.SERVER_ERRORS],
        )

    def _present(self, now: float) -> Iterator[Metric]:
        """Gauges of what is true at scrape time (store/metrics.py `present`)."""
        state = self.metrics.present(now)
        for key, doc in _PRESENT.items():
            if key in state:
                yield GaugeMetricFamily(PREFIX + key, doc, float(state[key]))

    def _settings(self) -> Iterator[Metric]:
        """The settings rules compare against, as this web process has them."""
        cfg = self.cfg
        yield GaugeMetricFamily(
            PREFIX + "redis_min_replica_acks",
            "REDIS_MIN_REPLICA_ACKS: replicas each accepted event must reach (0: not asked).",
            value=float(cfg.REDIS_MIN_REPLICA_ACKS),
        )
        interval = cfg.RECONCILE_INTERVAL_MINUTES * 60 if cfg.TEN99POLICY_API_KEY else 0
        yield GaugeMetricFamily(
            PREFIX + "reconcile_interval_seconds",
            "How often workers reconcile with 1099Policy's events list (0: off, or no "
            "TEN99POLICY_API_KEY).",
            value=float(interval),
        )


def _authorize(token: str | None) -> None:
    if token is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise Unauthorized("a valid bearer token is required")


@bp.get("/metrics")
def scrape() -> Response:
    """The service's metrics, from every process, in Prometheus text format."""
    _authorize(current_app.config["RECEIVER"].METRICS_TOKEN)
    registry = CollectorRegistry(auto_describe=False)
    extensions = current_app.extensions
    cfg = current_app.config["RECEIVER"]
    registry.register(RedisCollector(extensions["metrics"], extensions["clock"], cfg))
    try:
        body = generate_latest(registry)
    except RedisError as exc:
        raise Unavailable("storage unavailable") from exc
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)
