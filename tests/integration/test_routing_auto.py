"""Model `auto` with the shipped local classifier: each category lands on its route's model.

Also: the operator opt-in that keeps routed requests' text, `tollgate router sample`, and
`tollgate router eval` on the labelled sample (measuring the router on one's own traffic).
"""

import json
import subprocess
import sys

import openai

from tests.conftest import fake_config
from tests.support.processes import ROOT

CATEGORY_MODELS = {"simple": "m-simple", "general": "m-general", "reasoning": "m-reasoning", "code": "m-code",
                   "agent": "m-agent"}
REQUESTS = {
    "simple": {"messages": [{"role": "user", "content": "hi there! how are you today?"}]},
    "general": {"messages": [{"role": "user", "content": "Write a thoughtful essay comparing the economic policies "
                                                         "of the Roman Republic and the early Empire."}]},
    "reasoning": {"messages": [{"role": "user", "content": "Solve for x: 3x^2 - 12x + 9 = 0, and prove that the sum "
                                                           "of the roots equals 4."}]},
    "code": {"messages": [{"role": "user", "content": "Write a Python function that parses an ISO 8601 date string "
                                                      "and returns a datetime, with unit tests."}]},
    "agent": {"messages": [{"role": "user", "content": "Book me a table for two at an Italian restaurant near my "
                                                       "office tomorrow at 7pm and add it to my calendar."}],
              "tools": [{"type": "function", "function": {"name": "book_table", "parameters": {"type": "object"}}},
                        {"type": "function", "function": {"name": "add_event", "parameters": {"type": "object"}}}]},
}


def auto_config(url: str) -> dict:
    config = fake_config(url, store_request_text=True)
    config["models"] += [{"id": m, "upstream": "fake", "input_per_mtok": "1", "output_per_mtok": "2"}
                         for m in CATEGORY_MODELS.values()]
    config["routes"] = {"auto": {c: [m] for c, m in CATEGORY_MODELS.items()},
                        "cheap": {"general": ["fake-chat"]}}
    return config


def test_each_category_lands_on_its_routes_model(gateway_factory, fake_upstream, tmp_path):
    gw = gateway_factory(auto_config(fake_upstream.url))
    key = gw.key()
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)
    for category, body in REQUESTS.items():
        raw = c.chat.completions.with_raw_response.create(model="auto", **body)
        assert raw.headers["x-tollgate-route"] == category, (category, raw.headers.get("x-tollgate-route"))
        assert raw.headers["x-tollgate-model"] == CATEGORY_MODELS[category]
        assert raw.parse().model == CATEGORY_MODELS[category]
    # a profile with only a general route sends everything there
    raw = c.chat.completions.with_raw_response.create(model="auto:cheap", **REQUESTS["code"])
    assert (raw.headers["x-tollgate-route"], raw.headers["x-tollgate-model"]) == ("code", "fake-chat")
    # every usage record stores the route
    report = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]
    assert report["total"]["requests"] == 6

    out = tmp_path / "sample.jsonl"
    proc = subprocess.run([sys.executable, "-m", "tollgate", "router", "sample", "10", "--config", str(gw.config_path),
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and all(r["label"] is None for r in rows)
    assert {r["routed"] for r in rows} == set(CATEGORY_MODELS)
    user_texts = {r["request"]["messages"][-1]["content"] for r in rows}
    assert REQUESTS["reasoning"]["messages"][0]["content"] in user_texts
    assert any(r["request"].get("tools") for r in rows)
    # A person labels the sample (here: the categories we meant), and eval measures the router on it.
    meant = {body["messages"][-1]["content"]: category for category, body in REQUESTS.items()}
    for row in rows:
        row["label"] = meant[row["request"]["messages"][-1]["content"]]
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    proc = subprocess.run([sys.executable, "-m", "tollgate", "router", "eval", str(out), "--json"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["n"] == 6 and result["skipped"] == 0 and result["accuracy"] == 1.0
