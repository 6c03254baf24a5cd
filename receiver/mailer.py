"""The provider seam: hand one rendered email to SendGrid, or to the local outbox.

Both mailers take an `OutgoingEmail` and return the provider's message id, or raise
`SendFailure` saying whether a retry can help. Everything above this module is provider-free.

SendGrid notes (see shared/docs/anchors/anchors-notifications.md §3):
- the client has no default timeout, so we set one on the client tree;
- its HTTP logger at DEBUG prints the API key and the payload, so it is pinned to WARNING;
- errors cross process boundaries badly as subclasses, so we branch on `status_code`;
- 202 only means "queued"; delivery truth comes from the Event Webhook.
"""

from __future__ import annotations

import email.policy
import logging
import os
import random
import time
import urllib.error
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any, Protocol

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Category, CustomArg, From, Mail, To


@dataclass(frozen=True)
class OutgoingEmail:
    """One email to one person. `record_id` is opaque and goes into SendGrid's custom args."""

    to_email: str
    to_name: str
    subject: str
    html: str
    text: str
    category: str
    record_id: str


@dataclass
class SendFailure(Exception):
    """The provider did not take the email.

    kind: `throttled` (retry at `retry_at`), `transient` (retry with backoff; the provider
    may or may not have queued it) or `permanent` (do not retry; `errors` says why).
    """

    kind: str
    status: int | None = None
    retry_at: float | None = None
    errors: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.kind} send failure (status {self.status})"


class Mailer(Protocol):
    def send(self, message: OutgoingEmail) -> str: ...


def _errors_of(exc: HTTPError) -> list[Any]:
    try:
        body = exc.to_dict
        return list(body.get("errors", [])) if isinstance(body, dict) else []
    except Exception:  # a non-JSON error body still fails the send, with no detail
        return []


class SendGridMailer:
    """Send through the official `sendgrid` client, with a timeout and a normalised host."""

    def __init__(self, api_key: str, host: str, sender: str, timeout: float) -> None:
        logging.getLogger("python_http_client").setLevel(logging.WARNING)
        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self.client.client.timeout = timeout
        self.sender = sender

    def send(self, message: OutgoingEmail) -> str:
        """Post one mail; return SendGrid's X-Message-Id or raise SendFailure."""
        mail = Mail(
            from_email=From(self.sender),
            to_emails=To(message.to_email, message.to_name or None),
            subject=message.subject,
            plain_text_content=message.text,
            html_content=message.html,
        )
        mail.category = Category(message.category)
        mail.custom_arg = CustomArg("notice_record", message.record_id)
        try:
            response = self.client.send(mail)
        except HTTPError as exc:
            raise _classify(exc) from None
        except (TimeoutError, urllib.error.URLError, OSError):
            raise SendFailure("transient") from None
        return str(response.headers.get("X-Message-Id") or "")


def _classify(exc: HTTPError) -> SendFailure:
    status = int(exc.status_code)
    if status == 429:
        reset = None
        try:
            reset = float(exc.headers.get("X-RateLimit-Reset"))
        except (TypeError, ValueError, AttributeError):
            pass
        # Jitter spreads the retries of many workers hitting the same reset second.
        retry_at = (reset if reset else time.time() + 1) + random.uniform(0, 1)
        return SendFailure("throttled", status, retry_at=retry_at)
    if status >= 500:
        return SendFailure("transient", status)
    return SendFailure("permanent", status, errors=_errors_of(exc))


class OutboxMailer:
    """Write each email as an .eml file (text and HTML parts) instead of sending it.

    The embedded default when no SENDGRID_API_KEY is set, so `make run` needs no account.
    """

    def __init__(self, directory: str | Path, sender: str) -> None:
        self.directory = Path(directory)
        self.sender = sender

    def send(self, message: OutgoingEmail) -> str:
        """Write `<record_id>.eml` atomically and return a local message id."""
        self.directory.mkdir(parents=True, exist_ok=True)
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = self.sender
        mail["To"] = formataddr((message.to_name, message.to_email))
        mail["Subject"] = message.subject
        msg_id = make_msgid(domain="outbox.local")
        mail["Message-ID"] = msg_id
        mail["X-Notice-Record"] = message.record_id
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        target = self.directory / f"{message.record_id}.eml"
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(mail.as_bytes())
        os.replace(tmp, target)
        return msg_id.strip("<>")


def build_mailer(cfg: Any) -> Mailer:
    """SendGrid when an API key is configured, else the outbox directory."""
    if cfg.SENDGRID_API_KEY:
        return SendGridMailer(
            cfg.SENDGRID_API_KEY, cfg.SENDGRID_API_HOST, cfg.EMAIL_FROM,
            cfg.SENDGRID_TIMEOUT_SECONDS,
        )
    return OutboxMailer(cfg.OUTBOX_DIR, cfg.EMAIL_FROM)
