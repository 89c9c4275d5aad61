"""`tollgate serve --workers N`: N processes serving one port, kept alive by a small supervisor.

uvicorn's own multi-process mode spawns fresh interpreters that import the app by name and run
uvicorn's start-up, not ours (the app's start-up before the socket opens, our protocol's limits, a
clean exit on a refusal to start). So the supervisor here is small and plain POSIX:

- it binds the socket once and forks the workers, which all accept on it (the kernel hands each
  connection to one of them); the parent runs no event loop and holds no connection of its own;
- what must happen once (migrations, the config's plans, the operator token) happened before,
  in `serve/setup.py` `prepare`; each worker then opens its own store pool, Redis client and
  journal slot, so nothing with a socket or a lock crosses the fork;
- a worker that fails during its start-up stops them all (a bad database URL would fail the same
  way in every restart); one that dies later is restarted, with a growing pause if it keeps dying;
- SIGTERM or SIGINT is forwarded as SIGTERM (each worker finishes what is in flight and writes its
  ledger); a second one as SIGINT, which makes uvicorn stop waiting for slow connections.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tollgate.serve")



@dataclass(frozen=True)
class WorkerStart:
    """What a worker process starts with; it returns its exit code."""

    slot: int  # 0 .. N-1, the same for a restarted worker
    sock: socket.socket  # the listening socket
    ready: Callable[[], None]  # call once the app has started: a worker that exits before is a failed start
    restarted: bool  # an earlier worker in this slot died


WorkerMain = Callable[[WorkerStart], int]

FIRST_PAUSE = 0.5  # before restarting a worker that died
LONGEST_PAUSE = 30.0  # the pause doubles while a worker dies within STEADY seconds of its start, up to this
STEADY = 10.0


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket every worker accepts on (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Worker:
    slot: int
    pid: int
    ready_fd: int  # the read end of the pipe the worker writes one byte to once it serves
    started: float
    ready: bool = False


class Supervisor:
    """Forks `count` workers on `sock`, restarts the ones that die, stops them all on SIGTERM/SIGINT."""

    def __init__(self, count: int, sock: socket.socket, main: WorkerMain,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.count, self.sock, self.main, self.clock = count, sock, main, clock
        self.workers: dict[int, _Worker] = {}  # by pid
        self.pauses = [FIRST_PAUSE] * count
        self.due: dict[int, float] = {}  # slot -> when to restart it
        self.starts = [0] * count
        self.stops = 0  # stop signals received
        self.forwarded = 0  # stop signals forwarded to the workers
        self.exit_code = 0

    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        previous = {sig: signal.signal(sig, self._on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        try:
            for slot in range(self.count):
                self._spawn(slot)
            while self.workers or (self.due and not self.stops):
                self._wait(wake_r)
                self._forward()
                self._reap()
                self._restart_due()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
            self.sock.close()
        return self.exit_code

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stops += 1

    def _wait(self, wake_r: int) -> None:
        """Until a signal, a worker's readiness, or the next restart is due."""
        timeout = None
        if self.due and not self.stops:
            timeout = max(0.0, min(self.due.values()) - self.clock())
        fds = [wake_r, *(w.ready_fd for w in self.workers.values() if not w.ready)]
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            return
        for fd in readable:
            if fd == wake_r:
                while _read(wake_r):
                    pass
                continue
            for worker in self.workers.values():
                if worker.ready_fd == fd and _read(fd):
                    worker.ready = True

    def _forward(self) -> None:
        while self.forwarded < self.stops:
            sig = signal.SIGTERM if self.forwarded == 0 else signal.SIGINT
            self.forwarded += 1
            for worker in self.workers.values():
                _kill(worker.pid, sig)

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            os.close(worker.ready_fd)
            code = os.waitstatus_to_exitcode(status)
            if self.stops:
                continue
            if not worker.ready:
                log.error("worker %d (pid %d) failed to start (exit %s): stopping every worker", worker.slot, pid, code)
                self.exit_code = 1
                self.stops += 1  # as if the operator asked: the others finish and stop
                self._forward()
                continue
            lived = self.clock() - worker.started
            pause = self.pauses[worker.slot] = (min(self.pauses[worker.slot] * 2, LONGEST_PAUSE) if lived < STEADY
                                                else FIRST_PAUSE)
            log.warning("worker %d (pid %d) exited (%s): restarting it in %.1fs", worker.slot, pid, _how(code), pause)
            self.due[worker.slot] = self.clock() + pause

    def _restart_due(self) -> None:
        if self.stops:
            self.due.clear()
            return
        now = self.clock()
        for slot, when in sorted(self.due.items()):
            if when <= now:
                del self.due[slot]
                self._spawn(slot)

    def _spawn(self, slot: int) -> None:
        ready_r, ready_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's loop
            code = 1
            try:
                os.close(ready_r)
                _child_signals(parent)
                code = self.main(WorkerStart(slot, self.sock, lambda: _say_ready(ready_w), self.starts[slot] > 0))
            except BaseException:
                log.exception("worker %d failed", slot)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(ready_w)
        self.starts[slot] += 1
        self.workers[pid] = _Worker(slot, pid, ready_r, self.clock())


def _child_signals(parent: int) -> None:
    """Undo the supervisor's handlers, and end with the supervisor: a SIGTERM when it dies (Linux)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _say_ready(fd: int) -> None:
    try:
        os.write(fd, b"r")
    finally:
        os.close(fd)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 512)
    except BlockingIOError:
        return b""


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _how(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit {code}"
