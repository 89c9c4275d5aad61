"""README's OpenClaw setup, unchanged, against a gateway started with no config (what `make serve` runs).

The provider is README's, word for word apart from the address and the key: `tollgate/auto`,
`openai-completions`, a 128000-token window and a `maxTokens` of 4096. The embedded default routes
every `auto` category to the bundled SmolLM2, whose 8,192-token context holds OpenClaw's first
turn (about 7,000 tokens of system prompt and tools). Slow: the bundled model reads that prompt on
the CPU (a minute or two on two cores).
"""

from __future__ import annotations

import pytest
from openclaw_harness import OpenClaw, base_config

from tests.support.processes import Gateway

pytestmark = [pytest.mark.slow, pytest.mark.local_model]

# The bundled model's prices: $0.02 and $0.05 per million tokens.
IN_NANOS, OUT_NANOS = 20, 50


def readme_provider(base_url: str, api_key: str) -> dict:
    return {"baseUrl": base_url + "/v1", "apiKey": api_key, "api": "openai-completions",
            "models": [{"id": "auto", "name": "tollgate auto", "contextWindow": 128000, "maxTokens": 4096}]}


def test_readme_setup_answers_on_a_fresh_gateway(openclaw_install, tmp_path):
    gw = Gateway(tmp_path, {})  # no upstreams, no models, no routes: the embedded default
    gw.start("/health", timeout=120)
    try:
        key = gw.key(plan="pro")
        oc = OpenClaw(openclaw_install, tmp_path / "openclaw-home")
        oc.write_config(base_config({"tollgate": readme_provider(gw.url, key["sk"])}, primary="tollgate/auto"))
        result = oc.exec_turn("Say hello in one short sentence.", timeout_s=400)
        assert result.ok and result.data["final"].strip(), result
        total = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
        assert total["requests"] >= 1 and total["inputTokens"] > 2048  # more than the old default context
        assert total["spentNanos"] == total["inputTokens"] * IN_NANOS + total["outputTokens"] * OUT_NANOS
    finally:
        gw.stop()
