"""What the worker side needs (config, clock, Redis, stores, mailer, renderer), built once.

`build(cfg, clock)` wires every domain object from one Config and one clock; nothing here runs
at import time. Handlers and the sweeper receive the `Runtime` as a typed argument. Only
pipeline/tasks.py (the RQ entry points) and worker.py hold a process's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from rq import Queue

from ..clock import Clock, system_clock
from ..config import Config
from ..coverage.links import coverage_link
from ..coverage.payments import Payments
from ..coverage.store import CoverageStore
from ..delivery.address_alerts import AddressAlerts
from ..delivery.emails import EMAIL_TEMPLATES, EmailRenderer
from ..delivery.mailer import Mailer, build_mailer
from ..delivery.records import NoticeRecords
from ..delivery.sending import Sender, send_lease
from ..delivery.suppressions import Suppressions
from ..ingest.inbox import Inbox
from ..notices.contacts import Contacts
from ..notices.jobs import Jobs
from ..notices.ledger import Ledger
from ..notices.plans import Timing
from ..notices.reminders import Guards, Settlements
from ..store.connection import build_queue, build_redis, notice_queue_name
from ..store.metrics import Metrics
from .leases import EventLeases
from .quotes import QuoteLookups


@dataclass
class Runtime:
    cfg: Config
    clock: Clock
    redis: Redis
    queue: Queue  # events (QUEUE_NAME): one processing task per event
    notice_queue: Queue  # decided work: notice sends (scheduled ones too), alerts, pushes
    inbox: Inbox
    leases: EventLeases
    records: NoticeRecords
    sender: Sender
    mailer: Mailer
    renderer: EmailRenderer
    contacts: Contacts
    jobs: Jobs
    ledger: Ledger
    settlements: Settlements
    suppressions: Suppressions
    alerts: AddressAlerts
    coverage: CoverageStore
    quotes: QuoteLookups  # the contractor of coverage events parked under a quote
    payments: Payments
    metrics: Metrics

    @property
    def queues(self) -> list[Queue]:
        """A worker's queues in the order RQ dequeues them: decided emails before events."""
        return [self.notice_queue, self.queue]

    @property
    def timing(self) -> Timing:
        return Timing(
            lead=self.cfg.REMINDER_LEAD_HOURS * 3600,
            coverage_alert=self.cfg.COVERAGE_ALERT_HOURS * 3600,
            charge_recovery=self.cfg.CHARGE_RECOVERY_HOURS * 3600,
            remit_before=self.cfg.REMIT_REMINDER_DAYS * 86400,
            coalesce=self.cfg.NOTICE_COALESCE_SECONDS,
        )


def build(cfg: Config, clock: Clock = system_clock, patient: bool = False) -> Runtime:
    """Build every worker-side dependency from one Config and one clock; `patient` (worker.py)
    makes its Redis client wait out an outage instead of failing (store/connection.py)."""
    redis = build_redis(cfg, patient=patient)
    queue = build_queue(redis, cfg.QUEUE_NAME)
    notice_queue = build_queue(redis, notice_queue_name(cfg.QUEUE_NAME))
    retention = cfg.EVENT_RETENTION_DAYS * 86400
    records = NoticeRecords(
        redis,
        notice_queue,
        cfg.EVENT_RETENTION_DAYS,
        clock,
        cfg.REDIS_MIN_REPLICA_ACKS,
        cfg.REDIS_REPLICA_ACK_TIMEOUT_MS,
        # Only SendGrid's events can tell whether an interrupted send went out.
        interrupted_wait=(
            cfg.INTERRUPTED_SEND_WAIT_MINUTES * 60 if cfg.SENDGRID_WEBHOOK_PUBLIC_KEY else None
        ),
    )
    suppressions = Suppressions(redis, notice_queue)
    contacts = Contacts(
        redis,
        api_key=cfg.TEN99POLICY_API_KEY,
        api_base=cfg.TEN99POLICY_API_BASE,
        timeout=cfg.TEN99POLICY_API_TIMEOUT_SECONDS,
        retention_seconds=cfg.CONTRACTOR_RETENTION_DAYS * 86400,
    )
    jobs = Jobs(redis, retention)
    ledger = Ledger(redis, retention)
    settlements = Settlements(redis, retention)
    mailer = build_mailer(cfg, clock)
    renderer = EmailRenderer(
        EMAIL_TEMPLATES, brand_name=cfg.BRAND_NAME, support_email=cfg.SUPPORT_EMAIL
    )

    def link(contractor_id: str, now: float) -> str | None:
        return coverage_link(cfg, contractor_id, now)

    metrics = Metrics(redis)
    coverage = CoverageStore(
        redis,
        notice_queue,
        cfg.PLATFORM_CALLBACK_URL,
        retention,
        clock,
        doc_ttl=cfg.CONTRACTOR_RETENTION_DAYS * 86400,
        # Parked coverage events look their quote up only when the API is configured.
        quote_lookup_delay=cfg.QUOTE_LOOKUP_DELAY_SECONDS if cfg.TEN99POLICY_API_KEY else None,
    )
    sender = Sender(
        records,
        suppressions,
        mailer,
        renderer,
        Guards(settlements, ledger),
        contacts,
        link,
        clock,
        lease=send_lease(cfg.SENDGRID_TIMEOUT_SECONDS),
        backoff_base=cfg.SENDGRID_RETRY_BASE_SECONDS,
        metrics=metrics,
    )
    return Runtime(
        cfg=cfg,
        clock=clock,
        redis=redis,
        queue=queue,
        notice_queue=notice_queue,
        inbox=Inbox.from_config(redis, queue, cfg),
        leases=EventLeases(redis, clock, retention),
        records=records,
        sender=sender,
        mailer=mailer,
        renderer=renderer,
        contacts=contacts,
        jobs=jobs,
        ledger=ledger,
        settlements=settlements,
        suppressions=suppressions,
        alerts=AddressAlerts(records, suppressions, jobs, cfg.ORG_REP_EMAILS),
        coverage=coverage,
        quotes=QuoteLookups(coverage, cfg.TEN99POLICY_API_KEY),
        payments=Payments(redis, cfg.CONTRACTOR_RETENTION_DAYS * 86400),
        metrics=metrics,
    )
