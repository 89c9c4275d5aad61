"""Live overhead analytics on recorded traffic: real multi-step agent conversations through the gateway.

Two agents on two keys of one account talk to a real gateway with the official OpenAI SDK, each
resending its growing history every step: one calls a real tool (tool_calls answers, tool results,
a streamed step, a branch back to an earlier point), the other is a text ReAct loop with a retry.
The expected token counts come from the fake upstream's counting rule, written out again here;
the expected resent part from what each step resent by construction; costs from the price list
and from the gateway's own cost headers. `tollgate cost live` and `GET /api/analytics/overhead`
must report exactly those numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from math import ceil

import openai
import pytest

from tests.conftest import fake_config
from tests.support.processes import ROOT
from tollgate.catalog import load_reference_catalog

# Nano-dollars per token: fake-chat $1/$2 per million, fake-big $3/$15 (a cache hit $0.75), fake-embed $0.10.
CHAT = (1000, 2000)
BIG = (3000, 15000)
BIG_HIT = 750
EMBED_IN = 100
WEATHER_TOOL = [{"type": "function", "function": {
    "name": "get_weather", "description": "the forecast for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def prompt_tokens(messages: list[dict]) -> int:
    """The fake upstream's rule, independently: one token a word, 4 a message, 3 to prime the answer."""
    return 3 + sum(4 + (len(m["content"].split()) if isinstance(m.get("content"), str) else 0) for m in messages)


def words(tag: str, n: int) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


class Agent:
    """Sends one conversation's steps and keeps, per step, what was sent and what the gateway charged."""

    def __init__(self, gw, key: dict) -> None:
        self.client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)
        self.steps: list[dict] = []

    def send(self, messages: list[dict], reply: int, resent: int, stream: bool = False, **extra) -> dict:
        """One model call; `reply` is the output length the fake will give, `resent` what we expect counted."""
        sent = [dict(m) for m in messages]
        raw = self.client.chat.completions.with_raw_response.create(
            model="fake-chat", messages=sent, stream=stream, **({"stream_options": {"include_usage": True}} if stream else {}),
            **extra)
        if stream:
            chunks = list(raw.parse())
            usage = chunks[-1].usage
            cost = usage.model_extra["cost_nanos"]
            answer = {"role": "assistant", "content": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)}
        else:
            parsed = raw.parse()
            usage = parsed.usage
            cost = int(raw.headers["x-request-cost-nanos"])
            message = parsed.choices[0].message
            answer = {"role": "assistant", "content": message.content}
            if message.tool_calls:
                answer["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                    "name": c.function.name, "arguments": c.function.arguments}} for c in message.tool_calls]
        prompt = prompt_tokens(sent)
        assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, reply)
        assert cost == prompt * CHAT[0] + reply * CHAT[1]
        self.steps.append({"id": raw.headers["x-request-id"], "input": prompt, "output": reply, "cost": cost,
                           "resent": resent})
        return answer

    def grown(self) -> int:
        """What the previous step left: its prompt and its answer, resent in full by the next step."""
        return self.steps[-1]["input"] + self.steps[-1]["output"] if self.steps else 0


def travel_agent(gw, key: dict) -> tuple[Agent, list[str]]:
    """Tool calls for five steps, a streamed summary, a follow-up, then a branch back to step 3."""
    agent = Agent(gw, key)
    history = [{"role": "system", "content": "You are a careful travel planning agent. Call tools before you answer."},
               {"role": "user", "content": "Plan three days in Paris for two and check the weather [[tool:get_weather]] "
                                           "[[reply:40]]"}]
    snapshots = []
    for step in range(1, 6):
        answer = agent.send(history, reply=6 + 3 * step, resent=agent.grown(), tools=WEATHER_TOOL,
                            max_tokens=6 + 3 * step)
        assert answer["tool_calls"][0]["function"]["name"] == "get_weather"
        snapshots.append(history + [answer])
        history = history + [answer, {"role": "tool", "tool_call_id": answer["tool_calls"][0]["id"],
                                      "content": words(f"forecast{step}_", 15 + 10 * step)}]
    history.append({"role": "user", "content": "Now write the itinerary [[reply:24]]"})
    answer = agent.send(history, reply=24, resent=agent.grown(), stream=True)
    assert answer["content"] == "".join(f" w{i}" for i in range(24))
    history += [answer, {"role": "user", "content": "Add a rainy day backup plan [[reply:10]]"}]
    agent.send(history, reply=10, resent=agent.grown())
    # Branch: back to step 3's prompt and answer, with a different (shorter) tool result than step 4 saw.
    step3 = agent.steps[2]
    branch = snapshots[2] + [{"role": "tool", "tool_call_id": snapshots[2][-1]["tool_calls"][0]["id"],
                              "content": words("retried", 10)}]
    assert step3["input"] + step3["output"] <= prompt_tokens(branch) < agent.steps[3]["input"]
    answer = agent.send(branch, reply=8, resent=step3["input"] + step3["output"], tools=WEATHER_TOOL, max_tokens=8)
    branch += [answer, {"role": "tool", "tool_call_id": answer["tool_calls"][0]["id"], "content": words("again", 30)}]
    agent.send(branch, reply=9, resent=agent.grown(), tools=WEATHER_TOOL, max_tokens=9)
    return agent, [s["id"] for s in agent.steps]


