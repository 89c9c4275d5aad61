"""The reusable parts of the OpenAPI document (http/openapi.py): schemas, error answers, headers, auth.

Request schemas of the data plane list the fields the gateway reads and checks; every other field
of OpenAI's and Anthropic's APIs is passed through to the upstream (`additionalProperties`).
"""

from __future__ import annotations

STR: dict = {"type": "string"}
INT: dict = {"type": "integer"}
NUM: dict = {"type": "number"}
BOOL: dict = {"type": "boolean"}
ANY: dict = {}
MONEY: dict = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
               "description": "US dollars as an exact decimal string"}
NANOS: dict = {"type": "integer", "description": "nano-dollars (1e-9 US dollars)"}
TIME: dict = {"type": "string", "format": "date-time"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def maybe(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def obj(props: dict, required: tuple[str, ...] = (), *, extra: bool = True, description: str | None = None) -> dict:
    schema: dict = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def envelope(data: dict) -> dict:
    return obj({"success": {"const": True}, "data": data}, ("success", "data"))


_MESSAGE = obj({
    "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool", "function"]},
    "content": {"anyOf": [STR, array(obj({})), {"type": "null"}]},
    "name": STR, "tool_calls": array(obj({})), "tool_call_id": STR,
}, ("role",))
_OUTPUT_CAPS = {
    "max_tokens": maybe(INT), "max_completion_tokens": maybe(INT),
    "n": {"type": "integer", "minimum": 1}, "stream": BOOL, "stream_options": obj({"include_usage": BOOL}),
}
_USAGE = obj({
    "prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT,
    "estimated": {"type": "boolean", "description": "true: counted by the gateway, not reported by the upstream"},
    "usage_basis": {"type": "string", "enum": ["counted", "bound"]},
    "cost": MONEY, "cost_nanos": NANOS,
})
_BUDGET = obj({
    "spent": MONEY, "limit": MONEY, "remaining": MONEY, "reserved": MONEY, "duration": maybe(STR),
    "resets_at": maybe(TIME), "window_start": maybe(TIME), "spent_nanos": NANOS, "limit_nanos": NANOS,
    "remaining_nanos": NANOS,
})

