"""The parking queue on disk: dedup, overflow, quarantine, end states, locks, many processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tollgate.agent import CorruptEntry, ParkingQueue, QueueFull, Session
from tollgate.agent.queue import file_name

ROOT = Path(__file__).resolve().parents[2]
RESET = datetime(2026, 11, 29, 15, tzinfo=timezone.utc)


def session(session_id: str, *, step: int = 1, parent: str | None = None, **extra) -> Session:
    return Session(session_id=session_id, model="m", parent_id=parent, step=step, reset_at=RESET,
                   messages=[{"role": "user", "content": f"task of {session_id}"}] +
                            [{"role": "assistant", "content": f"step {i}"} for i in range(step)], **extra)


def test_parking_again_updates_the_one_entry(tmp_path):
    queue = ParkingQueue(tmp_path)
    queue.park(session("a", step=1))
    queue.park(session("a", step=4))
    assert len(queue) == 1
    assert queue.get("a").step == 4 and len(queue.get("a").messages) == 5
    assert queue.get("a").parked_at is not None
    assert [p.name for p in (tmp_path / "parked").iterdir()] == ["a.json"]


def test_overflow_refuses_new_sessions_and_keeps_every_parked_one(tmp_path, caplog):
    queue = ParkingQueue(tmp_path, max_entries=2)
    queue.park(session("a"))
    queue.park(session("b"))
    with caplog.at_level(logging.ERROR), pytest.raises(QueueFull) as refused:
        queue.park(session("c"))
    assert refused.value.session_id == "c" and refused.value.capacity == 2
    assert "'c'" in caplog.text and "full" in caplog.text
    assert {s.session_id for s in queue.parked()} == {"a", "b"}
    queue.park(session("b", step=7))  # an update at capacity is fine
    assert queue.get("b").step == 7
    queue.remove("a")
    queue.park(session("c"))  # room again
    assert {s.session_id for s in queue.parked()} == {"b", "c"}


@pytest.mark.parametrize("content", [b"", b"{\"format\": \"tollgate.agent.session/1\", \"sess", b"\x00\xff" * 20,
                                     b"[]", b'{"format": "other"}'])
def test_corrupt_entries_are_quarantined_with_a_warning_and_the_rest_still_read(tmp_path, caplog, content):
    queue = ParkingQueue(tmp_path)
    queue.park(session("good-1"))
    queue.park(session("good-2"))
    (tmp_path / "parked" / "bad.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="tollgate.agent.queue"):
        parked = queue.parked()
    assert [s.session_id for s in parked] == ["good-1", "good-2"]
    assert not (tmp_path / "parked" / "bad.json").exists()
    [quarantined] = queue.quarantined()
    assert quarantined.path.read_bytes() == content  # kept as found, for a human
    assert "bad.json" in quarantined.reason
    assert "quarantined" in caplog.text and "bad.json" in caplog.text
    assert queue.parked() == parked  # and it is not reported twice


def test_a_file_whose_name_does_not_match_its_session_is_quarantined(tmp_path):
    queue = ParkingQueue(tmp_path)
    (tmp_path / "parked" / "copy-of-a.json").write_bytes(session("a").to_json())
    assert queue.parked() == []
    assert "does not match" in queue.quarantined()[0].reason


def test_unsafe_ids_get_hashed_file_names(tmp_path):
    queue = ParkingQueue(tmp_path)
    for weird in ("../../etc/passwd", "a/b", ".hidden", "x" * 180, "ünïcode id", "s.json"):
        queue.park(session(weird))
        assert queue.get(weird).session_id == weird
        assert "/" not in file_name(weird) and not file_name(weird).startswith(".")
    assert len(queue) == 6 and all(p.parent == tmp_path / "parked" for p in (tmp_path / "parked").iterdir())


def test_fail_and_finish_move_the_session_out_of_parked(tmp_path):
    queue = ParkingQueue(tmp_path)
    queue.park(session("f"))
    queue.park(session("d"))
    queue.fail(queue.get("f"), reason="key_revoked", message="revoked", kind="auth", status=403)
    queue.finish(queue.get("d"), stop="completed", output="the answer")
    assert queue.parked() == []
    [failure] = queue.failures()
    assert (failure.session.session_id, failure.reason, failure.status, failure.kind) == \
        ("f", "key_revoked", 403, "auth")
    assert queue.finished("d").output == "the answer" and queue.finished("d").stop == "completed"
    assert queue.failure("d") is None and queue.finished("f") is None
    requeued = queue.requeue_failed("f")
    assert requeued.attempts == 0 and queue.failures() == [] and queue.get("f") is not None


def test_done_is_bounded_but_keeps_results_a_parked_parent_waits_for(tmp_path):
    queue = ParkingQueue(tmp_path, max_done=2)
    queue.park(session("parent", waiting_on=["child"]))
    for name in ("child", "x", "y", "z"):
        queue.park(session(name))
        queue.finish(queue.get(name), stop="completed", output=name)
        time.sleep(0.01)  # distinct mtimes, so "oldest" is well defined
    kept = {f.session.session_id for f in queue.finished_all()}
    assert kept == {"child", "z"}


def test_stale_temp_files_are_swept_but_fresh_ones_are_left(tmp_path):
    queue = ParkingQueue(tmp_path)
    stale = tmp_path / "parked" / ".tmp-a.json.123.abcd"
    fresh = tmp_path / "parked" / ".tmp-b.json.456.ef01"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert queue.parked() == []
    assert not stale.exists() and fresh.exists()


def test_claims_exclude_each_other_and_are_released(tmp_path):
    queue = ParkingQueue(tmp_path)
    first = queue.claim("s")
    assert first is not None
    assert queue.claim("s") is None
    first.release()
    again = queue.claim("s")
    assert again is not None
    again.release()


def test_a_claim_held_by_a_killed_process_is_free_again(tmp_path):
    code = ("import sys, time; from tollgate.agent import ParkingQueue; "
            "lock = ParkingQueue(sys.argv[1]).claim('s'); print('held' if lock else 'busy', flush=True); "
            "time.sleep(300)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert ParkingQueue(tmp_path).claim("s") is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    lock = ParkingQueue(tmp_path).claim("s")
    assert lock is not None
    lock.release()


def _park_many(directory: str, worker: int, count: int) -> None:
    queue = ParkingQueue(directory)
    for i in range(count):
        # Half the ids are shared by every worker: concurrent updates of one session.
        name = f"shared-{i % 5}" if i % 2 else f"w{worker}-{i}"
        queue.park(session(name, step=i + 1))
        if i % 3 == 0:
            queue.parked()  # readers run alongside the writers and must never see a torn file


def test_many_processes_parking_at_once_leave_one_valid_entry_per_session(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_park_many, args=(str(tmp_path), w, 20)) for w in range(4)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    queue = ParkingQueue(tmp_path)
    parked = queue.parked()
    expected = {f"shared-{i}" for i in range(5)} | {f"w{w}-{i}" for w in range(4) for i in range(0, 20, 2)}
    assert {s.session_id for s in parked} == expected
    assert queue.quarantined() == []
    assert not [p for p in (tmp_path / "parked").iterdir() if p.name.startswith(".tmp-")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=200))
def test_no_byte_string_in_the_queue_can_crash_a_reader(tmp_path_factory, garbage):
    directory = tmp_path_factory.mktemp("q")
    queue = ParkingQueue(directory)
    queue.park(session("ok"))
    (directory / "parked" / "junk.json").write_bytes(garbage)
    (directory / "failed" / "junk.json").write_bytes(garbage)
    (directory / "done" / "junk.json").write_bytes(garbage)
    assert [s.session_id for s in queue.parked()] == ["ok"]
    assert queue.failures() == [] and queue.finished_all() == []
    assert len(queue.quarantined()) == 3


def test_reading_back_a_corrupt_entry_by_id_quarantines_it(tmp_path):
    queue = ParkingQueue(tmp_path)
    queue.park(session("a"))
    (tmp_path / "parked" / "a.json").write_text("{")
    assert queue.get("a") is None
    assert len(queue.quarantined()) == 1
    with pytest.raises(CorruptEntry):
        Session.from_json(queue.quarantined()[0].path.read_bytes())


def test_pathological_files_do_not_crash_the_listing(tmp_path):
    queue = ParkingQueue(tmp_path)
    queue.park(session("ok"))
    (tmp_path / "parked" / "deep.json").write_text("[" * 200_000)
    (tmp_path / "parked" / "dir.json").mkdir()
    assert [s.session_id for s in queue.parked()] == ["ok"]
    assert [q.path.name.split(".json")[0] for q in queue.quarantined()] == ["parked-deep"]
