"""Running the gateway under uvicorn, and the start-up banner."""

from __future__ import annotations

import logging
import sys

from tollgate import __version__
from tollgate.config.schema import Config
from tollgate.server.app import create_app
from tollgate.server.services import Services


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
    import uvicorn

    if config.server.workers > 1 and config.server.budget_store == "embedded":
        print(
            "tollgate: server.workers > 1 needs a shared budget store: the embedded one keeps budget counters in "
            "one process. Set server.budget_store to a redis:// URL, or run one worker.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    app = create_app(config, _announce(config))
    # proxy_headers=False: nothing here reads the client address or scheme, so uvicorn's
    # X-Forwarded-* middleware would only add a layer to every request.
    uvicorn.run(
        app, host=config.server.host, port=config.server.port, loop=loop, http="httptools", lifespan="on",
        access_log=False, server_header=False, date_header=False, log_level="warning",
        timeout_graceful_shutdown=30, backlog=2048, proxy_headers=False,
    )
    return 0