SCHEMAS: dict[str, dict] = {
    "OpenAIError": obj({"error": obj({
        "message": STR, "type": STR, "param": maybe(STR), "code": STR,
        "reset_at": {**maybe(TIME), "description": "budget_exceeded: when the window resets"},
    }, ("message", "type", "code"))}, ("error",)),
    "AnthropicError": obj({"type": {"const": "error"}, "error": obj({"type": STR, "message": STR, "code": STR},
                                                                     ("type", "message"))}, ("type", "error")),
    "EnvelopeError": obj({"success": {"const": False}, "error": obj({"code": STR, "message": STR, "param": STR},
                                                                     ("code", "message"))}, ("success", "error")),
    "Envelope": envelope(ANY),
    "ChatCompletionRequest": obj({
        "model": {"type": "string", "description": "a model id or alias, `auto` or `auto:<profile>`"},
        "messages": array(_MESSAGE), **_OUTPUT_CAPS, "tools": array(obj({})), "tool_choice": ANY,
        "temperature": NUM, "top_p": NUM, "stop": ANY, "response_format": obj({}), "user": STR,
    }, ("model", "messages")),
    "ChatCompletion": obj({
        "id": STR, "object": {"const": "chat.completion"}, "created": INT, "model": STR,
        "choices": array(obj({"index": INT, "message": _MESSAGE, "finish_reason": maybe(STR)})), "usage": _USAGE,
    }, ("choices",)),
    "CompletionRequest": obj({"model": STR, "prompt": {"anyOf": [STR, array(STR), array(INT), array(array(INT))]},
                              **_OUTPUT_CAPS, "best_of": INT}, ("model", "prompt")),
    "Completion": obj({"id": STR, "object": {"const": "text_completion"}, "model": STR,
                       "choices": array(obj({"index": INT, "text": STR, "finish_reason": maybe(STR)})),
                       "usage": _USAGE}, ("choices",)),
    "EmbeddingRequest": obj({"model": STR, "input": {"anyOf": [STR, array(STR), array(INT), array(array(INT))]},
                             "encoding_format": {"type": "string", "enum": ["float", "base64"]}, "dimensions": INT},
                            ("model", "input")),
    "EmbeddingList": obj({"object": {"const": "list"}, "model": STR,
                          "data": array(obj({"object": {"const": "embedding"}, "index": INT,
                                             "embedding": {"anyOf": [array(NUM), STR]}})),
                          "usage": _USAGE}, ("data",)),
    "Model": obj({
        "id": STR, "object": {"const": "model"}, "created": INT, "owned_by": STR, "context_length": INT,
        "max_output_tokens": INT, "capabilities": array(STR), "aliases": array(STR),
        "pricing": obj({}, description="prices per million tokens, as money strings"),
        "routes": obj({}, description="`auto` models only: per request category, the models tried in order"),
    }, ("id", "object")),
    "ModelList": obj({"object": {"const": "list"}, "data": array(ref("Model"))}, ("object", "data")),
    "KeyUsage": obj({
        "budget": _BUDGET, "budgets": array(obj({"kind": STR})), "rate_limits": obj({"rpm": INT, "tpm": INT}),
        "plan": obj({"slug": maybe(STR), "status": STR, "expires_at": maybe(TIME)}),
        "credits": obj({"balance": MONEY, "balance_nanos": NANOS}),
        "key": obj({"id": STR, "name": STR, "type": STR, "created_at": TIME}),
        "caching": obj({"since": TIME, "input_tokens": INT, "cached_tokens": INT, "saved": MONEY, "saved_nanos": INT}),
    }, ("budget", "rate_limits", "plan", "credits", "key")),
    "AnthropicMessagesRequest": obj({
        "model": STR, "messages": array(obj({"role": {"type": "string", "enum": ["user", "assistant"]},
                                             "content": {"anyOf": [STR, array(obj({}))]}}, ("role", "content"))),
        "max_tokens": {"type": "integer", "minimum": 1}, "system": {"anyOf": [STR, array(obj({}))]},
        "stream": BOOL, "tools": array(obj({})), "tool_choice": obj({}), "temperature": NUM,
        "stop_sequences": array(STR),
    }, ("model", "messages", "max_tokens")),
    "AnthropicMessage": obj({
        "id": STR, "type": {"const": "message"}, "role": {"const": "assistant"}, "model": STR,
        "content": array(obj({"type": STR})), "stop_reason": maybe(STR),
        "usage": obj({"input_tokens": INT, "output_tokens": INT, "cache_read_input_tokens": INT,
                      "cache_creation_input_tokens": INT}),
    }, ("type", "content")),
    "TokenCount": obj({"input_tokens": INT, "exact": {"type": "boolean", "description":
                                                       "false: the gateway's upper bound, not the model's own count"}},
                      ("input_tokens", "exact")),
    "ResponsesRequest": obj({
        "model": STR, "input": {"anyOf": [STR, array(obj({}))]}, "instructions": maybe(STR), "stream": BOOL,
        "max_output_tokens": maybe(INT), "tools": array(obj({})), "previous_response_id": maybe(STR),
    }, ("model", "input")),
    "Response": obj({"id": STR, "object": {"const": "response"}, "status": STR, "model": STR,
                     "output": array(obj({"type": STR})), "usage": obj({})}, ("object", "output")),
    "Health": obj({"status": {"const": "ok"}, "version": STR}, ("status", "version")),
    "TrafficMetrics": envelope(obj({
        "refusals": {"type": "object", "additionalProperties": INT},
        "upstreams": array(obj({"name": STR, "requests": INT, "errors": INT, "fallbacks": INT,
                                "p50Ms": maybe(NUM), "p99Ms": maybe(NUM), "healthy": BOOL, "lastError": maybe(STR)},
                               ("name", "requests", "errors", "fallbacks", "p50Ms", "p99Ms", "healthy", "lastError"))),
        "models": array(obj({"model": STR, "requests": INT, "inputTokens": INT, "outputTokens": INT,
                             "costNanos": NANOS, "cost": MONEY},
                            ("model", "requests", "inputTokens", "outputTokens", "costNanos", "cost"))),
        "reservationsOpen": INT, "requestsInFlight": INT,
    }, ("refusals", "upstreams", "models", "reservationsOpen", "requestsInFlight"))),
    "KeyCreate": obj({"name": STR, "subscriptionId": STR, "type": {"type": "string", "enum": ["subscription", "credit"]},
                      "budget": obj({"limit": MONEY, "window": STR}), "endUser": maybe(STR), "metadata": maybe(obj({}))},
                     ("name",)),
}