def coding_agent(gw, key: dict) -> Agent:
    """A text ReAct loop: observations come back as user turns; step 5 is retried with the same prompt."""
    agent = Agent(gw, key)
    history = [{"role": "system", "content": "You are a coding agent. Act with one shell command per step."},
               {"role": "user", "content": "Find why the build fails and fix it [[reply:16]]"}]
    for step in range(1, 6):
        reply = 16 if step == 1 else 7 + 2 * step  # the last user turn's [[reply:N]]
        answer = agent.send(history, reply=reply, resent=agent.grown())
        history = history + [answer, {"role": "user", "content": f"Observation: {words('line', 20 * step)} "
                                                                  f"[[reply:{7 + 2 * (step + 1)}]]"}]
    retry = history[:-2]  # the client lost step 5's answer and sends the same prompt again
    answer = agent.send(retry, reply=agent.steps[-1]["output"], resent=agent.steps[-1]["input"])
    agent.send(retry + [answer, {"role": "user", "content": "Observation: tests pass [[reply:6]]"}], reply=6,
               resent=agent.grown())
    return agent


def cli(gw, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "tollgate", "cost", "live", *args, "--config", str(gw.config_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def exact_numbers(data, path: str = "", to_camel: bool = False) -> dict[str, int]:
    """Every integer in a JSON tree (counts, tokens, nano-dollars) by its path, keys in one naming style."""
    found: dict[str, int] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            found.update(exact_numbers(v, f"{path}.{camel(k) if to_camel else k}", to_camel))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found.update(exact_numbers(v, f"{path}[{i}]", to_camel))
    elif isinstance(data, int) and not isinstance(data, bool):
        found[path] = data
    return found


@pytest.fixture
def gw(gateway_factory, fake_upstream):
    config = fake_config(fake_upstream.url)
    config["models"].append({"id": "fake-big", "upstream": "fake", "upstream_model": "fake-upstream-big",
                             "input_per_mtok": "3.00", "output_per_mtok": "15.00", "cached_input_per_mtok": "0.75",
                             "context": 32768})
    # Room for agents: the shipped plans' per-key token rate would park them mid-conversation.
    config["plans"].append({"slug": "roomy", "name": "Roomy", "price_monthly": "100", "window": "5h",
                            "budget_per_window": "1.00", "rpm": 1000, "tpm": 1000000})
    return gateway_factory(config)


@pytest.mark.slow
def test_live_overhead_of_real_agent_traffic(gw):
    account, mk = gw.account("agents")
    sub = gw.subscribe(account, "roomy")
    keys = {}
    for name in ("travel", "coder"):
        r = gw.manage("POST", "/api/keys/subscription", mk, {"name": name, "subscriptionId": sub})
        assert r.status_code == 201, r.text
        keys[name] = {"key_id": r.json()["data"]["id"], "sk": r.json()["data"]["apiKey"]}

    travel, travel_ids = travel_agent(gw, keys["travel"])
    coder = coding_agent(gw, keys["coder"])
    one_off = Agent(gw, keys["travel"])  # a second conversation on the travel key: one step, nothing resent
    one_off.send([{"role": "user", "content": "What is the capital of France? [[reply:3]]"}], reply=3, resent=0)
    embed = openai.OpenAI(base_url=gw.url + "/v1", api_key=keys["coder"]["sk"], max_retries=0)
    raw = embed.embeddings.with_raw_response.create(model="fake-embed", input="the build log of today")
    embed_cost = int(raw.headers["x-request-cost-nanos"])
    assert embed_cost == 5 * EMBED_IN

    steps = {s["id"]: s for agent in (travel, coder, one_off) for s in agent.steps}
    # The agents really did resend: most of their input is context they had sent before.
    assert sum(s["resent"] for s in steps.values()) > sum(s["input"] - s["resent"] for s in steps.values())

    report = json.loads(cli(gw, "--account", account, "--json", "--steps").stdout)
    by_key = {k["key_id"]: k for k in report["keys"]}
    assert set(by_key) == {keys["travel"]["key_id"], keys["coder"]["key_id"]}
    assert by_key[keys["travel"]["key_id"]]["name"] == "travel"

    # Every step: its tokens split as sent, its cost as charged, its resent part at the input price.
    seen = {}
    for key in report["keys"]:
        for session in key["sessions"]:
            for step in session["steps"]:
                seen[step["request_id"]] = (key["key_id"], session["session"], step)
    assert set(seen) == set(steps)
    for rid, want in steps.items():
        step = seen[rid][2]
        assert (step["input_tokens"], step["output_tokens"], step["resent_tokens"], step["new_tokens"]) == (
            want["input"], want["output"], want["resent"], want["input"] - want["resent"]), rid
        assert step["cost_nanos"] == want["cost"] and step["resent_cost_nanos"] == want["resent"] * CHAT[0]

    # Conversations: one per opening and key, in the order sent; the branch and the retry are seen as such.
    def conversation(agent: Agent) -> dict:
        [(key_id, session)] = {seen[s["id"]][:2] for s in agent.steps}
        [found] = [s for s in by_key[key_id]["sessions"] if s["session"] == session]
        return found

    trip, code, once = conversation(travel), conversation(coder), conversation(one_off)
    assert len({trip["session"], once["session"]}) == 2 and len(by_key[keys["travel"]["key_id"]]["sessions"]) == 2
    assert [s["request_id"] for s in trip["steps"]] == travel_ids
    assert (trip["requests"], trip["branches"], code["requests"], code["branches"], once["branches"]) == (9, 1, 7, 1, 0)
    for agent, found in ((travel, trip), (coder, code), (one_off, once)):
        assert found["resent_tokens"] == sum(s["resent"] for s in agent.steps)
        assert found["input_tokens"] == sum(s["input"] for s in agent.steps)
        assert found["cost_nanos"] == sum(s["cost"] for s in agent.steps)

    # Key and account totals match the ledger to the nano-dollar.
    usage = {k["keyId"]: k for k in gw.manage("GET", "/api/usage", mk).json()["data"]["keys"]}
    travel_cost = sum(s["cost"] for s in travel.steps + one_off.steps)
    coder_cost = sum(s["cost"] for s in coder.steps) + embed_cost
    for name, cost in (("travel", travel_cost), ("coder", coder_cost)):
        key = by_key[keys[name]["key_id"]]
        assert key["cost_nanos"] == usage[keys[name]["key_id"]]["spentNanos"] == cost
    coder_key = by_key[keys["coder"]["key_id"]]
    assert (coder_key["no_session"]["requests"], coder_key["no_session"]["cost_nanos"]) == (1, embed_cost)
    total = report["total"]
    all_resent = sum(s["resent"] for s in steps.values())
    assert (total["cost_nanos"], total["resent_tokens"], total["resent_cost_nanos"]) == (
        travel_cost + coder_cost, all_resent, all_resent * CHAT[0])
    assert (total["requests"], total["sessions"], total["keys"]) == (18, 3, 2)
    # fake-chat prices no cache hit: as hits, its resent context costs the same; the upstream reported no cache.
    assert (total["resent_cached_cost_nanos"], total["cache_priced_resent_tokens"]) == (all_resent * CHAT[0], 0)
    assert (total["cached_tokens"], total["cache_write_tokens"], total["cache_saved_nanos"]) == (0, 0, 0)

    # The same chat traffic on the other served model and on a catalog model, request by request.
    chat = list(steps.values())
    models = {m["model"]: m for m in total["comparison"]["models"]}
    assert "fake-embed" not in models and total["comparison"]["actual_cost_nanos"] == sum(s["cost"] for s in chat)
    assert models["fake-chat"]["cost_nanos"] == sum(s["cost"] for s in chat)
    assert models["fake-big"]["cost_nanos"] == sum(s["input"] * BIG[0] + s["output"] * BIG[1] for s in chat)
    assert models["fake-big"]["resent_cost_nanos"] == all_resent * BIG[0]
    # ...and the resent part as cache hits where a model prices them (the served config's, the catalog's)
    assert (models["fake-big"]["resent_cached_cost_nanos"], models["fake-chat"]["resent_cached_cost_nanos"]) == (
        all_resent * BIG_HIT, None)
    deepseek = load_reference_catalog().get("deepseek-v3.2")
    assert models["deepseek-v3.2"]["cost_nanos"] == sum(
        ceil(Fraction(s["input"] * deepseek.input_per_mtok + s["output"] * deepseek.output_per_mtok, 10**6))
        for s in chat)
    assert models["deepseek-v3.2"]["cost_nanos"] < total["comparison"]["actual_cost_nanos"] < models["fake-big"]["cost_nanos"]
    assert models["deepseek-v3.2"]["resent_cached_cost_nanos"] == sum(
        ceil(Fraction(s["resent"] * deepseek.cached_input_per_mtok, 10**6)) for s in chat)

    # Flat plans: the `tiny` plan's $0.001 windows, and side by side for the busiest window.
    plans = {p["plan"]: p for p in total["plans"]}
    spend = travel_cost + coder_cost
    assert plans["tiny"]["spend_nanos"] == spend and plans["tiny"]["windows_needed"] == ceil(Fraction(spend, 10**6))
    assert plans["tiny"]["subscriptions_needed"] == ceil(Fraction(plans["tiny"]["busiest_window_spend_nanos"], 10**6))
    assert plans["standard"]["windows_needed"] == 1 and plans["standard"]["subscriptions_needed"] == 1

    # The management API gives the same report to the account's owner (camelCase, money as decimal strings).
    r = gw.manage("GET", "/api/analytics/overhead?steps=1", mk)
    assert r.status_code == 200, r.text
    api = r.json()["data"]
    assert api["servedModelsKnown"], "serve/app.py must pass overhead_report(config.models) to ManagementAPI"
    assert exact_numbers(api) == exact_numbers(report, to_camel=True)
    assert Fraction(api["total"]["cost"]) == Fraction(spend, 10**9) and api["total"]["resentTokens"] == all_resent
    assert isinstance(api["total"]["cost"], str) and api["total"]["costNanos"] == spend

    # One key only, through both.
    coder_id = keys["coder"]["key_id"]
    r = gw.manage("GET", f"/api/analytics/overhead?keyId={coder_id}&days=7", mk)
    assert r.status_code == 200, r.text
    only = r.json()["data"]
    assert [k["keyId"] for k in only["keys"]] == [coder_id] and only["total"]["costNanos"] == coder_cost
    cli_only = json.loads(cli(gw, "--account", account, "--key", coder_id, "--days", "7", "--json").stdout)
    assert exact_numbers(only) == exact_numbers(cli_only, to_camel=True)

    # Text for people names the keys, and another account sees none of this.
    text = cli(gw, "--account", account).stdout
    assert "travel" in text and "coder" in text and trip["session"] in text and "resent if hit" in text
    other, other_mk = gw.account("other")
    r = gw.manage("GET", f"/api/analytics/overhead?keyId={coder_id}", other_mk)
    assert r.status_code == 404 and r.json()["success"] is False
    r = gw.manage("GET", "/api/analytics/overhead", other_mk)
    assert r.status_code == 200 and r.json()["data"]["total"]["requests"] == 0
    assert coder_id not in r.text and account not in r.text and trip["session"] not in r.text
    proc = cli(gw, "--account", other, "--key", coder_id, check=False)
    assert proc.returncode != 0 and "has no key" in proc.stderr


def test_overhead_api_checks_its_input_and_needs_a_management_key(gw):
    key = gw.key()
    for query, field in (("days=0", "days"), ("days=x", "days"), ("steps=maybe", "steps")):
        r = gw.manage("GET", f"/api/analytics/overhead?{query}", key["mk"])
        assert r.status_code == 400 and field in r.json()["error"]["message"], (query, r.text)
    assert gw.manage("GET", "/api/analytics/overhead?keyId=key_nope", key["mk"]).status_code == 404
    for token in (key["sk"], gw.admin_token, "mk_unknown"):
        assert gw.manage("GET", "/api/analytics/overhead", token).status_code == 401
    proc = cli(gw, "--account", "acct_missing", check=False)
    assert proc.returncode != 0 and "no account" in proc.stderr
