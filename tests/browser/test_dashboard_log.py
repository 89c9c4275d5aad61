"""The dashboard's request log in a real Chromium when a filter matches rarely (issue 15): a page of the API
reads at most `SCAN_ROWS` records and may come back short, even empty, with `hasMore`; the page reads on
a few pages by itself, says when it found nothing yet, and "Load more" goes on to the matches."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import fake_config
from tests.integration.test_request_log_bounded import seed
from tollgate.store.request_log import SCAN_ROWS

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails when a browser is required (tests/browser/conftest.py)
    expect = None


def test_a_rare_filter_reads_on_until_load_more_finds_its_requests(tmp_path, gateway_factory, fake_upstream, page):
    # More common requests than the page reads by itself (5 API pages), all newer than the 3 rare ones.
    # (seeded on a thread of its own: Playwright's event loop runs on this one)
    with ThreadPoolExecutor(1) as pool:
        mk, _ = pool.submit(seed, tmp_path / "tollgate.db", time.time(), 5 * SCAN_ROWS + 2_000).result()
    gw = gateway_factory(fake_config(fake_upstream.url))
    page.goto(gw.url + "/dashboard")
    page.get_by_test_id("signin-key").fill(mk)
    page.get_by_test_id("signin-submit").click()
    rows = page.get_by_test_id("log-row")
    expect(rows).to_have_count(50)  # unfiltered: a full page
    page.get_by_test_id("log-model").fill("rare")
    page.get_by_test_id("log-apply").click()
    expect(page.get_by_test_id("log-empty")).to_contain_text("Load more")
    expect(rows).to_have_count(0)
    expect(page.locator("#log-more")).to_be_visible()
    page.locator("#log-more").click()
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("log-empty")).to_have_count(0)
    expect(page.locator("#log-more")).to_be_hidden()
    assert [r.get_attribute("data-request-id") for r in rows.all()] == ["req_2", "req_1", "req_0"]
