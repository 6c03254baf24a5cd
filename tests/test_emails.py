"""Every notice renders from its sample data, safely, with the numbers and names that matter."""

from __future__ import annotations

import copy
import html as html_lib
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest

from receiver.delivery.emails import (
    NOTICES,
    EmailRenderer,
    RenderedEmail,
    UnknownNotice,
    date_words,
    datetime_words,
    money,
)
from receiver.delivery.samples import SAMPLE_CONTEXTS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "emails"
BRAND = "Acme Staffing"
SUPPORT = "support@acme.example"
MARCH_5_2024_1930_UTC = 1709667000
JULY_1_2024_1900_UTC = 1719860400


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(TEMPLATES, brand_name=BRAND, support_email=SUPPORT)


def sample(notice: str) -> dict[str, Any]:
    return copy.deepcopy(SAMPLE_CONTEXTS[notice])


def headline_amount(context: dict[str, Any]) -> int:
    """The amount a subject must state: the change for re-pricing notices, else the charge."""
    return int(context["difference_cents" if "difference_cents" in context else "amount_cents"])


def test_every_notice_has_templates_and_a_sample() -> None:
    the_eight = {  # docs/notifications.md; later issues add more
        "assignment_charge_reminder",
        "payment_reminder",
        "payment_confirmation",
        "premium_increase_contractor",
        "premium_increase_rep",
        "premium_decrease_contractor",
        "premium_decrease_rep",
        "assignment_charge_failure",
    }
    assert the_eight <= set(NOTICES)
    assert set(SAMPLE_CONTEXTS) == set(NOTICES)
    for notice in NOTICES:
        assert (TEMPLATES / f"{notice}.html").is_file()
        assert (TEMPLATES / f"{notice}.txt").is_file()


@pytest.mark.parametrize("notice", NOTICES)
def test_renders_what_matters_in_both_parts(renderer: EmailRenderer, notice: str) -> None:
    context = sample(notice)
    email = renderer.render(notice, context)
    assert isinstance(email, RenderedEmail)

    # Compare against the HTML as a reader sees it ("&amp;" -> "&").
    parts = {"html": html_lib.unescape(email.html), "text": email.text}
    contractor = context["contractor"]
    expected = [
        BRAND,
        SUPPORT,
        f"{contractor['first_name']} {contractor['last_name']}",
        context["job"]["name"],
    ]
    if "address" in context:  # the undeliverable-address alert: about an address, not money
        expected.append(context["address"])
    elif "starts_at" in context:  # the coverage-gap alert: about a start, not money
        expected += [context["assignment_id"], datetime_words(context["starts_at"])]
    elif "creator_id" in context:  # CreatorIQ sync alerts: a creator's profile, not money
        expected += [context["creator_id"], context["campaign_id"], context["creator_email"]]
        expected += [p["message"] for p in context.get("problems", [])]
        if "accepted_at" in context:
            expected += [datetime_words(context["accepted_at"]), "support@1099policy.com"]
    else:
        expected += [
            context.get("invoice_id") or context["assignment_id"],
            money(headline_amount(context)),
        ]
    for key in ("amount_cents", "old_premium_cents", "new_premium_cents"):
        if key in context:
            expected.append(money(context[key]))
    if context["coverage_url"]:
        expected.append(context["coverage_url"])
    for name, body in parts.items():
        for value in expected:
            assert value in body, f"{value!r} missing from the {name} part of {notice}"

    if "address" in context or "creator_id" in context:
        assert f"{contractor['first_name']} {contractor['last_name']}" in email.subject
        # personal data stays in the body
        assert (context.get("address") or context["creator_email"]) not in email.subject
    elif "starts_at" in context:
        assert email.subject == (
            f"{contractor['first_name']} {contractor['last_name']} starts"
            f" {context['job']['name']} for {context['job']['entity']}"
            f" on {datetime_words(context['starts_at'])} and is not covered yet"
        )
    else:
        assert money(headline_amount(context)) in email.subject
    assert email.subject == email.subject.strip()
    assert "\n" not in email.subject and "\r" not in email.subject
    assert f"<title>{html_lib.escape(email.subject, quote=False)}</title>" in email.html


@pytest.mark.parametrize("notice", NOTICES)
def test_css_is_inlined_and_media_rules_survive(renderer: EmailRenderer, notice: str) -> None:
    email = renderer.render(notice, sample(notice))
    assert "<style>" in email.html
    assert "@media (max-width: 600px)" in email.html
    assert "@media (prefers-color-scheme: dark)" in email.html
    assert email.html.count('style="') > 10


