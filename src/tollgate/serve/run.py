"""Running the gateway (the built-in HTTP/1.1 server, or uvicorn) and the start-up banner."""

from __future__ import annotations

import asyncio
import resource
import logging
import signal
import sys
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from tollgate.config.schema import Config, HTTPLimits
from tollgate.http.app import App
from tollgate.ledger.journal import JournalBusy
from tollgate.serve.app import create_app
from tollgate.serve.services import Services
from tollgate.version import __version__


def _announce(config: Config) -> callable:
    def announce(services: Services, admin_token: str | None) -> None:
        host, port = config.server.host, config.server.port
        base = f"http://{host}:{port}"
        models = ", ".join(m.id for m in services.registry.models)
        lines = [
            f"tollgate {__version__} listening on {base}",
            f"  database: {config.server.database}",
            f"  models:   {models}",
        ]
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


def serve(config: Config) -> int:
    if config.server.workers > 1 and config.server.budget_store == "embedded":
        print(
            "tollgate: server.workers > 1 needs a budget store shared by the workers, and the embedded one keeps "
            "budget counters in one process (a shared redis:// store is planned, not available yet): run one worker.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config, _announce(config))
    if config.server.http == "uvicorn":
        return _serve_uvicorn(app, config)
    return _run(_serve_lean(app, config))


def _run(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _serve_lean(app: App, config: Config) -> int:
    """The built-in HTTP/1.1 server: start, serve until SIGTERM/SIGINT, finish what is in flight, stop."""
    from tollgate.http.server import Server

    try:
        await app.startup()
    except JournalBusy as exc:  # an operator's mistake, not a fault: the message says it all
        print(f"tollgate: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        logging.getLogger("tollgate.serve").exception("start-up failed")
        print(f"tollgate: start-up failed: {exc}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    server = Server(app, _within_descriptors(config.server.limits))
    try:
        listener = await loop.create_server(server.protocol, config.server.host, config.server.port, backlog=2048,
                                            reuse_address=True)
    except OSError as exc:
        print(f"tollgate: cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}", file=sys.stderr)
        await app.shutdown()
        return 1
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    listener.close()
    await server.stop(grace=30)
    await app.shutdown()
    return 0


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


def _serve_uvicorn(app: App, config: Config) -> int:
    import uvicorn

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    # proxy_headers=False: the client address must be the socket's peer (the operator token's back-off
    # counts failures per address), never what a client writes in X-Forwarded-For.
    uvicorn.run(
        app, host=config.server.host, port=config.server.port, loop=loop, http="httptools", lifespan="on",
        access_log=False, server_header=False, date_header=False, log_level="warning",
        timeout_graceful_shutdown=30, backlog=2048, proxy_headers=False,
        timeout_keep_alive=config.server.limits.keepalive_timeout,
        limit_concurrency=_within_descriptors(config.server.limits).max_connections,
    )
    return 0
