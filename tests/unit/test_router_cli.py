"""`python -m tollgate router eval|train`: a small file of both line formats, where the training data comes from,
and the shipped model against the shared training data it was trained on."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.support.processes import ROOT
from tollgate.proxy.routing.classifier import MANIFEST_FILE, MODEL_DIR

# The labelled training data is not part of the package: in this workplace it lies beside the checkout.
SHARED_TRAIN = ROOT.parent / "shared" / "data" / "routing" / "train.jsonl"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tollgate", "router", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def env_without_data(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOLLGATE_ROUTER_DATA"}
    return env | extra


def write_training_file(path) -> None:
    """200 separable rows: enough for a small (12-bit) model to learn, quickly."""
    words = {"simple": "hello hi thanks capital who", "general": "essay poem letter story write",
             "reasoning": "solve integral equation probability prove", "code": "python function bug compile javascript",
             "agent": "book weather remind send search"}
    rows = [{"text": " ".join(vocab.split()[(i + j) % 5] for j in range(4)) + f" item {i}", "label": label}
            for label, vocab in words.items() for i in range(40)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


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


def test_router_train_needs_to_be_told_where_the_data_is(tmp_path) -> None:
    proc = run("train", "--out", str(tmp_path / "model"), env=env_without_data())
    assert proc.returncode == 2
    assert "--data PATH" in proc.stderr and "$TOLLGATE_ROUTER_DATA" in proc.stderr
    assert not (tmp_path / "model").exists()


def test_router_train_names_a_data_path_that_is_not_there(tmp_path) -> None:
    missing = tmp_path / "nope.jsonl"
    proc = run("train", "--out", str(tmp_path / "model"), env=env_without_data(TOLLGATE_ROUTER_DATA=str(missing)))
    assert proc.returncode == 2
    assert f"no training data at {missing} (from $TOLLGATE_ROUTER_DATA)" in proc.stderr


def test_router_train_takes_the_data_from_the_environment_and_data_wins(tmp_path) -> None:
    data = tmp_path / "tiny.jsonl"
    write_training_file(data)
    args = ("train", "--out", str(tmp_path / "model"), "--bits", "12", "--l2", "1e-3", "--no-augment", "--json")
    proc = run(*args, env=env_without_data(TOLLGATE_ROUTER_DATA=str(data)))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert (tmp_path / "model" / "router.npz").is_file()

    proc = run(*args, "--data", str(tmp_path / "absent.jsonl"), env=env_without_data(TOLLGATE_ROUTER_DATA=str(data)))
    assert proc.returncode == 2 and "(from --data)" in proc.stderr


@pytest.mark.skipif(not SHARED_TRAIN.is_file(), reason=f"the shared training data is not at {SHARED_TRAIN}")
def test_the_shipped_model_reproduces_its_heldout_accuracy_on_the_shared_data() -> None:
    manifest = json.loads((MODEL_DIR / MANIFEST_FILE).read_text())
    proc = run("eval", str(SHARED_TRAIN), "--split", "heldout", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr  # the file the model was trained on, so the split is held out
    result = json.loads(proc.stdout)
    assert result["n"] == manifest["data"]["split"]["heldout"]
    assert round(result["accuracy"], 4) == manifest["metrics"]["heldout_text_accuracy"]
