"""`tollgate agent resume|queue` and the factory loader."""

from __future__ import annotations

import argparse
import json
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from tollgate.agent import ParkingQueue, Session, load_factory

from tollgate.cli import agent as agent_cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tollgate")
    agent_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["agent", *argv])


def test_the_command_is_listed_in_the_main_cli():
    from tollgate.cli.main import COMMAND_MODULES

    assert "tollgate.cli.agent" in COMMAND_MODULES


def test_resume_arguments(monkeypatch):
    monkeypatch.setenv("TOLLGATE_BASE_URL", "http://gw/v1")
    args = parse("resume", "--factory", "pkg.mod:make", "--queue", "/q", "--once", "--max-attempts", "7",
                 "--api-key-env", "MY_KEY")
    assert (args.factory, args.queue, args.once, args.max_attempts, args.api_key_env) == \
        ("pkg.mod:make", "/q", True, 7, "MY_KEY")
    assert args.func is agent_cli.cmd_resume
    with pytest.raises(SystemExit):
        parse("resume")  # --factory is required


def test_load_factory_from_a_module_or_a_file(tmp_path):
    assert load_factory("json:dumps") is json.dumps
    path = tmp_path / "my_agents.py"
    path.write_text("def build(session):\n    return 'built ' + session\n")
    assert load_factory(f"{path}:build")("s1") == "built s1"
    for bad in ("no_colon", "nonexistent_module_xyz:f", "json:nothing_here", "json:__doc__",
                f"{tmp_path / 'missing.py'}:f"):
        with pytest.raises(ValueError):
            load_factory(bad)


def _session(session_id: str, **extra) -> Session:
    return Session(session_id=session_id, model="m", messages=[{"role": "user", "content": "x"}],
                   reset_at=datetime.now(timezone.utc) - timedelta(seconds=5), reason="budget_exceeded", **extra)


def test_queue_lists_every_state_as_json_and_as_a_table(tmp_path, capsys):
    queue = ParkingQueue(tmp_path)
    queue.park(_session("waiting", step=3))
    queue.park(_session("refused"))
    queue.fail(queue.get("refused"), reason="key_revoked", message="revoked", status=403)
    (tmp_path / "parked" / "junk.json").write_text("{")
    assert agent_cli.cmd_queue(parse("queue", "--queue", str(tmp_path), "--json")) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [p["session_id"] for p in listing["parked"]] == ["waiting"] and listing["parked"][0]["step"] == 3
    assert listing["failed"][0]["reason"] == "key_revoked" and listing["failed"][0]["status"] == 403
    assert len(listing["quarantined"]) == 1 and listing["done"] == []
    assert agent_cli.cmd_queue(parse("queue", "--queue", str(tmp_path))) == 0
    table = capsys.readouterr().out
    assert "waiting" in table and "key_revoked" in table and "1 parked, 1 failed, 1 quarantined" in table


def test_resume_once_runs_what_is_due_through_the_factory(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TOLLGATE_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    queue = ParkingQueue(tmp_path / "q")
    queue.park(_session("due-1"))
    factory = tmp_path / "factory.py"
    factory.write_text(textwrap.dedent("""
        def factory(session):
            return lambda s: "finished " + s.session_id
    """))
    args = parse("resume", "--queue", str(tmp_path / "q"), "--factory", f"{factory}:factory", "--once",
                 "--spread", "0", "--reset-margin", "0", "--json")
    assert agent_cli.cmd_resume(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip()) == {"session_id": "due-1", "action": "finished", "stop": "completed",
                                                "detail": ""}
    assert "without checking the budget" in captured.err
    assert queue.finished("due-1").output == "finished due-1"


def test_resume_rejects_a_bad_factory(tmp_path, capsys):
    assert agent_cli.cmd_resume(parse("resume", "--queue", str(tmp_path), "--factory", "nope")) == 2
    assert "factory" in capsys.readouterr().err


def test_agent_without_a_subcommand_prints_help(capsys):
    args = parse()
    assert args.func(args) == 2
    assert "resume" in capsys.readouterr().err


_IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
import tollgate.agent
for info in pkgutil.walk_packages(tollgate.agent.__path__, "tollgate.agent."):
    if not info.name.endswith("__main__"):  # running it would start the CLI
        importlib.import_module(info.name)
print(json.dumps({"modules": sorted(sys.modules), "tollgate_file": getattr(sys.modules["tollgate"], "__file__", None)}))
"""


def test_the_toolkit_imports_nothing_but_the_standard_library_and_itself():
    """The toolkit ships alone (distribution tollgate-agent, only `openai`): every one of its modules,
    the CLI included, must load with the standard library and itself, never the gateway's code."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _IMPORT_EVERY_MODULE], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    report = json.loads(out)
    loaded = report["modules"]
    assert "tollgate.agent.cli" in loaded and "tollgate.agent.loop" in loaded  # the walk really imported them
    top_level = {m.split(".")[0] for m in loaded}
    third_party = {m for m in top_level if m not in sys.stdlib_module_names and not m.startswith("_")} - {"tollgate"}
    assert third_party == set()  # no server dependencies; not even `openai` until the caller passes a client
    assert {m for m in loaded if m.startswith("tollgate") and not m.startswith("tollgate.agent")} == {"tollgate"}
    assert report["tollgate_file"] is None  # `tollgate` is a namespace package shared by both distributions
