"""Running the gateway (uvicorn, with the limits of `[server.limits]`) and the start-up banner."""

from __future__ import annotations

import asyncio
import resource
import logging
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from tollgate.config.scale import scale_problem
from tollgate.config.schema import Config, HTTPLimits
from tollgate.domain.secrets import redacted_url
from tollgate.http.app import App
from tollgate.ledger.journal import JournalBusy
from tollgate.serve.app import create_app
from tollgate.serve.services import Services
from tollgate.serve.setup import prepare
from tollgate.serve.workers import Supervisor, WorkerStart, bind
from tollgate.version import __version__


BACKLOG = 2048  # connections the kernel queues before a worker accepts them


def _announce(config: Config) -> Callable[[Services, str | None], None]:
    def announce(services: Services, admin_token: str | None) -> None:
        host, port = config.server.host, config.server.port
        base = f"http://{host}:{port}"
        models = ", ".join(m.id for m in services.registry.models)
        lines = [
            f"tollgate {__version__} listening on {base}",
            f"  database: {redacted_url(config.server.database)}",
            f"  ledger:   {redacted_url(config.server.redis) + ' (shared)' if config.server.redis else 'embedded'}",
            f"  models:   {models}",
        ]
        if config.server.workers > 1:
            lines.insert(4, f"  workers:  {config.server.workers} processes on one port")
        if admin_token:
            lines += [
                "",
                f"  Operator token (shown once, store it): {admin_token}",
                "  Create an account with a subscription and a key:",
                f"    curl -s {base}/admin/accounts -H 'Authorization: Bearer {admin_token}' -d '{{\"name\": \"demo\"}}'",
                "  or run: tollgate quickstart",
            ]
        else:
            lines += [
                "",
                "  Try it (tollgate quickstart prints a key):",
                f"    curl -s {base}/v1/chat/completions -H \"Authorization: Bearer $TOLLGATE_KEY\" "
                "-H 'Content-Type: application/json' "
                f"-d '{{\"model\": \"{services.registry.models[0].id if services.registry.models else 'auto'}\", "
                "\"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}'",
            ]
        print("\n".join(lines), flush=True)

    return announce


def serve(config: Config, workers_source: str | None = None) -> int:
    """Serve until SIGTERM/SIGINT: in this process, or in `server.workers` processes on one port.

    `workers_source` names where a worker count set after the config was loaded came from (`--workers 2`).
    """
    problem = scale_problem(config.server, workers_source or f"server.workers = {config.server.workers}")
    if problem is not None:  # config.load checked the file; this is for values set after it (--workers)
        print(f"tollgate: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.server.workers > 1:
        return _serve_workers(config)
    return _run(_serve(create_app(config, _announce(config)), config))


def _serve_workers(config: Config) -> int:
    """Prepare the database once, bind the port once, then fork the workers (serve/workers.py)."""
    try:
        token = _run(prepare(config))
    except Exception as exc:
        logging.getLogger("tollgate.serve").exception("start-up failed")
        print(f"tollgate: start-up failed: {exc}", file=sys.stderr)
        return 1
    try:
        sock = bind(config.server.host, config.server.port, BACKLOG)
    except OSError as exc:
        print(f"tollgate: cannot listen on {config.server.host}:{config.server.port}: {exc}", file=sys.stderr)
        return 1
    config = replace(config, server=replace(config.server, port=sock.getsockname()[1]))  # port 0: the one taken
    announce = _announce(config)

    def worker(start: WorkerStart) -> int:
        first = start.slot == 0 and not start.restarted  # the banner (and a new operator token) once
        app = create_app(config, announce if first else None, token=token, worker=start.slot)
        return _run(_serve(app, config, sockets=[start.sock], ready=start.ready))

    return Supervisor(config.server.workers, sock, worker).run()


def _run(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _serve(app: App, config: Config, sockets: list[socket.socket] | None = None,
                 ready: Callable[[], None] | None = None) -> int:
    """Start the app, serve it with uvicorn until SIGTERM/SIGINT, let what is in flight finish, stop the app.

    uvicorn speaks HTTP/1.1 with the limits of `[server.limits]` (http/uvicorn_limits.py). The app's
    start-up runs here, before the socket opens, so that a refusal to start (another gateway owns the
    database) is one clear line and exit 1; its shutdown runs after the last request, flushing the ledger.
    A worker of `--workers N` serves the supervisor's `sockets` and says `ready` once its app has started.
    """
    import uvicorn

    from tollgate.http.uvicorn_limits import limited_protocol

    try:
        await app.startup()
    except JournalBusy as exc:  # an operator's mistake, not a fault: the message says it all
        print(f"tollgate: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        logging.getLogger("tollgate.serve").exception("start-up failed")
        print(f"tollgate: start-up failed: {exc}", file=sys.stderr)
        return 1
    if ready is not None:
        ready()
    limits = _within_descriptors(config.server.limits)
    # proxy_headers=False: the client address must be the socket's peer (the operator token's back-off
    # counts failures per address), never what a client writes in X-Forwarded-For.
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.server.host, port=config.server.port, http=limited_protocol(limits), ws="none",
        lifespan="off", access_log=False, server_header=False, date_header=False, log_level="warning",
        timeout_graceful_shutdown=30, backlog=BACKLOG, proxy_headers=False, timeout_keep_alive=limits.keepalive_timeout,
    ))
    # uvicorn handles SIGTERM/SIGINT while it serves, then restores the handlers it found and raises
    # the signal again: with these (ignoring it), that no longer ends the process before the app's
    # shutdown has written every usage record.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        await server.serve(sockets=sockets)
    finally:
        await app.shutdown()
    return 0 if server.started else 1


# Descriptors kept for everything that is not a client connection: the database and its
# side files, the journal, upstream connections, the model files.
_SPARE_DESCRIPTORS = 256


def _within_descriptors(limits: HTTPLimits) -> HTTPLimits:
    """The connection cap, lowered to what this process may open (its soft limit raised as far as allowed).

    Past the descriptor limit `accept` fails and clients see resets; under the cap they get a 503.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limits.max_connections + _SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < want:
        raised = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft - _SPARE_DESCRIPTORS < limits.max_connections:
        cap = max(1, soft - _SPARE_DESCRIPTORS)
        logging.getLogger("tollgate.serve").warning(
            "server.limits.max_connections lowered from %d to %d: this process may open %d files",
            limits.max_connections, cap, soft)
        return replace(limits, max_connections=cap)
    return limits
