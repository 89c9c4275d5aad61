"""`tollgate agent …`: resume parked agent sessions, and look inside the parking queue.

Client-side commands: they talk to a gateway over HTTP like any agent does and import
nothing from the server. They live in the toolkit so that an install of `tollgate-agent`
alone can run the resumer: `tollgate-agent resume …` or `python -m tollgate.agent resume …`.
With the gateway installed, `tollgate agent …` is the same (`tollgate.cli.agent` registers
these parsers).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from tollgate.agent.factory import load_factory
from tollgate.agent.queue import ParkingQueue, default_queue_dir, format_reset
from tollgate.agent.resume import Resumer
from tollgate.agent.timefmt import format_instant
from tollgate.agent.usage import UsageClient

_RESUME_HELP = """\
Wake every parked session after its budget window resets, check GET /v1/usage first,
and continue the conversation through your factory. Runs in the foreground until
SIGTERM/Ctrl-C (or, with --once, handles what is due now and exits: suited to cron).

The factory is `package.module:callable` or `path/to/file.py:callable`; it is called
with the parked tollgate.agent.Session and returns an Agent (or anything with
.resume(session), or a callable taking the session)."""


def register(subparsers: Any) -> None:
    agent = subparsers.add_parser(
        "agent", help="park-and-resume for budgeted agents (client side)",
        description="Park-and-resume for agents whose key budget ran out: see docs/agent.md.",
    )
    sub = agent.add_subparsers(dest="agent_command", metavar="SUBCOMMAND")
    agent.set_defaults(func=lambda args: _usage_error(agent))

    resume = sub.add_parser("resume", help="resume parked sessions after their budget resets",
                            description=_RESUME_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _queue_argument(resume)
    resume.add_argument("--factory", required=True, metavar="MODULE:CALLABLE",
                        help="builds the agent for a parked session")
    resume.add_argument("--once", action="store_true", help="resume what is due now, then exit")
    resume.add_argument("--base-url", default=os.environ.get("TOLLGATE_BASE_URL") or os.environ.get("OPENAI_BASE_URL"),
                        help="gateway URL for the budget check, e.g. http://localhost:8080/v1 "
                             "(default: $TOLLGATE_BASE_URL, then $OPENAI_BASE_URL)")
    resume.add_argument("--api-key-env", default="TOLLGATE_API_KEY", metavar="NAME",
                        help="environment variable holding the sk_ key (default: TOLLGATE_API_KEY)")
    resume.add_argument("--max-attempts", type=int, default=5, metavar="N",
                        help="re-parks before a session is failed (default: 5)")
    resume.add_argument("--forgive-progress", action="store_true",
                        help="a resume that got work done starts the attempt count afresh (long jobs)")
    resume.add_argument("--spread", type=float, default=1.0, metavar="SECONDS",
                        help="jitter per due session: N sessions due together start over N x this (default: 1)")
    resume.add_argument("--reset-margin", type=float, default=1.0, metavar="SECONDS",
                        help="wait this long past the reset time before waking (default: 1)")
    resume.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS",
                        help="how often to look for new sessions (default: 5)")
    resume.add_argument("--exit-when-empty", action="store_true", help="exit once no session is parked")
    resume.add_argument("--json", action="store_true", help="print each outcome as a JSON line")
    resume.set_defaults(func=cmd_resume)

    queue = sub.add_parser("queue", help="list parked, failed and quarantined sessions",
                           description="List the parking queue: parked sessions with their reset time, "
                                       "failed ones with their reason, quarantined files, finished count.")
    _queue_argument(queue)
    queue.add_argument("--json", action="store_true", help="print JSON instead of a table")
    queue.set_defaults(func=cmd_queue)


def _queue_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", default=str(default_queue_dir()), metavar="DIR",
                        help="queue directory (default: $TOLLGATE_AGENT_QUEUE or ~/.local/state/tollgate/agent-queue)")


def _usage_error(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def cmd_resume(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        factory = load_factory(args.factory)
    except ValueError as exc:
        print(f"tollgate agent resume: {exc}", file=sys.stderr)
        return 2
    api_key = os.environ.get(args.api_key_env)
    usage = UsageClient(args.base_url, api_key) if args.base_url and api_key else None
    if usage is None:
        print("tollgate agent resume: no --base-url or no key in $" + args.api_key_env +
              "; resuming without checking the budget first", file=sys.stderr)
    resumer = Resumer(ParkingQueue(args.queue), factory, usage=usage, max_attempts=args.max_attempts,
                      spread_per_session=args.spread, reset_margin=args.reset_margin, poll_interval=args.poll_interval,
                      forgive_progress=args.forgive_progress)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.once:
            for outcome in resumer.run_once(stop):
                _print_outcome(outcome, args.json)
        else:
            resumer.run_forever(stop, exit_when_empty=args.exit_when_empty)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _print_outcome(outcome: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"session_id": outcome.session_id, "action": outcome.action, "stop": outcome.stop,
                          "detail": outcome.detail}))
    else:
        print(f"{outcome.session_id}\t{outcome.action}\t{outcome.stop or '-'}\t{outcome.detail}")


def cmd_queue(args: argparse.Namespace) -> int:
    queue = ParkingQueue(args.queue)
    parked, failed, quarantined = queue.parked(), queue.failures(), queue.quarantined()
    done = queue.finished_all()
    if args.json:
        print(json.dumps({
            "directory": str(queue.directory),
            "parked": [_session_summary(s) for s in parked],
            "failed": [{**_session_summary(f.session), "reason": f.reason, "message": f.message,
                        "status": f.status, "failed_at": format_instant(f.failed_at)} for f in failed],
            "quarantined": [{"path": str(q.path), "reason": q.reason.strip()} for q in quarantined],
            "done": [{**_session_summary(d.session), "stop": d.stop, "finished_at": format_instant(d.finished_at)}
                     for d in done],
        }, indent=2))
        return 0
    rows = [("STATE", "SESSION", "PARENT", "MODEL", "STEP", "ATTEMPTS", "RESETS_AT", "REASON")]
    rows += [("parked", s.session_id, s.parent_id or "-", s.model, str(s.step), str(s.attempts), format_reset(s),
              s.reason or "-") for s in parked]
    rows += [("failed", f.session.session_id, f.session.parent_id or "-", f.session.model, str(f.session.step),
              str(f.session.attempts), "-", f.reason) for f in failed]
    rows += [("quarantined", q.path.name, "-", "-", "-", "-", "-", q.reason.strip()[:80]) for q in quarantined]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(parked)} parked, {len(failed)} failed, {len(quarantined)} quarantined, {len(done)} finished "
          f"in {queue.directory}")
    return 0


def _session_summary(session: Any) -> dict[str, Any]:
    return {
        "session_id": session.session_id, "parent_id": session.parent_id, "model": session.model,
        "step": session.step, "attempts": session.attempts, "resumes": session.resumes,
        "messages": len(session.messages), "waiting_on": session.waiting_on,
        "reset_at": format_instant(session.reset_at) if session.reset_at else None,
        "reason": session.reason, "cost_nanos": session.cost_nanos,
    }


def main(argv: list[str] | None = None) -> int:
    """`tollgate-agent …` / `python -m tollgate.agent …`: the same commands without the gateway's CLI."""
    parser = argparse.ArgumentParser(prog="tollgate")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(["agent", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
