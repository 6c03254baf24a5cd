"""What a job needs at run time (config, Redis, mailer, renderer), built once per process.

RQ jobs are plain functions named by dotted path, so they cannot be handed objects. The worker's
`main()` calls `install(build(cfg))` before it starts; a process that runs jobs without doing so
(e.g. `rq worker` started by hand) builds the runtime from the environment on first use.
Nothing here runs at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue

from . import coverage_links
from .config import Config, load_config
from .contacts import Contacts
from .coverage_store import CoverageStore
from .deliveries import Contact, Deliveries
from .inbox import Inbox
from .jobs import Jobs
from .ledger import Ledger
from .mailer import Mailer, build_mailer
from .notices import Timing
from .reminders import Settlements
from .stores import build_queue, build_redis

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "emails"


@dataclass
class Runtime:
    cfg: Config
    redis: Redis
    queue: Queue
    inbox: Inbox
    deliveries: Deliveries
    mailer: Mailer
    renderer: Any
    contacts: Contacts
    jobs: Jobs
    ledger: Ledger
    settlements: Settlements
    clock: Callable[[], float] = time.time  # tests inject a fixed clock instead of sleeping

    @property
    def send_lease(self) -> float:
        """How long a `sending` claim is trusted: a provider call can take up to the timeout."""
        return self.cfg.SENDGRID_TIMEOUT_SECONDS * 1.5 + 2

    def render(self, notice: str, context: dict[str, Any]) -> Any:
        return self.renderer.render(notice, context)

    @property
    def timing(self) -> Timing:
        return Timing(lead=self.cfg.REMINDER_LEAD_HOURS * 3600,
                      remit_before=self.cfg.REMIT_REMINDER_DAYS * 86400)

    def current_contact(self, contractor_id: str) -> Contact | None:
        """The contractor's contact as events last told it (no API call on the send path)."""
        person = self.contacts.stored(contractor_id)
        if person is None:
            return None
        return Contact(person.email, person.first_name, person.last_name, person.timezone)

    def coverage_link(self, contractor_id: str, now: float | None = None) -> str | None:
        """A signed link to the contractor's coverage page (None when links are off)."""
        return coverage_links.coverage_link(self.cfg, contractor_id, now)

    def moot_reason(self, guard: dict[str, Any], now: float) -> str | None:
        """Why a scheduled reminder should not go out any more (None: send it)."""
        premium = self.ledger.invoice_premium(str(guard.get("invoice", "")))
        return self.settlements.moot_reason(guard, premium, now)

    @cached_property
    def coverage(self) -> CoverageStore:
        """Coverage documents and their push (built on first use, on this runtime's clock)."""
        return CoverageStore(self.redis, self.queue, self.cfg.PLATFORM_CALLBACK_URL,
                             self.cfg.EVENT_RETENTION_DAYS * 86400, clock=lambda: self.clock())


def build(cfg: Config) -> Runtime:
    """Build every worker-side dependency from one Config."""
    from .emails import EmailRenderer

    redis = build_redis(cfg.REDIS_URL)
    queue = build_queue(redis, cfg.QUEUE_NAME)
    retention = cfg.EVENT_RETENTION_DAYS * 86400
    return Runtime(
        cfg=cfg,
        redis=redis,
        queue=queue,
        inbox=Inbox(redis, queue, cfg.EVENT_RETENTION_DAYS, cfg.TEN99POLICY_SIGNATURE_HEADER),
        deliveries=Deliveries(
            redis, queue, cfg.EVENT_RETENTION_DAYS, cfg.SENDGRID_RETRY_BASE_SECONDS
        ),
        mailer=build_mailer(cfg),
        renderer=EmailRenderer(
            TEMPLATES_DIR, brand_name=cfg.BRAND_NAME, support_email=cfg.SUPPORT_EMAIL
        ),
        contacts=Contacts(
            redis,
            api_key=cfg.TEN99POLICY_API_KEY,
            api_base=cfg.TEN99POLICY_API_BASE,
            timeout=cfg.TEN99POLICY_API_TIMEOUT_SECONDS,
        ),
        jobs=Jobs(redis, retention),
        ledger=Ledger(redis, retention),
        settlements=Settlements(redis, retention),
    )


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    """Make `runtime` the one jobs in this process use (None forgets it)."""
    global _current
    _current = runtime


def current() -> Runtime:
    """The installed runtime, built from the environment on first use if none was installed."""
    global _current
    if _current is None:
        _current = build(load_config())
    return _current
