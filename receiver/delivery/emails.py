"""Render the payment notices to a subject, an HTML part and a plain-text part.

Each notice is a pair ``templates/emails/<notice>.html`` / ``<notice>.txt`` extending one layout
(``layout.html`` / ``layout.txt``); ``bill_changed.*`` is a part both rep change notices
include. The subject is the ``{% block subject %}`` of the ``.txt`` template: rendered without
autoescape, then forced onto one line so that no value can inject a mail header. The HTML part
gets the subject as ``subject`` (its ``<title>``), then its CSS inlined with the ``<style>``
block kept, so the responsive and dark-mode ``@media`` rules survive.

A missing variable is an error at render time (``StrictUndefined``), never a blank in an email
(records stored by the previous release get the fields added since from delivery/sending.py's
``PREVIOUS_RELEASE_DEFAULTS``).
Every template also sees ``brand_name`` and ``support_email``, the filters ``money`` (integer
cents, never negative), the test ``is amount`` (a known, positive amount: an optional amount is
shown only when it holds, never as $0.00), ``datetime_words`` / ``date_words`` (Unix seconds,
recipient zone; a time always names its zone), ``payment_method_words`` ("card" / "remit" in
words; any other value is an error), ``job_strong`` (the same in HTML, bold only when it is the
job's name) and ``job_words`` (the job as people call it: its name, "for <entity>" when known,
else the fallback given, "your job" unless said; never its id), and the function ``reference``,
which builds the one small line where raw ids appear ("invoice in_… · job jb_…").

Context contract (keys are required unless marked "or None"; money is integer cents, times are
integer Unix seconds):

Every notice:
    recipient     {"name": str or None, "email": str, "timezone": str or None}
                  who receives it; the name is the first name only and greets ("Hi Maya,";
                  "Hello," when None, e.g. a rep known only by address); the zone is an IANA
                  name, None or unknown means US Eastern, and every time shown is in it.
    contractor    {"id": str, "first_name": str, "last_name": str}
                  the insured contractor (for rep notices: who the notice is about).
    job           {"id": str, "name": str or None, "entity": str or None (optional)}
                  the id is shown only in the reference line; entity is whom the work is for
    coverage_url  str or None: a signed, login-free http(s) link to the contractor's coverage.

assignment_charge_reminder  (contractor, card payer)
    assignment_id, amount_cents, charge_at
payment_reminder  (contractor, card payer)
    invoice_id, amount_cents, charge_at, payment_method ("card" | "remit"),
    previous_amount_cents (int or None: an updated reminder of a bill re-priced before its
    charge says "your charge on <date> is now <amount_cents>, was <previous_amount_cents>")
payment_confirmation  (contractor)
    invoice_id (the reference number), amount_cents, paid_at, payment_method ("card" | "remit")
premium_increase_contractor, premium_decrease_contractor  (contractor, card payer; sent only
for a bill re-priced after it was charged)
    invoice_id, old_premium_cents, new_premium_cents,
    difference_cents (always positive: the additional charge, or the refund being processed),
    payment_method ("card" | "remit"),
    charge_at (increase only: when the additional amount is charged)
premium_increase_rep, premium_decrease_rep  (rep)
    the same amounts and payment_method, plus
    charged (bool: True, re-priced after the charge or payment: an additional charge, a
    refund or a credit; False, before it: a changed bill, "now <new>, was <old>"),
    charge_at (int or None: the card charge, or the additional charge of an increase after
    it; for a remitted bill not yet paid, its due date; unused by a decrease after the charge)
assignment_charge_failure  (contractor)
    invoice_id, amount_cents (int or None; None, or 0 from records of 0.1.x: unknown, no amount
    is stated), failed_at, failure_reason (str or None)
remit_bill_reminder_rep  (rep, remitted bill)
    invoice_id, amount_cents, due_at, previous_amount_cents (int or None, as for
    payment_reminder: the bill was re-priced before it was paid)
coverage_missing_rep  (rep; an assignment starting within COVERAGE_ALERT_HOURS that
1099Policy has not reported active)
    assignment_id, starts_at (the assignment's effective_date: "Maya Thompson starts Deck
    repair on <starts_at> and is not covered yet")
charge_unrecovered_rep  (rep; a failed card charge still unpaid CHARGE_RECOVERY_HOURS later)
    invoice_id, amount_cents (as for assignment_charge_failure), failed_at (the first
    failed attempt), failure_reason (str or None): "<first last>'s coverage on <job> will
    lapse: the premium of <amount> is still unpaid"
creatoriq_sync_blocked_rep, creatoriq_sync_missing_rep  (rep; creatoriq/sync.py). The
contractor is the CreatorIQ creator (id "": not in 1099Policy yet, so no coverage link), the
job is the campaign (id "", name the campaign's or None); plus
    creator_id, campaign_id (the reference line), creator_email ("" when none),
    campaign_start (int or None)
    blocked: problems (list of {"code", "field", "message"}: each a fix in plain words)
    missing: accepted_at, wait_hours (CREATORIQ_SYNC_WAIT_HOURS): the checklist of the
    CreatorIQ setup guide and whom to write to (support@1099policy.com, copying the
    CreatorIQ rep)
address_suppressed_rep  (rep; delivery/address_alerts.py)
    address (the contractor's undeliverable email), reason ("bounced" | "dropped" |
    "spamreport"), suppressed_at; job.id may be "" and coverage_url is None

``receiver.delivery.samples.SAMPLE_CONTEXTS`` holds one complete example of each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined, select_autoescape
from markupsafe import Markup

from ..resources import templates

# templates/emails/ at the top of the repository, shipped as the package receiver.templates.emails.
EMAIL_TEMPLATES = templates("emails")

NOTICES: tuple[str, ...] = (
    "assignment_charge_reminder",
    "payment_reminder",
    "payment_confirmation",
    "premium_increase_contractor",
    "premium_increase_rep",
    "premium_decrease_contractor",
    "premium_decrease_rep",
    "assignment_charge_failure",
    "remit_bill_reminder_rep",
    "coverage_missing_rep",
    "charge_unrecovered_rep",
    "creatoriq_sync_blocked_rep",
    "creatoriq_sync_missing_rep",
    "address_suppressed_rep",
)

DEFAULT_TIMEZONE = "America/New_York"

# English names, not strftime's %A/%B, so output never depends on the process locale.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_PAYMENT_METHODS = {"card": "Card on file", "remit": "Billed to your organization"}
# Whitespace and other control characters: none of them may reach a Subject header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class UnknownNotice(ValueError):
    """Raised for a notice id that has no templates; the id is kept as ``notice``."""

    def __init__(self, notice: str) -> None:
        super().__init__(f"unknown notice {notice!r}; expected one of {', '.join(NOTICES)}")
        self.notice = notice


@dataclass(frozen=True)
class RenderedEmail:
    """One notice, ready to hand to the mailer (and to freeze, so retries resend the same)."""

    subject: str
    html: str
    text: str


def _integer(value: Any, what: str) -> int:
    """Return value if it is an int: money and timestamps are integers, anything else is a bug."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # the same UndefinedError as any other missing var
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}: {value!r}")
    return value


