"""Codex CLI (`codex exec`, Responses API) against the real gateway: a tool turn billed exactly, and a
spent budget that stops it at once with our message."""

from __future__ import annotations


import pytest

from tests.clients.openai_fixtures import BUDGET_MESSAGE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# The fake upstream calls Codex's shell tool once, then answers "tool said: <the tool's output>".
# The command's output (tollgate-42) is not in the prompt: only running it produces it.
TOOL_PROMPT = 'Run the command. [[call:exec_command {"cmd": "echo tollgate-$((20+22))"}]]'


def test_a_tool_turn_runs_the_command_and_is_billed_exactly(openai_rig, run_codex):
    key = openai_rig.key()

    run = run_codex(openai_rig, key, TOOL_PROMPT)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "tollgate-42" in run.stdout, (run.stdout, run.stderr[-3000:])
    assert "Reconnecting" not in run.stderr
    openai_rig.check_billed_as_reported(key, turns=2)  # the tool call, then the answer that read its output


def test_a_spent_budget_stops_codex_at_once_with_our_message(openai_rig, run_codex):
    key, spent, before = openai_rig.spent_key()
    upstream_before = openai_rig.upstream_requests()

    run = run_codex(openai_rig, key, "Say hi.", timeout=60)  # far below the 429's Retry-After

    assert run.returncode != 0, run.stdout
    assert BUDGET_MESSAGE + spent["reset_at"] in run.stderr, run.stderr[-3000:]
    # no "Reconnecting... n/5" and no sleep on the hours-long Retry-After: one request, a few seconds
    assert "Reconnecting" not in run.stderr, run.stderr[-3000:]
    openai_rig.check_stopped_at_once(key, before)
    assert openai_rig.upstream_requests() == upstream_before
