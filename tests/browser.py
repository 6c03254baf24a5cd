"""A real headless Chromium for the tests of what people see: pages and emails.

The developers' guide has pages and emails checked in Debian's `chromium` driven through its
`chromium-driver`, and the screenshots opened by a person before a page is called done. A fresh
machine (CI's) has neither, so `ensure_chromium()` installs both with apt-get when one is
missing (tests/debian.py).

`Browser` wraps a selenium driver with what the tests need: a viewport of a given CSS width
(desktop 1280, phones 390 and 420), a full-page screenshot under var/screens/<name>.png
(git-ignored), how far a page overflows sideways, and the text a reader sees.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.debian import ensure_packages

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
SCREENS = Path(__file__).resolve().parent.parent / "var" / "screens"

DESKTOP = 1280
PHONE = 390
PHONE_WIDE = 420
WIDTHS = {"desktop": DESKTOP, "phone": PHONE, "phone-wide": PHONE_WIDE}


class BrowserUnavailable(RuntimeError):
    """Chromium or its driver is missing and could not be installed; the message says why."""


def ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver when either binary is missing."""
    ensure_packages((CHROMIUM, CHROMEDRIVER), PACKAGES, BrowserUnavailable)


def start_driver() -> Any:
    """A headless Chromium under Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root, and no user namespaces in containers
        "--disable-dev-shm-usage",  # a small /dev/shm crashes tabs
        "--disable-gpu",
        "--hide-scrollbars",  # scrollbars would eat into the width a page is laid out in
        f"--window-size={DESKTOP},900",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


class Browser:
    """One Chromium tab, as a person on a desktop or a phone would see a page."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.width = DESKTOP

    def viewport(self, width: int, height: int = 900) -> Browser:
        """Lay pages out `width` CSS pixels wide; below 600 as a phone does (the page's
        meta viewport decides its layout width, as on a real phone)."""
        self.width = width
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )
        return self

    def color_scheme(self, scheme: str) -> Browser:
        """Show pages as a device set to `light` or `dark` would (prefers-color-scheme)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        return self

    def open(self, url: str) -> Browser:
        self.driver.get(url)
        return self

    def open_html(self, html: str, path: Path) -> Browser:
        """Show a document the app renders but does not serve (an email), from a file."""
        path.write_text(html, encoding="utf-8")
        return self.open(path.resolve().as_uri())

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def inner_width(self) -> int:
        return int(self.js("return window.innerWidth"))

    def overflow(self) -> int:
        """CSS pixels the document is wider than the window (0: nothing to scroll sideways)."""
        return int(self.js("return document.documentElement.scrollWidth - window.innerWidth") or 0)

    def text(self) -> str:
        """What a reader sees: the rendered text of the body (hidden elements left out)."""
        return str(self.js("return document.body.innerText"))

    def wide_elements(self) -> list[str]:
        """Elements whose right edge is past the window, to name in a failed assertion."""
        found = self.js(
            """
            const out = [];
            for (const el of document.body.querySelectorAll('*')) {
              const r = el.getBoundingClientRect();
              if (r.width && r.right > window.innerWidth + 0.5)
                out.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                         + ' right=' + Math.round(r.right));
            }
            return out.slice(0, 10);
            """
        )
        return [str(item) for item in found]

    def screenshot(self, name: str) -> Path:
        """Save the whole page (not only the window) as var/screens/<name>.png."""
        SCREENS.mkdir(parents=True, exist_ok=True)
        height = int(self.js("return document.documentElement.scrollHeight"))
        width = max(self.inner_width(), 1)
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        path = SCREENS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
