"""Every email, rendered as it is sent and opened in a real Chromium on a phone 420 px wide.

The reader must not have to scroll sideways, and the greeting, the heading and every amount
the email states must be on the screen. Screenshots land in var/screens/email-<notice>.png for a
person to look at.
"""

from __future__ import annotations

import copy
import re

import pytest

from receiver.config import Config
from receiver.delivery.emails import EMAIL_TEMPLATES, NOTICES, EmailRenderer
from receiver.delivery.samples import SAMPLE_CONTEXTS
from tests.browser import DESKTOP, PHONE_WIDE

MONEY = re.compile(r"\$[\d,]+\.\d\d")


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(
        EMAIL_TEMPLATES, brand_name=Config.BRAND_NAME, support_email=Config.SUPPORT_EMAIL
    )


@pytest.mark.parametrize("notice", NOTICES)
def test_email_reads_on_a_phone(browser, renderer, tmp_path, notice):
    email = renderer.render(notice, copy.deepcopy(SAMPLE_CONTEXTS[notice]))
    browser.viewport(PHONE_WIDE).open_html(email.html, tmp_path / f"{notice}.html")
    shot = browser.screenshot(f"email-{notice}")

    assert browser.inner_width() == PHONE_WIDE  # the meta viewport made it a phone layout
    assert browser.overflow() <= 0, browser.wide_elements()
    seen = browser.text()
    name = SAMPLE_CONTEXTS[notice]["recipient"]["name"]
    assert (f"Hi {name}," if name else "Hello,") in seen
    heading = browser.js("return document.querySelector('h1').innerText").strip()
    assert heading and heading in seen
    for amount in MONEY.findall(email.text):
        assert amount in seen, f"{amount} is in the text version but not on the screen"
    # Nothing a reader needs sits past the right edge, even when the page as a whole fits.
    assert browser.js(
        "return [...document.querySelectorAll('h1, p, td')]"
        ".every(el => el.getBoundingClientRect().right <= window.innerWidth + 0.5)"
    )
    assert shot.stat().st_size > 0


def test_email_keeps_its_600px_card_on_a_desktop(browser, renderer, tmp_path):
    notice = "payment_reminder"
    email = renderer.render(notice, copy.deepcopy(SAMPLE_CONTEXTS[notice]))
    browser.viewport(DESKTOP).open_html(email.html, tmp_path / f"{notice}.html")
    browser.screenshot(f"email-{notice}-desktop")

    assert browser.overflow() <= 0
    width = browser.js("return document.querySelector('table.container').offsetWidth")
    assert width == 600