def _header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or STR}


HEADERS: dict[str, dict] = {
    "RequestId": _header("The request's id (a UUID): in the usage records, the request log and the upstream's request"),
    "BudgetLimit": _header("The tightest budget's limit (dollars)", MONEY),
    "BudgetRemaining": _header("What is left of it after this request (dollars)", MONEY),
    "BudgetReset": _header("When its window resets", TIME),
    "BudgetWindow": _header("Its window's length, e.g. 5h"),
    "RequestCost": _header("What this request cost (dollars)", MONEY),
    "RequestCostNanos": _header("What this request cost (nano-dollars)", NANOS),
    "RequestCostMax": _header("A stream's reservation: the most it can cost (the exact cost is in its last event)",
                              MONEY),
    "RetryAfter": _header("Seconds to wait before trying again", INT),
    "ShouldRetry": _header("`false`: waiting will not help before the reset (budget, credits)"),
}

_REQUEST_ID = {"x-request-id": {"$ref": "#/components/headers/RequestId"}}


def _error(description: str, schema: str, retry: bool = False) -> dict:
    headers = dict(_REQUEST_ID)
    if retry:
        headers["retry-after"] = {"$ref": "#/components/headers/RetryAfter"}
        headers["x-should-retry"] = {"$ref": "#/components/headers/ShouldRetry"}
    return {"description": description, "headers": headers,
            "content": {"application/json": {"schema": ref(schema)}}}


# Error answers by shape (each API writes its errors in its own) and status.
ERROR_TEXT = {
    "400": "Malformed request (`invalid_request`, `invalid_json`, `request_exceeds_budget`, ...)",
    "401": "Missing or unknown credential",
    "403": "Revoked key, expired subscription, or a model the plan does not allow",
    "404": "No such object, route or model",
    "405": "Method not allowed on this path",
    "409": "Conflict with the object's state",
    "413": "Body too large",
    "429": "Budget spent (`budget_exceeded`, `insufficient_credits`), rate limit, or too many wrong tokens",
    "500": "The gateway failed (logged)",
    "502": "No upstream could answer, or one broke off",
    "503": "Upstream busy, or the ledger behind (`ledger_busy`): retry after Retry-After",
    "504": "Upstream timeout",
}
SHAPES = {"openai": "OpenAIError", "anthropic": "AnthropicError", "envelope": "EnvelopeError"}
RESPONSES: dict[str, dict] = {
    f"{shape}{status}": _error(text, schema, retry=status in ("429", "503"))
    for shape, schema in SHAPES.items() for status, text in ERROR_TEXT.items()
}

SECURITY_SCHEMES: dict[str, dict] = {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "A consumption key: `Authorization: Bearer sk_...`"},
    "anthropicApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                        "description": "A consumption key as Anthropic's SDKs send it"},
    "managementKey": {"type": "http", "scheme": "bearer",
                      "description": "A management key, for its own account: `Authorization: Bearer mk_...`"},
    "operatorToken": {"type": "http", "scheme": "bearer", "description": "The operator token (`tollgate admin-token`)"},
}

ANSWER_HEADERS = {
    "x-request-id": {"$ref": "#/components/headers/RequestId"},
    "x-budget-limit": {"$ref": "#/components/headers/BudgetLimit"},
    "x-budget-remaining": {"$ref": "#/components/headers/BudgetRemaining"},
    "x-budget-reset": {"$ref": "#/components/headers/BudgetReset"},
    "x-budget-window": {"$ref": "#/components/headers/BudgetWindow"},
    "x-request-cost": {"$ref": "#/components/headers/RequestCost"},
    "x-request-cost-nanos": {"$ref": "#/components/headers/RequestCostNanos"},
    "x-request-cost-max": {"$ref": "#/components/headers/RequestCostMax"},
}
