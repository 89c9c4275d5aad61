"""The OpenAPI 3.1 document of the whole HTTP API, served at `GET /openapi.json` (public).

Every route the gateway mounts is listed in `ROUTES`, and tests/integration/test_openapi.py checks
both ways against the mounted router: a route mounted without its entry here (or an entry whose
route is gone) fails the test. An entry says who may call it (`auth`), which error shape it answers
in (`shape`: OpenAI's, Anthropic's or the management envelope; http/errors.py), its request and
answer schemas (http/openapi_schemas.py; lighter for the management and operator planes, whose
answers are all the `{"success": true, "data": ...}` envelope: docs/api.md) and its statuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from tollgate.http.openapi_schemas import (
    ANSWER_HEADERS,
    ERROR_TEXT,
    HEADERS,
    INT,
    MONEY,
    RESPONSES,
    SCHEMAS,
    SECURITY_SCHEMES,
    STR,
    maybe,
    obj,
    ref,
)
from tollgate.http.request import Request, Router, Send, send_bytes
from tollgate.version import __version__

SK, MK, OP, PUBLIC = "apiKey", "managementKey", "operatorToken", None
DATA_ERRORS = ("400", "401", "403", "404", "413", "429", "500", "502", "503", "504")
PLANE_ERRORS = ("400", "401", "404", "409", "413", "429", "500")
SSE = {"text/event-stream": {"schema": {"type": "string", "description": "server-sent events, as the API streams"}}}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    auth: str | None = MK
    shape: str = "envelope"
    body: dict | None = None
    answer: dict | None = None  # a schema; the envelope of the plane when None
    status: str = "200"
    stream: bool = False  # also answers `text/event-stream` when the request asks for a stream
    content: str = "application/json"
    tag: str = "management"


def _data(method: str, path: str, summary: str, body: str | None, answer: str, *, stream: bool = False,
          shape: str = "openai", auth: str | None = SK) -> Route:
    return Route(method, path, summary, auth, shape, ref(body) if body else None, ref(answer), stream=stream,
                 tag="data plane")


def _op(method: str, path: str, summary: str, body: dict | None = None, status: str = "200") -> Route:
    return Route(method, path, summary, OP, body=body, status=status, tag="operator")


def _mk(method: str, path: str, summary: str, body: dict | None = None, status: str = "200") -> Route:
    return Route(method, path, summary, MK, body=body, status=status)


_NAME = obj({"name": STR})
_GRACE = obj({"graceSeconds": {**INT, "description": "how long the old secret keeps working (default 3600)"}})
_PLAN = obj({"slug": STR, "name": STR, "priceMonthly": MONEY, "periodDays": INT, "window": STR,
             "budgetPerWindow": MONEY, "rpm": INT, "tpm": INT, "models": maybe({"type": "array", "items": STR})})

ROUTES: tuple[Route, ...] = (
    # -- data plane (consumption keys) ---------------------------------------------------------
    _data("POST", "/v1/chat/completions", "Chat completion (any model, or `auto`), within the key's budget",
          "ChatCompletionRequest", "ChatCompletion", stream=True),
    _data("POST", "/v1/completions", "Text completion", "CompletionRequest", "Completion", stream=True),
    _data("POST", "/v1/embeddings", "Embeddings", "EmbeddingRequest", "EmbeddingList"),
    _data("GET", "/v1/models", "The served models with their prices, and `auto`", None, "ModelList"),
    _data("GET", "/v1/models/{model_id}", "One served model, by id or alias", None, "Model"),
    _data("GET", "/v1/usage", "The key's budget, rate limits, plan and credits", None, "KeyUsage"),
    _data("POST", "/v1/responses", "OpenAI Responses API, translated onto chat completions", "ResponsesRequest",
          "Response", stream=True),
    _data("POST", "/anthropic/v1/messages", "Anthropic Messages API, any model", "AnthropicMessagesRequest",
          "AnthropicMessage", stream=True, shape="anthropic"),
    _data("POST", "/anthropic/v1/messages/count_tokens", "A prompt's input tokens (free: nothing is reserved)",
          "AnthropicMessagesRequest", "TokenCount", shape="anthropic"),
    Route("GET", "/v1/requests", "The key's own recent requests (the request log;"
          " a page reads at most 10,000 records: a rare filter's page may be short, even empty, with hasMore)", SK, "openai", tag="data plane"),
    Route("GET", "/health", "Liveness", PUBLIC, "openai", answer=ref("Health"), tag="operations"),
    # -- management plane (management keys, own account) --------------------------------------
    Route("GET", "/api/plans", "The plans on offer", PUBLIC),
    _mk("GET", "/api/billing/status", "Subscriptions and their state"),
    _mk("POST", "/api/billing/cancel", "Cancel a subscription at its period's end", obj({"subscriptionId": STR})),
    _mk("GET", "/api/billing/credits", "The prepaid credit balance"),
    _mk("GET", "/api/billing/credits/history", "Credit grants and spend"),
    _mk("GET", "/api/keys", "The account's API keys"),
    _mk("POST", "/api/keys", "Create a key (subscription when subscriptionId is given, else credit)",
        ref("KeyCreate"), "201"),
    _mk("POST", "/api/keys/subscription", "Create a subscription key", ref("KeyCreate"), "201"),
    _mk("POST", "/api/keys/credit", "Create a credit key", ref("KeyCreate"), "201"),
    _mk("PATCH", "/api/keys/{key_id}", "Rename a key or change its end user and metadata",
        obj({"name": STR, "endUser": maybe(STR), "metadata": maybe(obj({}))})),
    _mk("DELETE", "/api/keys/{key_id}", "Revoke a key"),
    _mk("POST", "/api/keys/{key_id}/rotate", "A new secret for the key; the old one works for a grace period",
        _GRACE),
    _mk("GET", "/api/usage", "Spend by window, day, week and month (groupBy, endUser filters)"),
    _mk("GET", "/api/usage/{key_id}", "One key's spend"),
    _mk("GET", "/api/usage/hourly", "Usage over time per hour or day, by key, model, route or status"),
    _mk("GET", "/api/budgets", "A page of keys, each with its budgets now: spent, reserved, remaining, reset"),
    _mk("GET", "/api/requests", "The account's request log (filters, cursor pagination;"
        " a page reads at most 10,000 records: a rare filter's page may be short, even empty, with hasMore)"),
    _mk("GET", "/api/analytics/overhead", "The gateway's own overhead on the account's requests"),
    _mk("GET", "/api/management-keys", "The account's management keys"),
    _mk("POST", "/api/management-keys", "Create a management key", _NAME, "201"),
    _mk("DELETE", "/api/management-keys/{key_id}", "Revoke a management key"),
    _mk("GET", "/api/webhook", "The account's webhook"),
    _mk("PUT", "/api/webhook", "Set the account's webhook", obj({"url": STR, "secret": STR, "thresholds": {},
                                                                 "creditsLow": MONEY, "expiringNotice": STR})),
    _mk("DELETE", "/api/webhook", "Remove the account's webhook"),
    _mk("GET", "/api/webhook/deliveries", "Recent webhook deliveries"),
    _mk("POST", "/api/webhook/test", "Send a test event"),
    # -- operator plane (operator token) ---------------------------------------------------------
    _op("GET", "/admin/accounts", "A page of accounts (limit, after)"),
    _op("POST", "/admin/accounts", "Create an account and its first management key", _NAME, "201"),
    _op("GET", "/admin/accounts/{account_id}", "An account with its subscriptions and management keys"),
    _op("GET", "/admin/accounts/{account_id}/management-keys", "An account's management keys"),
    _op("POST", "/admin/accounts/{account_id}/management-keys", "Create a management key", _NAME, "201"),
    _op("DELETE", "/admin/accounts/{account_id}/management-keys/{key_id}", "Revoke a management key"),
    _op("GET", "/admin/accounts/{account_id}/subscriptions", "An account's subscriptions"),
    _op("POST", "/admin/accounts/{account_id}/subscriptions", "Grant a subscription",
        obj({"plan": STR, "periodDays": INT}), "201"),
    _op("POST", "/admin/accounts/{account_id}/credits", "Grant credits", obj({"amount": MONEY, "note": STR})),
    _op("GET", "/admin/accounts/{account_id}/credits", "An account's credit grants and spend"),
    _op("POST", "/admin/subscriptions/{subscription_id}/cancel", "Cancel at the period's end"),
    _op("POST", "/admin/subscriptions/{subscription_id}/uncancel", "Undo a cancellation"),
    _op("POST", "/admin/subscriptions/{subscription_id}/expire", "Expire now (its keys stop at once)"),
    _op("POST", "/admin/subscriptions/{subscription_id}/renew", "Start a new period", obj({"periodDays": INT})),
    _op("POST", "/admin/subscriptions/{subscription_id}/extend", "Extend the current period", obj({"days": INT})),
    _op("GET", "/admin/plans", "Every plan"),
    _op("POST", "/admin/plans", "Create a plan", _PLAN, "201"),
    _op("PATCH", "/admin/plans/{slug}", "Change a plan", _PLAN),
    _op("POST", "/admin/plans/{slug}/retire", "Retire a plan (no new subscriptions)"),
    _op("POST", "/admin/plans/{slug}/unretire", "Offer a retired plan again"),
    _op("POST", "/admin/keys/{key_id}/rotate", "A new secret for any key", _GRACE),
    _op("GET", "/admin/requests", "The request log of every account, or of one (accountId;"
        " a short page with hasMore goes on from its nextCursor)"),
    _op("GET", "/admin/usage/hourly", "One account's usage over time (accountId)"),
    _op("GET", "/admin/usage/accounts", "A page of accounts with their usage in a range"),
    _op("GET", "/admin/metrics/routes", "Per-route counters of `auto`"),
    _op("GET", "/admin/metrics/caches", "The per-key caches: size, hits, misses, evictions"),
    _op("GET", "/admin/metrics/ledger", "The ledger's write backlog"),
    Route("GET", "/admin/metrics/traffic", "Requests, refusals, upstreams and models as JSON (docs/metrics.md)",
          OP, answer=ref("TrafficMetrics"), tag="operator"),
    Route("GET", "/metrics", "Prometheus metrics (docs/metrics.md)", OP, "openai", content="text/plain",
          answer={"type": "string"}, tag="operations"),
    Route("GET", "/openapi.json", "This document", PUBLIC, "openai", answer={"type": "object"}, tag="operations"),
    # -- the dashboard's files (it calls the APIs above with the key it is given) ---------------
    *(Route("GET", path, "The dashboard" + (f" ({kind})" if kind != "page" else ""), PUBLIC, "openai",
            answer={"type": "string"}, content=content, tag="dashboard")
      for path, kind, content in (("/dashboard", "page", "text/html"), ("/dashboard/", "page", "text/html"),
                                  ("/dashboard/static/app.js", "script", "text/javascript"),
                                  ("/dashboard/static/style.css", "style", "text/css"))),
)


def _security(route: Route) -> list[dict]:
    if route.auth is None:
        return []
    if route.shape == "anthropic":
        return [{SK: []}, {"anthropicApiKey": []}]
    return [{route.auth: []}]


def _operation(route: Route) -> dict:
    answer = route.answer if route.answer is not None else ref("Envelope")
    content = {route.content: {"schema": answer}}
    if route.stream:
        content.update(SSE)
    ok = {"description": "Success", "content": content}
    if route.tag == "data plane" and route.method == "POST":
        ok["headers"] = ANSWER_HEADERS
    statuses = DATA_ERRORS if route.tag == "data plane" else PLANE_ERRORS
    if route.auth is None:
        statuses = tuple(s for s in statuses if s not in ("401", "403")) if route.tag == "management" else ("405", "500")
    op: dict = {
        "operationId": route.method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", route.path).rstrip("_")
                       + ("_index" if route.path.endswith("/") else ""),
        "summary": route.summary, "tags": [route.tag], "security": _security(route),
        "responses": {route.status: ok, **{s: {"$ref": f"#/components/responses/{route.shape}{s}"}
                                           for s in statuses if s in ERROR_TEXT}},
    }
    params = re.findall(r"\{(\w+)\}", route.path)
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": STR} for p in params]
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
    return op


def document() -> dict:
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "tollgate", "version": __version__,
                 "description": "An OpenAI- and Anthropic-compatible LLM gateway with hard dollar budgets per key. "
                                "Money is a decimal string of US dollars beside its integer nano-dollars."},
        "tags": [{"name": t} for t in ("data plane", "management", "operator", "operations", "dashboard")],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "responses": RESPONSES, "headers": HEADERS,
                       "securitySchemes": SECURITY_SCHEMES},
    }


class OpenAPIDocument:
    def __init__(self) -> None:
        self.body = orjson.dumps(document())  # written once: the document does not change while serving

    def mount(self, router: Router) -> None:
        router.add("GET", "/openapi.json", self.serve)

    async def serve(self, request: Request, send: Send) -> None:
        await send_bytes(send, 200, self.body, [(b"content-type", b"application/json")])
