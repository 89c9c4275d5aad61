"""Model `auto` with the LLM-judge classifier against a real upstream process, route tables and fallbacks."""

import httpx
import openai

from tests.conftest import fake_config
from tests.support.metrics import samples, value


def judge_config(good_url: str, broken_url: str) -> dict:
    config = fake_config(good_url)
    config["upstreams"].append({"name": "broken", "base_url": broken_url + "/v1"})
    config["models"] += [
        {"id": "judge", "upstream": "fake", "input_per_mtok": "0.01", "output_per_mtok": "0.01"},
        {"id": "coder", "upstream": "fake", "input_per_mtok": "3", "output_per_mtok": "6"},
        {"id": "thinker", "upstream": "broken", "input_per_mtok": "5", "output_per_mtok": "10"},
        {"id": "cheap", "upstream": "fake", "input_per_mtok": "0.1", "output_per_mtok": "0.2"},
    ]
    config["routes"] = {
        "auto": {"classifier": "judge", "judge_model": "judge", "simple": ["cheap"], "general": ["fake-chat"],
                 "reasoning": ["thinker", "fake-chat"], "code": ["coder"], "agent": ["fake-chat"]},
    }
    return config


def test_judge_mode_routes_by_the_judges_answer_and_falls_back(gateway_factory, upstream_factory):
    good = upstream_factory("good")
    broken = upstream_factory("broken", fail_status=503)
    gw = gateway_factory(judge_config(good.url, broken.url))
    key = gw.key()
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)

    def ask(text):
        raw = c.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": text}])
        return raw.headers, raw.parse()

    headers, answer = ask("fix my python bug [[judge:code]] [[reply:2]]")
    assert (headers["x-tollgate-route"], headers["x-tollgate-model"]) == ("code", "coder")
    assert answer.model == "coder"
    headers, _ = ask("hello [[judge:simple]]")
    assert (headers["x-tollgate-route"], headers["x-tollgate-model"]) == ("simple", "cheap")
    # The reasoning specialist's upstream is down: the chain falls back, and the headers say so.
    headers, _ = ask("prove it [[judge:reasoning]]")
    assert headers["x-tollgate-route"] == "reasoning"
    assert headers["x-tollgate-model"] == "fake-chat" and headers["x-tollgate-fallbacks"] == "1"
    # An answer that is not a category means general.
    headers, _ = ask("whatever [[judge:banana]]")
    assert (headers["x-tollgate-route"], headers["x-tollgate-model"]) == ("general", "fake-chat")
    # A concrete model bypasses routing entirely.
    raw = c.chat.completions.with_raw_response.create(model="coder", messages=[{"role": "user", "content": "hi [[judge:simple]]"}])
    assert "x-tollgate-route" not in raw.headers and raw.headers["x-tollgate-model"] == "coder"
    assert httpx.get(good.url + "/_stats").json()["judged"] == 4

    metrics = gw.admin("GET", "/admin/metrics/routes").json()["data"]
    by = {(m["category"], m["model"]): m for m in metrics}
    assert by[("code", "coder")]["requests"] == 1
    assert by[("reasoning", "fake-chat")]["fallbacks"] == 1
    assert by[("simple", "cheap")]["costNanos"] > 0
    text = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {gw.admin_token}"}).text
    assert value(samples(text), "tollgate_route_requests_total", profile="auto", category="code", model="coder") == 1
    records = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]
    assert records["total"]["requests"] == 5


def test_unknown_profile_is_a_404(gateway_factory, upstream_factory):
    good = upstream_factory("good")
    gw = gateway_factory(judge_config(good.url, good.url))
    key = gw.key()
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key['sk']}"},
                   json={"model": "auto:nope", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404 and "routes.nope" in r.json()["error"]["message"]


def test_auto_steps_down_to_a_cheaper_model_near_the_end_of_the_budget(gateway_factory, upstream_factory):
    good = upstream_factory("good")
    config = judge_config(good.url, good.url)
    config["routes"]["auto"].update({"downgrade_below": 0.5, "downgrade": {"code": ["cheap"]}})
    config["plans"].append({"slug": "small", "budget_per_window": "0.0005", "rpm": 1000, "tpm": 1000000})
    gw = gateway_factory(config)
    key = gw.key(plan="small")
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)
    raw = c.chat.completions.with_raw_response.create(
        model="auto", max_tokens=40, messages=[{"role": "user", "content": "write code [[judge:code]] [[reply:40]]"}])
    assert raw.headers["x-tollgate-model"] == "coder"
    # coder: 3 + 6 per M; that answer cost over half of the $0.0005 window: the next code request steps down.
    assert int(raw.headers["x-request-cost-nanos"]) > 250_000
    raw = c.chat.completions.with_raw_response.create(
        model="auto", max_tokens=5, messages=[{"role": "user", "content": "more code [[judge:code]] [[reply:5]]"}])
    assert (raw.headers["x-tollgate-route"], raw.headers["x-tollgate-model"]) == ("code", "cheap")
