"""The provider seam: hand one rendered email to SendGrid, or to the local outbox.

Both mailers take an `OutgoingEmail` and return the provider's message id, or raise
`SendFailure` saying whether a retry can help. Everything above this module is provider-free.

SendGrid notes (docs/sendgrid.md):
- the client has no default timeout, so we set one on the client tree;
- its HTTP logger at DEBUG prints the API key and the payload, so it is pinned to WARNING;
- errors cross process boundaries badly as subclasses, so we branch on `status_code`;
- 202 only means "queued"; delivery truth comes from the Event Webhook.
"""

from __future__ import annotations

import email.policy
import http.client
import json
import logging
import os
import random
import urllib.error
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any, Protocol

import requests
import urllib3
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Category, CustomArg, From, Mail, To

from ..clock import Clock
from ..config import Config


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


def _errors_of(body: bytes) -> list[Any]:
    try:
        doc = json.loads(body)
        return list(doc.get("errors", [])) if isinstance(doc, dict) else []
    except (ValueError, AttributeError):  # a non-JSON error body fails the send, no detail
        return []


def classify(status: int, headers: Any, body: bytes) -> SendFailure:
    """Turn a non-2xx SendGrid answer into a SendFailure saying whether to retry, and when."""
    if status == 429:
        try:
            reset: float | None = float(headers.get("X-RateLimit-Reset"))
        except (TypeError, ValueError, AttributeError):
            reset = None
        # Jitter spreads the retries of many workers hitting the same reset second. Without a
        # reset time the sender decides (it holds the clock).
        retry_at = reset + random.uniform(0, 1) if reset else None
        return SendFailure("throttled", status, retry_at=retry_at)
    if status >= 500:
        return SendFailure("transient", status)
    return SendFailure("permanent", status, errors=_errors_of(body))


class SendGridMailer:
    """Send through SendGrid, with a timeout and a normalised host.

    The payload is always built by the `sendgrid` library's `Mail` helper. Two transports:
    - `client` (the official `SendGridAPIClient`): urllib, a new TCP/TLS connection per mail;
    - `session` (default): the same payload posted through a kept-alive urllib3 pool (what
      `requests` is built on, without its per-call hooks, cookies and environment lookups),
      one connection reused across sends. docs/performance.md has the measurement.
    """

    def __init__(
        self,
        api_key: str,
        host: str,
        sender: str,
        timeout: float,
        transport: str = "session",
        sender_name: str = "",
    ) -> None:
        logging.getLogger("python_http_client").setLevel(logging.WARNING)
        self.host = host.rstrip("/")
        self.client = SendGridAPIClient(api_key=api_key, host=self.host)
        self.client.client.timeout = timeout
        self.sender = sender
        self.sender_name = sender_name
        self.timeout = timeout
        self.transport = transport
        self._url = f"{self.host}/v3/mail/send"
        # Proxy settings are resolved once here, not re-read from the environment per mail.
        proxy = requests.utils.get_environ_proxies(self._url).get(self._url.split(":")[0])
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, retries=False)
            if proxy
            else urllib3.PoolManager(retries=False)
        )
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": "ten99-receiver (sendgrid Mail helper)",
        }

    def payload(self, message: OutgoingEmail) -> dict[str, Any]:
        """The mail/send request body, from the library's `Mail` helper."""
        mail = Mail(
            from_email=From(self.sender, self.sender_name or None),
            to_emails=To(message.to_email, message.to_name or None),
            subject=message.subject,
            plain_text_content=message.text,
            html_content=message.html,
        )
        mail.category = Category(message.category)
        mail.custom_arg = CustomArg("notice_record", message.record_id)
        body: dict[str, Any] = mail.get()
        return body

    def send(self, message: OutgoingEmail) -> str:
        """Post one mail; return SendGrid's X-Message-Id or raise SendFailure."""
        payload = self.payload(message)
        if self.transport == "client":
            return self._send_client(payload)
        try:
            response = self._pool.request(
                "POST",
                self._url,
                body=json.dumps(payload).encode(),
                headers=self._headers,
                timeout=self.timeout,
            )
        except urllib3.exceptions.HTTPError:  # timeouts, refused, broken connections
            raise SendFailure("transient") from None
        if response.status >= 300:
            raise classify(response.status, response.headers, response.data)
        return str(response.headers.get("X-Message-Id") or "")

    def _send_client(self, payload: dict[str, Any]) -> str:
        try:
            response = self.client.client.mail.send.post(request_body=payload)
        except HTTPError as exc:
            raise classify(int(exc.status_code), exc.headers, exc.body) from None
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException):
            raise SendFailure("transient") from None
        return str(response.headers.get("X-Message-Id") or "")


class OutboxMailer:
    """Write each email as an .eml file (text and HTML parts) instead of sending it.

    The embedded default when no SENDGRID_API_KEY is set, so `make run` needs no account. Files
    are named `<UTC time>-<notice>-<record id>.eml`, so a person listing the folder sees what
    went out in order; each carries the `Date:` and `From:` (with the brand as display name)
    that a real mail would.
    """

    def __init__(
        self, directory: str | Path, sender: str, clock: Clock, sender_name: str = ""
    ) -> None:
        self.directory = Path(directory)
        self.sender = sender
        self.sender_name = sender_name
        self.clock = clock

    def forget(self, record_ids: list[str]) -> int:
        """Delete the files written for these records (an erasure); return how many."""
        deleted = 0
        for rid in record_ids:
            for path in self.directory.glob(f"*-{rid}.eml"):
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def send(self, message: OutgoingEmail) -> str:
        """Write the message atomically and return a local message id."""
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = formataddr((self.sender_name, self.sender))
        mail["To"] = formataddr((message.to_name, message.to_email))
        mail["Date"] = format_datetime(now)
        mail["Subject"] = message.subject
        msg_id = make_msgid(domain="outbox.local")
        mail["Message-ID"] = msg_id
        mail["X-Notice-Record"] = message.record_id
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        target = self.directory / f"{stamp}-{message.category}-{message.record_id}.eml"
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(mail.as_bytes())
        os.replace(tmp, target)
        return msg_id.strip("<>")


def build_mailer(cfg: Config, clock: Clock) -> Mailer:
    """SendGrid when an API key is configured, else the outbox directory."""
    if cfg.SENDGRID_API_KEY:
        return SendGridMailer(
            cfg.SENDGRID_API_KEY,
            cfg.SENDGRID_API_HOST,
            cfg.EMAIL_FROM,
            cfg.SENDGRID_TIMEOUT_SECONDS,
            cfg.SENDGRID_TRANSPORT,
            sender_name=cfg.BRAND_NAME,
        )
    return OutboxMailer(cfg.OUTBOX_DIR, cfg.EMAIL_FROM, clock, sender_name=cfg.BRAND_NAME)
