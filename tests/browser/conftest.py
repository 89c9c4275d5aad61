"""A real Chromium driven by Playwright, for the dashboard's tests (tests/browser/).

Playwright drives the system's Chromium (`TOLLGATE_CHROMIUM`, default /usr/bin/chromium), never a
browser of its own download: scripts/browser-install.sh installs both. Without them these tests are
skipped, unless TOLLGATE_BROWSER_REQUIRED=1 (as scripts/with-test-tools.sh, so `make test`, sets):
then they fail. Every wait is bounded (Playwright's timeouts); nothing is asserted on time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 15_000


def _missing(why: str) -> None:
    why += " (run scripts/browser-install.sh)"
    if os.environ.get("TOLLGATE_BROWSER_REQUIRED") == "1":
        pytest.fail(f"a browser is required (TOLLGATE_BROWSER_REQUIRED=1) but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped: Playwright's sync API runs an event loop on this thread while it is open, and every
    later `asyncio.run` in the session (most of the suite) would find it running. It closes with the module."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("Playwright is not installed")
    if not Path(CHROMIUM).is_file():
        _missing(f"there is no Chromium at {CHROMIUM}")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        # --no-sandbox: CI and these machines run the suite as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh tab (its own sessionStorage); the test fails if the page throws or breaks its CSP."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda message: problems.append(f"console: {message.text}")
           if message.type == "error" and "Content Security Policy" in message.text else None)
    tab.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}") or dialog.dismiss())
    yield tab
    context.close()
    assert not problems, problems
