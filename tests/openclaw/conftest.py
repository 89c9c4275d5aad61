"""Fixtures for the OpenClaw real-client suite: the gateway under test and a real OpenClaw.

OpenClaw itself comes from scripts/openclaw-install.sh (Node 24 + a pinned OpenClaw in a cache
folder); scripts/openclaw-test.sh passes its paths in OPENCLAW_NODE_BIN / OPENCLAW_BIN. Without
them these tests skip (so a plain `pytest tests` stays fast), unless
TOLLGATE_OPENCLAW_REQUIRED=1, where a missing install is an error.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from openclaw_harness import (
    PLUGIN_DIR,
    PLUGIN_ID,
    GatewayProcess,
    Install,
    OpenClaw,
    base_config,
    free_port,
    provider_entry,
)
from openclaw_rig import PARK_BUDGET_TOKENS, PARK_WINDOW, RATE_LIMIT_RPM, GatewayRig
from openclaw_target import Target, start_target


@pytest.fixture(scope="session")
def openclaw_install() -> Install:
    found = Install.find()
    if found is None:
        message = "OpenClaw suite: run it with scripts/openclaw-test.sh (OPENCLAW_NODE_BIN / OPENCLAW_BIN unset)"
        if os.environ.get("TOLLGATE_OPENCLAW_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def target(openclaw_install, tmp_path_factory) -> Iterator[Target]:
    """The gateway OpenClaw talks to (the stand-in until the real tollgate is swapped in)."""
    t = start_target(tmp_path_factory.mktemp("target"))
    yield t
    t.stop()


@pytest.fixture(scope="session")
def exec_openclaw(openclaw_install, tmp_path_factory) -> OpenClaw:
    """An OpenClaw HOME for one-shot `agent exec` turns; each test writes its own config."""
    return OpenClaw(openclaw_install, tmp_path_factory.mktemp("openclaw-exec-home"))


def pytest_collection_finish(session) -> None:
    """Note whether any selected test needs the gateway, so it can be started early."""
    session.config._openclaw_needs_gateway = any("gateway_rig" in getattr(item, "fixturenames", ())
                                                 for item in session.items)


@pytest.fixture(scope="session", autouse=True)
def _gateway_launch(request, tmp_path_factory) -> Iterator[dict | None]:
    """Starts the OpenClaw gateway in the background at the start of the session.

    Its start and first turn take most of a minute on two cores; overlapping that with the
    one-shot `agent exec` tests saves that minute. `gateway_rig` waits for it.
    """
    if not getattr(request.config, "_openclaw_needs_gateway", False) or Install.find() is None:
        yield None
        return
    target_ = request.getfixturevalue("target")
    state: dict = {}
    state["rig"] = launch_rig(Install.find(), target_, tmp_path_factory)
    thread = threading.Thread(target=warm_up, args=(state,), daemon=True)
    thread.start()
    state["thread"] = thread
    try:
        yield state
    finally:
        thread.join(timeout=300)
        state["rig"].gateway.stop()


def launch_rig(install: Install, target: Target, tmp_path_factory) -> GatewayRig:
    in_per_mtok, _ = target.prices()
    budget_nanos = in_per_mtok * PARK_BUDGET_TOKENS // 1_000_000
    park_key = target.new_key(budget_usd=str(Decimal(budget_nanos).scaleb(-9)), window=PARK_WINDOW, rpm=6000)
    rate_key = target.new_key(budget_usd="5", window="5h", rpm=RATE_LIMIT_RPM)
    oc = OpenClaw(install, tmp_path_factory.mktemp("openclaw-gateway-home"))
    port, token = free_port(), "gw-" + secrets.token_hex(12)
    config = base_config({"tollgate": provider_entry(target, park_key), "tollgate_rl": provider_entry(target, rate_key)},
                         primary=f"tollgate/{target.model}")
    config["gateway"] = {"mode": "local", "bind": "loopback", "port": port,
                         "auth": {"mode": "token", "token": token},
                         "http": {"endpoints": {"chatCompletions": {"enabled": True}}}}
    config["plugins"] = {
        "allow": [PLUGIN_ID],
        "load": {"paths": [str(PLUGIN_DIR)]},
        "entries": {PLUGIN_ID: {
            "enabled": True,
            "hooks": {"allowConversationAccess": True},
            "config": {"graceSeconds": 0.2, "jitterSeconds": 0.5, "spacingSeconds": 0, "maxAttempts": 6,
                       "runTimeoutSeconds": 120},
        }},
    }
    oc.write_config(config)
    gw = GatewayProcess(oc, port, token)
    gw.launch()
    return GatewayRig(gw, oc, park_key, rate_key, oc.home / ".openclaw" / PLUGIN_ID)


def warm_up(state: dict) -> None:
    """Waits for readiness, then runs one turn: a fresh gateway's first turn prepares the agent's
    workspace (tens of seconds), after which turns reach the model within a second or two."""
    gw = state["rig"].gateway
    try:
        gw.wait_ready()
        status, body = gw.turn("agent:main:warm-up", "Reply with one short sentence.")
        assert status == 200, (status, body, gw.log_tail())
    except BaseException as e:  # reported by gateway_rig
        state["error"] = e


@pytest.fixture(scope="session")
def gateway_rig(openclaw_install, _gateway_launch) -> GatewayRig:
    assert _gateway_launch is not None, "the gateway was not launched"
    _gateway_launch["thread"].join(timeout=300)
    if "error" in _gateway_launch:
        raise _gateway_launch["error"]
    return _gateway_launch["rig"]
