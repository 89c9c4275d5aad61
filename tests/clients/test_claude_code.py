"""A real Claude Code (`claude -p`, headless) against the real gateway, a fake OpenAI upstream behind it.

Claude Code streams every turn, with `system` as text blocks, `thinking`, `context_management` and
`metadata.user_id`; for a model id it does not know (`auto`) also `output_config` and a `system`
turn inside `messages` (tests/integration/test_anthropic_claude_code.py has that shape).

It reads a 429 with `x-should-retry: false` as final: one request, its text shown, exit 1
(measured with 2.1.328: a 429 without that header and without `retry-after` is retried ten times
with backoff, and one with a `retry-after` of hours is not waited on but given up at once).
"""

from __future__ import annotations

import json

import httpx

from tests.clients.anthropic_fixtures import ALIAS

# The model asks for Bash to compute something the prompt does not contain, then answers with the
# tool's output: the answer can only hold 42 if Claude Code really ran the tool and sent its result.
TOOL_PROMPT = 'Run the command. [[call:Bash {"command": "echo tollgate-$((6 * 7))", "description": "Print a number"}]]'


def stats(upstream) -> dict:
    return httpx.get(upstream.url + "/_stats", timeout=10).json()


def test_a_tool_turn_billed_exactly(claude_code, claude_gateway, fake_upstream, recorder):
    key = claude_gateway.key(plan="claude", name="cc")
    run = claude_code.run(recorder.url, key["sk"], TOOL_PROMPT, "--output-format", "json", "--allowedTools", "Bash",
                          "--max-turns", "4")
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-2000:])
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["is_error"] is False and "tool said: tollgate-42" in result["result"], result
    assert result["num_turns"] == 2

    # Every model request went through (no refusal, no 4xx ladder), each billed once, exactly as the
    # upstream reported it, at fake-chat's prices ($1 and $2 per million: 1000 and 2000 nano-dollars).
    messages = recorder.messages()
    assert [s.status for s in messages] == [200] * len(messages) and len(messages) >= 2
    reported = stats(fake_upstream)["usages"]
    assert len(reported) == len(messages)
    total = claude_gateway.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    prompt = sum(u["prompt_tokens"] for u in reported)
    completion = sum(u["completion_tokens"] for u in reported)
    assert (total["requests"], total["inputTokens"], total["outputTokens"]) == (len(messages), prompt, completion)
    assert total["spentNanos"] == prompt * 1000 + completion * 2000
    # What Claude Code was told it used (its turns added up) is what was billed.
    assert (result["usage"]["input_tokens"], result["usage"]["output_tokens"]) == (prompt, completion)
    assert result["modelUsage"][ALIAS]["contextWindow"] == 200_000  # the alias is a model it knows


def test_a_spent_budget_stops_it_at_once_with_our_message(claude_code, claude_gateway, recorder):
    key = claude_gateway.key(plan="claude", name="spent")
    # Spend the window on the dear model: each answer costs whatever is left, until a budget 429.
    auth = {"Authorization": f"Bearer {key['sk']}"}
    for _ in range(10):
        r = httpx.post(claude_gateway.url + "/v1/chat/completions", headers=auth, timeout=30, json={
            "model": "spender", "max_tokens": 4096, "messages": [{"role": "user", "content": "spend [[reply:4096]]"}]})
        if r.status_code == 429:
            break
        assert r.status_code == 200, r.text
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded", r.text

    # Bounded far below the 429's hours-long Retry-After: a client that slept on it fails here.
    run = claude_code.run(recorder.url, key["sk"], "say hi", timeout=60)
    output = run.stdout + run.stderr
    assert run.returncode != 0 and "budget exceeded: usage limit reached for this 5h window" in output, output[-2000:]
    messages = recorder.messages()
    assert [s.status for s in messages] == [429], recorder.seen  # no retry, no other ladder


def test_model_auto_answers(claude_code, claude_gateway, fake_upstream, recorder):
    """`--model auto`: a model id Claude Code does not know, so it warns, and its request then carries
    a `system` turn inside `messages` (the one that got a 400 before issue 16)."""
    key = claude_gateway.key(plan="claude", name="auto")
    run = claude_code.run(recorder.url, key["sk"], "Say three words. [[reply:3]]", "--output-format", "json", model="auto")
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-2000:])
    assert "unrecognized_model" in run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["result"].strip() == "w0 w1 w2" and result["num_turns"] == 1
    assert [s.status for s in recorder.messages()] == [200]
    [sent] = stats(fake_upstream)["bodies"]
    roles = [m["role"] for m in sent["messages"]]
    assert roles[0] == "system" and roles.count("system") == 1, roles  # its system turn, folded in
