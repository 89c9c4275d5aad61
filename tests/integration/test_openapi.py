"""The OpenAPI document is true: every route the gateway mounts is in it, and every route in it is mounted.

The router is the real one, built by the composition root (`serve/app.py` `create_app`, started
in-process on a fresh database), so a route added anywhere fails here until `http/openapi.py`
documents it. The served document is the same, over HTTP, from a real gateway process.
"""

from __future__ import annotations

import asyncio
import gc
import re

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.toml import dumps
from tollgate.config.load import load_config
from tollgate.http.openapi import document
from tollgate.serve.app import create_app


def mounted_routes(tmp_path) -> set[tuple[str, str]]:
    config = fake_config("http://127.0.0.1:9", database=f"sqlite:///{tmp_path / 'tollgate.db'}")
    path = tmp_path / "tollgate.toml"
    path.write_text(dumps(config))
    app = create_app(load_config(path, env={}))

    async def start_and_stop() -> set[tuple[str, str]]:
        await app.startup()
        try:
            return set(app.router.routes())
        finally:
            await app.shutdown()

    threshold = gc.get_threshold()
    try:
        return asyncio.run(start_and_stop())
    finally:  # the app's start-up tunes the collector for a server; this is a test process
        gc.unfreeze()
        gc.set_threshold(*threshold)


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


def refs(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_every_mounted_route_is_documented_and_every_documented_route_is_mounted(tmp_path):
    routes, doc = mounted_routes(tmp_path), document()
    assert routes, "the app mounted no routes"
    assert sorted(routes - documented(doc)) == [], "mounted but not in http/openapi.py ROUTES"
    assert sorted(documented(doc) - routes) == [], "in http/openapi.py ROUTES but not mounted"


def test_each_operation_says_who_may_call_it_and_how_it_fails():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    schemes = doc["components"]["securitySchemes"]
    operation_ids = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op["summary"], where
            operation_ids.append(op["operationId"])
            for requirement in op["security"]:
                assert set(requirement) <= set(schemes), where
            public = path in ("/health", "/openapi.json", "/api/plans") or path.startswith("/dashboard")
            assert bool(op["security"]) != public, where
            statuses = set(op["responses"])
            assert any(s.startswith("2") for s in statuses) and any(s.startswith(("4", "5")) for s in statuses), where
            if not public:
                assert "401" in statuses, where
            params = {p["name"] for p in op.get("parameters", ())}
            assert params == set(re.findall(r"\{(\w+)\}", path)), where
    assert len(operation_ids) == len(set(operation_ids))
    for target in refs(doc):
        node = doc
        for part in target.removeprefix("#/").split("/"):
            node = node[part]  # a dangling $ref raises here
    ops = doc["paths"]["/v1/chat/completions"]["post"]
    assert ops["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletionRequest"}
    assert "text/event-stream" in ops["responses"]["200"]["content"]
    assert ops["responses"]["429"] == {"$ref": "#/components/responses/openai429"}
    assert doc["paths"]["/anthropic/v1/messages"]["post"]["responses"]["429"]["$ref"].endswith("anthropic429")
    assert doc["paths"]["/api/keys"]["get"]["security"] == [{"managementKey": []}]
    assert doc["paths"]["/admin/accounts"]["get"]["security"] == [{"operatorToken": []}]


def test_the_schemas_are_valid_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    for schema in document()["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_gateway_serves_the_document_without_a_key(gateway_factory, fake_upstream):
    gw = gateway_factory(fake_config(fake_upstream.url))
    r = httpx.get(gw.url + "/openapi.json", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == document()