@pytest.mark.parametrize("notice", NOTICES)
def test_names_are_escaped_in_html(renderer: EmailRenderer, notice: str) -> None:
    context = sample(notice)
    context["contractor"]["first_name"] = "<script>alert(1)</script>"
    context["recipient"]["name"] = "<script>alert(1)</script>"
    context["job"]["name"] = '<img src=x onerror="alert(1)">'
    email = renderer.render(notice, context)
    assert "&lt;script&gt;" in email.html
    assert "<script" not in email.html
    assert "<img" not in email.html
    assert "<script>alert(1)</script>" in email.text  # plain text is not HTML


@pytest.mark.parametrize(
    ("notice", "key"), [(notice, key) for notice in NOTICES for key in SAMPLE_CONTEXTS[notice]]
)
def test_every_context_key_is_required(renderer: EmailRenderer, notice: str, key: str) -> None:
    context = sample(notice)
    del context[key]
    with pytest.raises(jinja2.UndefinedError):
        renderer.render(notice, context)


def test_missing_nested_key_is_an_error(renderer: EmailRenderer) -> None:
    context = sample("payment_confirmation")
    del context["recipient"]["timezone"]
    with pytest.raises(jinja2.UndefinedError):
        renderer.render("payment_confirmation", context)


@pytest.mark.parametrize("notice", NOTICES)
def test_subject_cannot_carry_a_header(renderer: EmailRenderer, notice: str) -> None:
    context = sample(notice)
    context["contractor"]["last_name"] = "Thompson\r\nBcc: victim@example.com"
    context["recipient"]["name"] = "Maya\nBcc: victim@example.com"
    context["job"]["name"] = "Deck\u2028repair\x85\rBcc: victim@example.com"
    subject = renderer.render(notice, context).subject
    assert subject.splitlines() == [subject]
    assert not any(ord(char) < 32 for char in subject)


def test_rep_subject_names_contractor_and_job(renderer: EmailRenderer) -> None:
    context = sample("premium_increase_rep")
    context["contractor"]["last_name"] = "Thompson\r\nBcc: victim@example.com"
    subject = renderer.render("premium_increase_rep", context).subject
    assert subject == (
        "Premium up by $12.00 for Maya Thompson Bcc: victim@example.com on "
        "Deck repair for Smith & Sons Builders"
    )


def test_payment_method_shapes_the_message(renderer: EmailRenderer) -> None:
    card = sample("premium_decrease_rep")
    remit = {**sample("premium_decrease_rep"), "payment_method": "remit"}
    assert "refund of $8.00 is being processed to Maya's card" in read(
        renderer.render("premium_decrease_rep", card).text
    )
    remitted = renderer.render("premium_decrease_rep", remit).text
    assert "Billed to your organization" in remitted
    assert "$8.00 will be credited to your organization" in read(remitted)
    with pytest.raises(ValueError, match="payment_method"):
        renderer.render("premium_decrease_rep", {**card, "payment_method": "cash"})


