"""The in-process counters behind /metrics (proxy/traffic.py), the relay's reports to them, the request
log's lines (proxy/access_log.py) and the config keys that turn these on."""

from __future__ import annotations

import asyncio
import json

import pytest

from tollgate.config.load import ConfigError, load_config
from tollgate.domain.pools import Pool
from tollgate.domain.refusals import (
    BudgetExhausted,
    LedgerBusy,
    RateLimited,
    UpstreamBroke,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tollgate.domain.usage import UsageRecord
from tollgate.proxy import relay
from tollgate.proxy.access_log import AccessLog
from tollgate.proxy.traffic import UNHEALTHY_AFTER, Histogram, Traffic, refusal_reason
from tollgate.proxy.upstream.base import UpstreamError


def record(status: int = 200, cost: int = 1000, latency: float = 12.0, **extra) -> UsageRecord:
    fields = dict(request_id="r1", created_at=1_800_000_000.0, account_id="acct_1", key_id="key_1",
                  subscription_id="sub_1", model="m", upstream_model="m-up", route=None, endpoint="chat",
                  status=status, input_tokens=10, output_tokens=5, cost=cost, latency_ms=latency, estimated=False,
                  stream=False)
    fields.update(extra)
    return UsageRecord(**fields)


def test_histogram_quantiles_interpolate_inside_their_bucket():
    h = Histogram()
    assert h.quantile(0.5) is None
    for ms in (1, 2, 3, 4):  # all in the first bucket (<= 5 ms)
        h.add(ms)
    assert h.count == 4 and h.total == 10
    assert h.quantile(0.5) == 2.5 and h.quantile(1.0) == 5.0
    h.add(10_000_000)  # above every bucket: reported at the last bound
    assert h.cumulative()[-1] == 5 and h.quantile(1.0) == 300_000.0


def test_refusals_have_stable_bounded_names():
    pool = Pool("sub:1", "subscription", 100, 3600)
    credits = Pool("credit:1", "credits", 100, None)
    assert refusal_reason(BudgetExhausted(pool, 0)) == "budget_exceeded"
    assert refusal_reason(BudgetExhausted(credits, None)) == "insufficient_credits"
    assert refusal_reason(RateLimited("rpm", 60, 1.0)) == "rate_limit_exceeded"
    assert refusal_reason(LedgerBusy(1.0)) == "ledger_busy"
    assert refusal_reason(UpstreamUnavailable(["x"], timed_out=True)) == "upstream_timeout"
    assert refusal_reason(UpstreamUnavailable(["x"], timed_out=False, retry_after=2.0)) == "upstream_busy"
    assert refusal_reason(UpstreamUnavailable(["x"], timed_out=False)) == "upstream_unavailable"
    assert refusal_reason(UpstreamBroke("cut")) == "upstream_error"
    assert refusal_reason(UpstreamRejected(418, "whatever_the_upstream_says", "no")) == "upstream_rejected"


def test_an_upstream_turns_unhealthy_after_failures_in_a_row_and_healthy_on_an_answer():
    traffic = Traffic(["a"], clock=lambda: 5.0)
    for _ in range(UNHEALTHY_AFTER - 1):
        traffic.upstream_failed("a", "connect", "refused")
    assert traffic.upstreams["a"].healthy
    traffic.upstream_failed("a", "timeout", "slow")
    stats = traffic.upstreams["a"]
    assert not stats.healthy and stats.errors == {"connect": UNHEALTHY_AFTER - 1, "timeout": 1}
    assert stats.last_error == "timeout: slow" and stats.last_error_at == 5.0
    traffic.finished(record(), "a", None)
    assert stats.healthy and stats.consecutive_errors == 0 and stats.requests == 1
    traffic.finished(record(status=502, error="broke off"), "a", "upstream_error")
    assert stats.consecutive_errors == 1 and stats.errors["answer"] == 1
    traffic.finished(record(status=500), "a", None)  # the gateway's own failure: not the upstream's
    assert stats.consecutive_errors == 1
    by_model = traffic.by_model()["m"]
    assert (by_model.requests, by_model.cost, by_model.input_tokens) == (3, 3000, 30)
    assert traffic.refusals == {"upstream_error": 1}


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status, self.headers = status, {}

    async def aclose(self) -> None:
        pass


class FakeUpstream:
    def __init__(self, name: str, outcome) -> None:
        self.name, self.outcome, self.inflight, self.reports_usage = name, outcome, 0, True

    async def send(self, *args, **kwargs):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return FakeResponse(self.outcome)


class FakeModel:
    def __init__(self, id: str, deployments: list) -> None:
        self.id, self.deployments = id, deployments

    def pick(self) -> list:
        return self.deployments


def test_the_relay_reports_each_failed_try_and_each_fallback():
    traffic = Traffic()
    chain = [FakeModel("m1", [FakeUpstream("a", UpstreamError("connect", "refused")), FakeUpstream("b", 503)]),
             FakeModel("m2", [FakeUpstream("c", 200)])]
    attempt = asyncio.run(relay.send(chain, "/chat/completions", lambda m: b"{}", observer=traffic))
    assert attempt.upstream.name == "c" and attempt.fallbacks == 2
    assert {n: (s.errors, s.fallbacks) for n, s in traffic.upstreams.items()} == {
        "a": ({"connect": 1}, 1), "b": ({"http_503": 1}, 1)}
    every_one_fails = Traffic()
    with pytest.raises(UpstreamUnavailable):
        asyncio.run(relay.send(chain[:1], "/chat/completions", lambda m: b"{}", observer=every_one_fails))
    # The last try had nowhere to fall back to.
    assert {n: s.fallbacks for n, s in every_one_fails.upstreams.items()} == {"a": 1, "b": 0}


def test_the_request_log_writes_one_json_line_per_request_without_secrets(tmp_path):
    path = tmp_path / "requests.jsonl"
    log = AccessLog.open(str(path))
    log.request(record(ttft_ms=3.25, stream=True, request_text="a secret prompt", error="upstream said: prompt"),
                "up", None)
    log.edge(1_800_000_000.0, "rid-2", "GET", "/api/keys", 401, "invalid_management_key", 1.5)
    assert not path.read_text()  # buffered until a flush
    log.close()
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["request_id"] == "r1" and first["key_id"] == "key_1" and first["cost"] == "0.000001"
    assert (first["cost_nanos"], first["ttft_ms"], first["upstream"], first["time"]) == (
        1000, 3.25, "up", "2027-01-15T08:00:00Z")
    assert "prompt" not in path.read_text()
    assert second == {"time": "2027-01-15T08:00:00Z", "request_id": "rid-2", "method": "GET", "path": "/api/keys",
                      "status": 401, "reason": "invalid_management_key", "latency_ms": 1.5}
    assert AccessLog.open("off") is None


@pytest.mark.parametrize(("table", "problem"), [
    ({"server": {"cors_origins": ["https://app.example.com/"]}}, "server.cors_origins"),
    ({"server": {"cors_origins": "example.com"}}, "server.cors_origins"),
    ({"metrics": {"per_key_max": 0}}, "metrics.per_key_max"),
    ({"metrics": {"per_key": "yes"}}, "metrics.per_key"),
    ({"metrics": {"per_keys": True}}, "metrics.per_keys"),
    ({"logging": {"requests": "/no/such/folder/requests.log"}}, "logging.requests"),
])
def test_bad_observability_settings_name_their_key(tmp_path, table, problem):
    from tests.support.toml import dumps

    path = tmp_path / "tollgate.toml"
    path.write_text(dumps(table))
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        load_config(path, env={})


def test_observability_settings_are_read(tmp_path):
    from tests.support.toml import dumps

    path = tmp_path / "tollgate.toml"
    path.write_text(dumps({"server": {"cors_origins": ["https://a.example", "http://localhost:3000"]},
                           "metrics": {"per_key": True, "per_key_max": 50},
                           "logging": {"requests": str(tmp_path / "r.log")}}))
    config = load_config(path, env={})
    assert config.server.cors_origins == ("https://a.example", "http://localhost:3000")
    assert (config.metrics.per_key, config.metrics.per_key_max) == (True, 50)
    assert config.logging.requests == str(tmp_path / "r.log")
    defaults = load_config(None, env={})
    assert (defaults.server.cors_origins, defaults.metrics.per_key, defaults.logging.requests) == ((), False, "off")
