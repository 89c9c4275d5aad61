"""`python -m tollgate router eval` on a small file of both line formats."""

from __future__ import annotations

import json
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tollgate", "router", *args], capture_output=True, text=True, timeout=120)


def write_eval_file(path) -> None:
    lines = [
        {"text": "hello there!", "label": "simple"},
        {"text": "Write a Python function that checks whether a number is prime.", "label": "code"},
        {"text": "Solve for x: 2x + 6 = 14", "label": "reasoning"},
        {"request": {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                                  {"role": "user", "content": "Set a reminder to call my dentist tomorrow at 9am."}]}, "label": "agent"},
        {"request": {"messages": [{"role": "user", "content": "Write a short poem about the sea for my dad's birthday."}]}, "label": "general"},
        {"request": {"messages": [{"role": "user", "content": "not labelled yet"}]}, "label": None},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_router_eval_prints_accuracy_confusion_and_latency(tmp_path) -> None:
    f = tmp_path / "small.jsonl"
    write_eval_file(f)
    proc = run("eval", str(f), "--errors", "5")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "requests: 5" in out and "skipped unlabelled/unreadable: 1" in out
    assert "accuracy: 1.0000" in out
    assert "confusion (rows: true, columns: predicted)" in out
    assert "p50" in out and "p99" in out


def test_router_eval_json(tmp_path) -> None:
    f = tmp_path / "small.jsonl"
    write_eval_file(f)
    proc = run("eval", str(f), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["n"] == 5 and result["skipped"] == 1
    matrix = result["confusion"]["rows_true_cols_predicted"]
    assert sum(map(sum, matrix)) == 5
    assert result["accuracy"] == sum(matrix[i][i] for i in range(5)) / 5
    assert set(result["latency_us"]) == {"p50", "p90", "p99"}


def test_router_eval_missing_file_fails(tmp_path) -> None:
    proc = run("eval", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr
