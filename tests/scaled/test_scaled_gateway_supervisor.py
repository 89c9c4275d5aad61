"""The supervisor of `--workers N` (serve/workers.py), in a process of its own with small real workers.

Each worker here writes a file named after its slot and pid, says it is ready, and waits for SIGTERM
(bounded): the supervisor's own behaviour is what is checked, with real fork, signals and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import ROOT

PROGRAM = r"""
import os, signal, sys, time
from pathlib import Path
from tollgate.serve.workers import Supervisor, bind

out, mode = Path(sys.argv[1]), sys.argv[2]

def main(start):
    if mode == "fail" and start.slot == 1:
        for _ in range(600):  # once slot 0 is up, so that what it does when stopped is seen
            if any(p.name.startswith("0-") for p in out.iterdir()):
                break
            time.sleep(0.05)
        return 3  # a start-up that fails (a database that refuses, say)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    me = out / f"{start.slot}-{os.getpid()}"
    me.write_text("restarted" if start.restarted else "first")
    start.ready()
    got = signal.sigtimedwait({signal.SIGTERM}, 60)
    (out / f"{me.name}.stopped").write_text("" if got else "timeout")
    return 0 if got else 1

sys.exit(Supervisor(2, bind("127.0.0.1", 0), main).run())
"""


def start(tmp_path: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PROGRAM, str(tmp_path), mode], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def workers(tmp_path: Path) -> dict[str, list[tuple[int, str]]]:
    """slot -> [(pid, "first"/"restarted")] of every worker started so far."""
    found: dict[str, list[tuple[int, str]]] = {}
    for path in tmp_path.iterdir():
        if "." not in path.name:
            slot, pid = path.name.split("-")
            found.setdefault(slot, []).append((int(pid), path.read_text()))
    return found


def wait_for(check, what: str, tries: int = 400):
    for _ in range(tries):
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def test_a_worker_that_dies_is_restarted_and_sigterm_stops_every_worker(tmp_path):
    proc = start(tmp_path, "serve")
    try:
        first = wait_for(lambda: (w := workers(tmp_path)) and len(w) == 2 and w, "two workers")
        assert sorted(first) == ["0", "1"] and all(kind == "first" for [(_, kind)] in first.values())
        [(victim, _)] = first["1"]
        os.kill(victim, signal.SIGKILL)

        again = wait_for(lambda: len(workers(tmp_path)["1"]) == 2 and workers(tmp_path)["1"], "slot 1 restarted")
        [(new_pid, kind)] = [(pid, kind) for pid, kind in again if pid != victim]
        assert kind == "restarted"
        assert workers(tmp_path)["0"] == first["0"]  # the other worker was left alone

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        [(zero, _)] = first["0"]
        for pid in (zero, new_pid):  # each got the SIGTERM and finished on its own
            assert (tmp_path / f"{'0' if pid == zero else '1'}-{pid}.stopped").read_text() == ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_worker_that_fails_to_start_stops_them_all_with_exit_1(tmp_path):
    proc = start(tmp_path, "fail")
    try:
        assert proc.wait(timeout=30) == 1
        output = proc.stdout.read()
        assert "worker 1" in output and "failed to start (exit 3)" in output
        started = workers(tmp_path)
        assert list(started) == ["0"]  # slot 1 never started, and was not restarted over and over
        [(pid, _)] = started["0"]
        assert (tmp_path / f"0-{pid}.stopped").read_text() == ""  # slot 0 was stopped, not left behind
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_workers_stop_when_their_supervisor_is_killed(tmp_path):
    proc = start(tmp_path, "serve")
    try:
        first = wait_for(lambda: (w := workers(tmp_path)) and len(w) == 2 and w, "two workers")
        os.kill(proc.pid, signal.SIGKILL)  # the supervisor alone: its workers are orphans now
        proc.wait(timeout=30)
        for slot, [(pid, _)] in first.items():  # each got SIGTERM from the kernel (PR_SET_PDEATHSIG) and stopped
            stopped = tmp_path / f"{slot}-{pid}.stopped"
            assert wait_for(stopped.exists, f"worker {slot} stopped")
            assert stopped.read_text() == ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