def money(cents: Any) -> str:
    """Format integer cents as US dollars: 4325 -> "$43.25". A negative amount is impossible
    (differences are stated as positive amounts with words saying which way): it is an error,
    so the notice fails where an operator sees it instead of telling someone "-$5.00"."""
    cents = _integer(cents, "amount in cents")
    if cents < 0:
        raise ValueError("an amount in cents must not be negative")
    dollars, rest = divmod(cents, 100)
    return f"${dollars:,}.{rest:02d}"


def is_amount(value: Any) -> bool:
    """The template test `is amount`: a known amount owed or charged (positive integer cents).
    Notices whose amount may be unknown (a failed charge) state it only when this holds."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _zone(name: Any) -> ZoneInfo:
    """The recipient's zone, or US Eastern when they have none or an unknown one."""
    if isinstance(name, Undefined):
        name._fail_with_undefined_error()
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a bad zone on a profile must not stop a payment notice
    return ZoneInfo(DEFAULT_TIMEZONE)


def _local(timestamp: Any, zone: Any) -> datetime:
    return datetime.fromtimestamp(_integer(timestamp, "timestamp"), _zone(zone))


def date_words(timestamp: Any, zone: str | None = None) -> str:
    """Unix seconds as a date in words in the given zone: "Tuesday, March 5, 2024"."""
    at = _local(timestamp, zone)
    return f"{_DAYS[at.weekday()]}, {_MONTHS[at.month - 1]} {at.day}, {at.year}"


