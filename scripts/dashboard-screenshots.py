#!/usr/bin/env python3
"""Screenshots of the dashboard for the README: docs/img/dashboard-owner.png and dashboard-operator.png.

Starts a real gateway on a fake upstream (tests/fakes/openai_upstream.py, through the helpers of
tests/support/processes.py) in a temporary directory, makes an account with a few keys and some
traffic (successes, an upstream failure and a budget refusal), then opens the account owner's view and
the operator's in the system's Chromium, driven by Playwright (scripts/browser-install.sh installs
both), and saves the two pictures. Nothing of the gateway outlives the run.

Usage: .venv/bin/python scripts/dashboard-screenshots.py [--out docs/img]
  TOLLGATE_CHROMIUM  the Chromium to drive (default /usr/bin/chromium)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import fake_config  # noqa: E402
from tests.support.processes import Gateway, start_upstream  # noqa: E402

CHROMIUM = os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 20_000


def chat(gw: Gateway, sk: str, text: str, model: str = "fake-chat", max_tokens: int = 200) -> int:
    import httpx

    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                   json={"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]})
    return r.status_code


def new_key(gw: Gateway, mk: str, body: dict) -> str:
    r = gw.manage("POST", "/api/keys", mk, body)
    assert r.status_code == 201, r.text
    return r.json()["data"]["apiKey"]


def populate(gw: Gateway) -> str:
    """Two accounts with keys and traffic; the management key of the first."""
    account, mk = gw.account("Acme Robotics")
    team = gw.subscribe(account, "team")
    trial = gw.subscribe(account, "tiny")
    support = new_key(gw, mk, {"name": "support-bot", "subscriptionId": team,
                               "budget": {"limit": "0.01", "window": "1h"}})
    batch = new_key(gw, mk, {"name": "batch-jobs", "subscriptionId": team})
    intern = new_key(gw, mk, {"name": "intern-sandbox", "subscriptionId": trial})
    for n in range(6):
        assert chat(gw, support, f"customer question {n} [[reply:{300 + 100 * n}]]", max_tokens=1000) == 200
    for n in range(4):
        assert chat(gw, batch, "summarise this report " * 20 + f"[[reply:{1500 + 500 * n}]]", model="fake-pro",
                    max_tokens=4000) == 200
    assert chat(gw, batch, "[[status:500]]") == 502  # an upstream failure: the operator sees its last error
    for _ in range(30):  # bounded: the tiny plan's $0.001 runs out within a few of these
        status = chat(gw, intern, "the cat " * 40 + "[[reply:150]]", max_tokens=150)
        if status == 429:
            break
        assert status == 200
    else:
        raise AssertionError("the trial budget never ran out")

    other, other_mk = gw.account("Globex Labs")
    sub = gw.subscribe(other, "team")
    app = new_key(gw, other_mk, {"name": "mobile-app", "subscriptionId": sub})
    for n in range(3):
        assert chat(gw, app, f"hello {n} [[reply:60]]") == 200
    return mk


def shoot(gw: Gateway, mk: str, out: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        for secret, view, name in ((mk, "owner-view", "dashboard-owner.png"),
                                   (gw.admin_token, "operator-view", "dashboard-operator.png")):
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="en-GB",
                                          timezone_id="UTC")
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(gw.url + "/dashboard")
            page.get_by_test_id("signin-key").fill(secret)
            page.get_by_test_id("signin-submit").click()
            expect(page.get_by_test_id(view)).to_be_visible()
            expect(page.get_by_test_id("log-row").first).to_be_visible()
            if view == "owner-view":
                expect(page.get_by_test_id("key-bar")).to_have_count(3)
                expect(page.get_by_test_id("refusal-row")).not_to_have_count(0)
                expect(page.get_by_test_id("chart-key").get_by_test_id("legend-item").first).to_be_visible()
            else:
                expect(page.get_by_test_id("op-account-row")).to_have_count(2)
                expect(page.get_by_test_id("op-upstream-row").first).to_be_visible()
            path = out / name
            page.screenshot(path=str(path), full_page=False)
            saved.append(path)
            context.close()
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="where the PNGs go")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).is_file():
        sys.exit(f"no Chromium at {CHROMIUM}: run scripts/browser-install.sh")
    with tempfile.TemporaryDirectory(prefix="tollgate-shots-") as tmp:
        upstream = start_upstream(Path(tmp))
        config = fake_config(upstream.url)
        config["models"].append({"id": "fake-pro", "upstream": "fake", "upstream_model": "fake-upstream-pro",
                                 "input_per_mtok": "3.00", "output_per_mtok": "15.00", "context": 32768,
                                 "max_output": 4096})
        config["plans"].append({"slug": "team", "name": "Team", "window": "5h", "budget_per_window": "0.50",
                                "rpm": 1000, "tpm": 1000000})
        gw = Gateway(Path(tmp), config)
        try:
            gw.start("/health", 60)
            mk = populate(gw)
            for path in shoot(gw, mk, out):
                print(f"{path} ({path.stat().st_size} bytes)")
        finally:
            gw.stop()
            upstream.stop()


if __name__ == "__main__":
    main()
