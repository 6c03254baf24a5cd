"""Emails a person is glad to get, checked on what real sends put in front of them.

Signed events in, the SendGrid stand-in's accepted mails out: the greeting is by first name,
the job is named (ids only in the small reference line), no subject calls the platform an
insurer, and every time shown says its zone, the recipient's own once it is known.
"""

from __future__ import annotations

import copy
import html as html_lib
import re
from pathlib import Path
from typing import Any

import pytest

from receiver.config import Config
from receiver.delivery.emails import NOTICES, EmailRenderer
from receiver.delivery.samples import SAMPLE_CONTEXTS
from receiver.pipeline.tasks import send_notice
from tests.events import JOB, MAYA, assignment_created, charge_succeeded, invoice, platform_event
from tests.records import at, records

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "emails"
DEFAULT_BRAND = Config.__dataclass_fields__["BRAND_NAME"].default
# A clock time ("2:30 PM") not followed by the zone's name ("CST", "UTC+03:00").
BARE_TIME = re.compile(r"\b\d{1,2}:\d{2} [AP]M\b(?! (?:[A-Z]{2,5}|UTC[+-]\d\d:\d\d)\b)")
REFERENCE_SPAN = re.compile(r'<span class="reference"[^>]*>(.*?)</span>', re.S)


def read(html: str) -> str:
    """HTML as a reader takes it in: tags dropped, entities decoded, whitespace joined."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


class Mail:
    """One accepted mail as its recipient sees it."""

    def __init__(self, accepted: dict[str, Any]) -> None:
        body = accepted["body"]
        self.notice = body["categories"][0]
        self.to = body["personalizations"][0]["to"][0]["email"]
        self.subject = body["subject"]
        parts = {part["type"]: part["value"] for part in body["content"]}
        self.text = parts["text/plain"]
        self.html = parts["text/html"]

    def greeting(self) -> str:
        [line] = [ln for ln in self.text.splitlines() if ln.startswith(("Hi ", "Hello"))]
        return line

    def reference_lines(self) -> tuple[list[str], list[str]]:
        text = [ln for ln in self.text.splitlines() if ln.startswith("Reference:")]
        html = [read(span) for span in REFERENCE_SPAN.findall(self.html)]
        return text, html

    def outside_reference(self) -> tuple[str, str]:
        """The text and HTML parts with the reference line taken out."""
        text = "\n".join(ln for ln in self.text.splitlines() if not ln.startswith("Reference:"))
        return text, REFERENCE_SPAN.sub("", self.html)


def mails(sendgrid: Any) -> list[Mail]:
    return [Mail(m) for m in sendgrid.accepted]


def assert_reads_well(mail: Mail, greeting: str, job_words: str) -> None:
    """What every email must get right, whoever it is for."""
    assert mail.greeting() == greeting
    assert greeting in read(mail.html)
    assert "Thompson," not in mail.text and "Hi Maya Thompson" not in read(mail.html)
    text, html = mail.outside_reference()
    assert job_words in text and job_words in read(html)
    for part in (text, html, mail.subject):
        assert "jb_" not in part, f"a raw job id outside the reference line of {mail.notice}"
    [text_ref], [html_ref] = mail.reference_lines()
    assert "job jb_1" in text_ref and "job jb_1" in html_ref
    assert f"{DEFAULT_BRAND.lower()} insurance" not in mail.subject.lower()
    assert DEFAULT_BRAND not in mail.subject
    for part in (mail.text, read(mail.html), mail.subject):
        assert BARE_TIME.findall(part) == [], f"a time without its zone in {mail.notice}"


def test_contractor_emails_greet_by_first_name_and_name_the_job(send, rt, drain, sendgrid):
    # The platform's assignment embeds the job (its name is remembered); 1099Policy's charge
    # names the job by id only.
    send.platform(assignment_created(1200), "msg_a1")
    send.ten99(charge_succeeded("in_1"))
    drain()
    sent = {m.notice: m for m in mails(sendgrid)}
    assert set(sent) == {"assignment_charge_reminder", "payment_confirmation"}
    for mail in sent.values():
        assert mail.to == "maya@example.com"
        assert_reads_well(mail, "Hi Maya,", "Deck repair")
    confirmation = sent["payment_confirmation"]
    assert confirmation.subject == "Payment received: $43.25 for your insurance on Deck repair"
    assert confirmation.reference_lines() == (
        ["Reference: invoice in_1 · job jb_1"],
        ["Reference: invoice in_1 · job jb_1"],
    )
    reminder = sent["assignment_charge_reminder"]
    assert reminder.subject == "Upcoming charge: $12.00 for your insurance on Deck repair"
    assert "assignment an_1 · job jb_1" in reminder.reference_lines()[0][0]


def test_a_rep_is_greeted_and_told_the_job_and_whom_it_is_for(
    config, send, rt, drain, sendgrid, redis
):
    config["NOTICE_COALESCE_SECONDS"] = "0"
    job = {**JOB, "entity": {"id": "en_1", "name": "Smith & Sons Builders"}}
    send.platform(invoice("invoice.created", 5000, 1_700_000_000, withhold=True, job=job), "m1")
    send.platform(invoice("invoice.updated", 6000, 1_700_000_005, withhold=True, job=job), "m2")
    drain()
    [mail] = mails(sendgrid)
    assert (mail.notice, mail.to) == ("premium_increase_rep", "rep@agency.example")
    assert_reads_well(mail, "Hello,", "Deck repair for Smith & Sons Builders")
    assert mail.subject == (
        "Bill changed for Maya Thompson on Deck repair for Smith & Sons Builders: "
        "now $60.00, was $50.00"
    )
    [text_ref], _ = mail.reference_lines()
    assert text_ref == "Reference: invoice in_1 · job jb_1 · contractor cn_1"
    # Times for a rep, whose zone nobody told us, are US Eastern and say so.
    assert re.search(r"\d:\d\d [AP]M E[SD]T", mail.text)


def test_a_job_nobody_named_is_your_job_never_its_id(send, rt, drain, sendgrid):
    send.ten99(charge_succeeded("in_9", job="jb_unnamed"))
    drain()
    [mail] = mails(sendgrid)
    assert mail.greeting() == "Hi Maya,"
    text, html = mail.outside_reference()
    assert "for your insurance on your job" in " ".join(text.split())
    assert "for your insurance on your job" in read(html)
    assert "jb_" not in text + html + mail.subject
    assert mail.subject == "Payment received: $43.25 for your insurance"
    assert mail.reference_lines()[0] == ["Reference: invoice in_9 · job jb_unnamed"]


def test_a_zone_learned_after_a_reminder_was_planned_is_the_one_it_shows(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = now = at(2026, 3, 2, 12)
    maya = {k: v for k, v in MAYA.items() if k != "timezone"}  # a zone nobody has told us yet
    bill = invoice("invoice.created", 4325, int(now), contractor=maya)
    bill["data"]["charge_at"] = int(now + 3 * 86400)
    send.platform(bill, "msg_i1")
    drain()
    [rec] = records(redis, "payment_reminder")
    assert rec["timezone"] == ""  # planned in US Eastern
    send.platform(platform_event("contractor.updated", {**maya, "timezone": "Asia/Tokyo"}), "c1")
    drain()
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "accepted"
    # A later email about something else, from an event that carries no zone, uses it too.
    send.ten99(charge_succeeded("in_1", contractor=maya))
    drain()
    sent = {m.notice: m for m in mails(sendgrid)}
    assert set(sent) == {"payment_reminder", "payment_confirmation"}
    for mail in sent.values():
        shown = re.findall(r"\d{1,2}:\d\d [AP]M ([A-Z]+)", mail.text)
        assert shown and set(shown) == {"JST"}, (mail.notice, shown)
        assert "EST" not in mail.text and "EST" not in mail.html
        assert_reads_well(mail, "Hi Maya,", "Deck repair")


def _variants(notice: str) -> list[dict[str, Any]]:
    """The sample, and its other wordings (charged or not, card or remit, updated or not)."""
    base = copy.deepcopy(SAMPLE_CONTEXTS[notice])
    out = [base]
    if "charged" in base:
        out.append({**base, "charged": False, "charge_at": 1709753400})
    if "payment_method" in base:
        out += [{**ctx, "payment_method": "remit"} for ctx in list(out)]
    if "previous_amount_cents" in base:
        out.append({**base, "previous_amount_cents": 100})
    unnamed = copy.deepcopy(base)
    unnamed["job"] = {"id": "jb_x", "name": None}
    out.append(unnamed)
    return out


@pytest.mark.parametrize("brand", [DEFAULT_BRAND, "Acme Staffing"])
@pytest.mark.parametrize("notice", NOTICES)
def test_no_subject_makes_the_brand_an_insurer_and_every_time_names_its_zone(
    notice: str, brand: str
) -> None:
    renderer = EmailRenderer(TEMPLATES, brand_name=brand, support_email="help@example.com")
    for context in _variants(notice):
        email = renderer.render(notice, context)
        assert brand not in email.subject
        assert f"{brand} insurance".lower() not in email.subject.lower()
        for part in (email.subject, email.text, read(email.html)):
            assert BARE_TIME.findall(part) == []
        text_refs = [ln for ln in email.text.splitlines() if ln.startswith("Reference:")]
        assert len(text_refs) == 1
        outside = [ln for ln in email.text.splitlines() if not ln.startswith("Reference:")]
        assert not any("jb_" in ln for ln in outside)
        assert "jb_" not in REFERENCE_SPAN.sub("", email.html)