def read(part: str) -> str:
    """A part as a reader takes it in: tags dropped, entities decoded, lines joined."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", part)).split())


def both_parts(email: RenderedEmail) -> list[str]:
    return [read(email.text), read(email.html)]


def test_after_the_charge_an_increase_is_an_additional_charge_on_a_date(
    renderer: EmailRenderer,
) -> None:
    email = renderer.render("premium_increase_contractor", sample("premium_increase_contractor"))
    assert "additional $12.00 to be charged on Wednesday, March 6, 2024" in email.subject
    for part in both_parts(email):
        assert "An additional $12.00 will be charged to your card on file on Wednesday" in part
        assert "refund" not in part
    rep = renderer.render("premium_increase_rep", sample("premium_increase_rep"))
    for part in both_parts(rep):
        assert "The additional $12.00 will be charged to Maya's card on file on Wednesday" in part


def test_after_the_charge_a_decrease_is_a_refund_being_processed(renderer: EmailRenderer) -> None:
    email = renderer.render("premium_decrease_contractor", sample("premium_decrease_contractor"))
    assert "a refund of $8.00 is being processed" in email.subject
    for part in both_parts(email):
        assert "A refund of $8.00 is being processed to your card on file" in part
        assert "will be charged" not in part


@pytest.mark.parametrize("notice", ["premium_increase_rep", "premium_decrease_rep"])
@pytest.mark.parametrize("payment_method", ["card", "remit"])
def test_before_the_charge_reps_are_told_of_a_changed_bill(
    renderer: EmailRenderer, notice: str, payment_method: str
) -> None:
    context = {
        **sample(notice),
        "charged": False,
        "payment_method": payment_method,
        "charge_at": 1709753400,
    }
    email = renderer.render(notice, context)
    new, old = money(context["new_premium_cents"]), money(context["old_premium_cents"])
    assert email.subject == (
        "Bill changed for Maya Thompson on Deck repair for Smith & Sons Builders: "
        f"now {new}, was {old}"
    )
    for part in both_parts(email):
        assert f"it is now {new}, was {old}" in part
        for money_word in ("refund", "additional", "credited"):
            assert money_word not in part.lower()
        if payment_method == "card":
            assert (
                f"Nothing has been charged yet. Maya's card on file will be charged {new}" in part
            )
        else:
            assert f"please pay {new} for this bill by Wednesday" in part


def test_an_updated_payment_reminder_says_the_amount_changed(renderer: EmailRenderer) -> None:
    context = {**sample("payment_reminder"), "previous_amount_cents": 100000}
    email = renderer.render("payment_reminder", context)
    assert email.subject == (
        "Updated payment reminder: your charge on Wednesday, March 6, 2024 is now $1,234.50, "
        "was $1,000.00"
    )
    for part in both_parts(email):
        assert "your charge on Wednesday, March 6, 2024 at 1:30 PM CST is now $1,234.50" in part
        assert "was $1,000.00" in part
    plain = renderer.render("payment_reminder", sample("payment_reminder"))
    assert plain.subject == "Payment reminder: $1,234.50 due on Wednesday, March 6, 2024"
    assert "was" not in read(plain.text).replace("was sent", "")


def test_an_updated_remit_bill_reminder_says_the_amount_changed(renderer: EmailRenderer) -> None:
    context = {**sample("remit_bill_reminder_rep"), "previous_amount_cents": 5000}
    email = renderer.render("remit_bill_reminder_rep", context)
    assert "now $55.25, was $50.00 for Maya Thompson" in email.subject
    for part in both_parts(email):
        assert "it is now $55.25, was $50.00" in part


def test_optional_values_may_be_none(renderer: EmailRenderer) -> None:
    context = sample("assignment_charge_failure")
    context.update(coverage_url=None, failure_reason=None)
    context["job"]["name"] = None
    context["recipient"].update(name=None, timezone=None)
    email = renderer.render("assignment_charge_failure", context)
    for body in (email.html, email.text):
        assert "Hello," in body
        assert context["job"]["id"] in body
        assert "EST" in body
        assert "/coverage/" not in body
    assert "lapse" in email.text and "lapse" in email.html


def test_coverage_url_must_be_http(renderer: EmailRenderer) -> None:
    context = {**sample("payment_confirmation"), "coverage_url": "javascript:alert(1)"}
    with pytest.raises(ValueError, match="coverage_url"):
        renderer.render("payment_confirmation", context)


@pytest.mark.parametrize("notice", ["nope", "layout", "../layout", ""])
def test_unknown_notice(renderer: EmailRenderer, notice: str) -> None:
    with pytest.raises(UnknownNotice) as raised:
        renderer.render(notice, sample("payment_confirmation"))
    assert isinstance(raised.value, ValueError)
    assert raised.value.notice == notice


@pytest.mark.parametrize(
    ("cents", "dollars"),
    [(0, "$0.00"), (5, "$0.05"), (4325, "$43.25"), (123450, "$1,234.50")],
)
def test_money(cents: int, dollars: str) -> None:
    assert money(cents) == dollars


def test_money_refuses_an_impossible_negative_amount() -> None:
    with pytest.raises(ValueError, match="negative"):
        money(-500)


MONEY_FIELDS = ("amount_cents", "old_premium_cents", "new_premium_cents", "difference_cents")
MONEY_NOTICES = [n for n in NOTICES if any(k in SAMPLE_CONTEXTS[n] for k in MONEY_FIELDS)]
# A failed charge may not say how much: its notices are sent, the amount left out.
OPTIONAL_AMOUNT = {"assignment_charge_failure", "charge_unrecovered_rep"}


def test_the_notices_that_show_money_are_the_ones_expected() -> None:
    # Every notice shows money but those about an address, a start and a creator's profile.
    about_no_money = {
        "address_suppressed_rep",
        "coverage_missing_rep",
        "creatoriq_sync_blocked_rep",
        "creatoriq_sync_missing_rep",
    }
    assert set(MONEY_NOTICES) == set(NOTICES) - about_no_money


@pytest.mark.parametrize("notice", MONEY_NOTICES)
@pytest.mark.parametrize("amount", [None, -500, 0], ids=["unknown", "negative", "zero"])
def test_no_made_up_amount_in_any_notice_that_shows_money(
    renderer: EmailRenderer, notice: str, amount: int | None
) -> None:
    # Every amount of the notice replaced by one that is unknown or impossible: the email
    # either leaves it out (a failed charge: the notice still matters) or is not rendered at
    # all (the amount is the notice; the send fails where an operator sees it). Never
    # "$0.00" for an unknown amount, never "-$5.00".
    context = sample(notice)
    for key in MONEY_FIELDS:
        if key in context:
            context[key] = amount
    if notice in OPTIONAL_AMOUNT:
        email = renderer.render(notice, context)
        for part in (email.subject, email.text, html_lib.unescape(email.html)):
            assert "$" not in part, part
        assert "payment" in email.subject or "premium" in email.subject
        return
    if amount == 0:
        return  # a bill re-priced to $0.00 is a real amount; the rules decide if it is told
    with pytest.raises((TypeError, ValueError)):
        renderer.render(notice, context)


def test_a_failed_charge_of_unknown_amount_is_worded_without_one(renderer: EmailRenderer) -> None:
    context = {**sample("assignment_charge_failure"), "amount_cents": None}
    email = renderer.render("assignment_charge_failure", context)
    assert email.subject == "Action needed: your insurance payment failed"
    assert "We tried to charge your card on file" in email.text
    assert "Amount due" not in email.text and "Amount due" not in email.html


@pytest.mark.parametrize("value", [43.25, "4325", True, None])
def test_money_refuses_non_integers(value: Any) -> None:
    with pytest.raises(TypeError):
        money(value)


def test_dates_in_the_recipient_zone() -> None:
    moment = MARCH_5_2024_1930_UTC
    assert datetime_words(moment, "America/New_York") == "Tuesday, March 5, 2024 at 2:30 PM EST"
    assert datetime_words(moment, "America/Los_Angeles") == (
        "Tuesday, March 5, 2024 at 11:30 AM PST"
    )
    assert datetime_words(JULY_1_2024_1900_UTC, "America/Los_Angeles") == (
        "Monday, July 1, 2024 at 12:00 PM PDT"
    )
    assert datetime_words(moment, "Asia/Tokyo") == "Wednesday, March 6, 2024 at 4:30 AM JST"
    assert datetime_words(moment, "America/Sao_Paulo").endswith("4:30 PM UTC-03:00")
    assert date_words(moment, "Asia/Tokyo") == "Wednesday, March 6, 2024"


@pytest.mark.parametrize("zone", [None, "", "Not/AZone", "../../etc/passwd"])
def test_dates_fall_back_to_eastern(zone: str | None) -> None:
    assert datetime_words(MARCH_5_2024_1930_UTC, zone) == "Tuesday, March 5, 2024 at 2:30 PM EST"
    assert datetime_words(JULY_1_2024_1900_UTC, zone) == "Monday, July 1, 2024 at 3:00 PM EDT"


def test_recipient_zone_reaches_the_email(renderer: EmailRenderer) -> None:
    context = sample("payment_confirmation")
    context["paid_at"] = MARCH_5_2024_1930_UTC
    context["recipient"]["timezone"] = "America/Los_Angeles"
    email = renderer.render("payment_confirmation", context)
    assert "Tuesday, March 5, 2024 at 11:30 AM PST" in email.text
    assert "Tuesday, March 5, 2024 at 11:30 AM PST" in email.html


def test_a_job_without_a_name_is_not_shown_in_bold_as_if_named(renderer: EmailRenderer) -> None:
    named = renderer.render("payment_confirmation", sample("payment_confirmation"))
    assert "<strong>Deck repair for Smith &amp; Sons Builders</strong>" in named.html
    context = sample("payment_confirmation")
    context["job"] = {**context["job"], "name": None, "entity": None}
    unnamed = renderer.render("payment_confirmation", context)
    assert "for your insurance on your job" in html_lib.unescape(unnamed.html)
    assert "<strong>your job</strong>" not in unnamed.html
    rep = sample("charge_unrecovered_rep")
    rep["job"] = {**rep["job"], "name": None, "entity": None}
    html = renderer.render("charge_unrecovered_rep", rep).html
    assert "on the job" in html and "<strong>the job</strong>" not in html