def datetime_words(timestamp: Any, zone: str | None = None) -> str:
    """Unix seconds in words with the zone named: "Tuesday, March 5, 2024 at 2:30 PM EST"."""
    at = _local(timestamp, zone)
    abbreviation = at.tzname() or ""
    if not abbreviation.isalpha():  # zones without a letter abbreviation report "-03" and such
        offset = at.strftime("%z")
        abbreviation = f"UTC{offset[:3]}:{offset[3:]}"
    clock = f"{(at.hour % 12) or 12}:{at.minute:02d} {'AM' if at.hour < 12 else 'PM'}"
    return f"{date_words(timestamp, zone)} at {clock} {abbreviation}"


def payment_method_words(method: Any) -> str:
    """Name a payment method ("card" or "remit") for people; any other value is a bug."""
    try:
        return _PAYMENT_METHODS[method]
    except (KeyError, TypeError):
        if isinstance(method, Undefined):
            method._fail_with_undefined_error()
        raise ValueError(f"payment_method must be 'card' or 'remit', got {method!r}") from None


def job_words(job: Any, fallback: str = "your job") -> str:
    """The job as people call it: "Deck repair for Smith & Sons", "Deck repair", or the
    fallback when it has no name; never its id (that belongs in the reference line)."""
    if isinstance(job, Undefined):
        job._fail_with_undefined_error()
    name = job.get("name") if isinstance(job, Mapping) else None
    entity = job.get("entity") if isinstance(job, Mapping) else None
    words = name if isinstance(name, str) and name.strip() else fallback
    if isinstance(entity, str) and entity.strip():
        words = f"{words} for {entity}"
    return words


def job_strong(job: Any, fallback: str = "your job") -> Markup:
    """`job_words` for HTML, in bold only when it is the job's name: a fallback ("your job",
    "the job") is words about a job, not its name, and reads as plain text."""
    words = job_words(job, fallback)
    named = isinstance(job, Mapping) and isinstance(job.get("name"), str) and job["name"].strip()
    return Markup("<strong>%s</strong>") % words if named else Markup("%s") % words


_REFERENCE_LABELS = ("invoice", "assignment", "job", "contractor", "creator", "campaign")


def reference(**ids: Any) -> str:
    """The reference line's ids, labelled, in a fixed order: "invoice in_1 · job jb_1".

    Every id passed must be defined (a missing one is the usual UndefinedError); empty ones
    (a job not known) are left out."""
    parts = []
    for label in _REFERENCE_LABELS:
        if label not in ids:
            continue
        value = ids[label]
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        if value:
            parts.append(f"{label} {value}")
    unknown = set(ids) - set(_REFERENCE_LABELS)
    if unknown:
        raise TypeError(f"reference() got unknown ids {sorted(unknown)}")
    return " · ".join(parts)


def one_line(value: str) -> str:
    """Collapse every run of whitespace or control characters to one space, then strip."""
    return " ".join(_CONTROL.sub(" ", value).split())


class EmailRenderer:
    """Renders notices from one templates directory; templates compile once and are cached."""

    def __init__(self, templates_dir: Path, *, brand_name: str, support_email: str) -> None:
        self._env = Environment(
            loader=FileSystemLoader(templates_dir),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # templates are deployed with the code, never edited live
        )
        self._env.filters.update(
            money=money,
            date_words=date_words,
            datetime_words=datetime_words,
            payment_method_words=payment_method_words,
            job_words=job_words,
            job_strong=job_strong,
        )
        self._env.tests["amount"] = is_amount
        self._env.globals.update(
            brand_name=brand_name, support_email=support_email, reference=reference
        )
        # keep_style_tags: the default drops <style>, and with it the @media rules.
        self._inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)

    def render(self, notice: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render one notice; raises UnknownNotice, jinja2.UndefinedError, TypeError, ValueError."""
        if notice not in NOTICES:
            raise UnknownNotice(notice)
        _check_link(context.get("coverage_url"))
        text_template = self._env.get_template(f"{notice}.txt")
        html_template = self._env.get_template(f"{notice}.html")
        subject_block = text_template.blocks["subject"]
        subject = one_line("".join(subject_block(text_template.new_context(dict(context)))))
        if not subject:
            raise ValueError(f"notice {notice!r} rendered an empty subject")
        text = text_template.render(context)
        html = self._inliner.inline(html_template.render(context, subject=subject))
        return RenderedEmail(subject=subject, html=html, text=text)


def _check_link(url: Any) -> None:
    """Refuse a link that is not plain http(s): autoescape cannot stop a javascript: URL."""
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise ValueError(f"coverage_url must be an http(s) URL or None, got {url!r}")
