import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULTS, gatewayConnection, resolveSecret, resolveSettings, tollgateConnection, watchesProvider } from "../src/config.js";
import plugin, { PLUGIN_ID } from "../index.js";
import { budgetEvent, ctxFor, tempDir } from "./helpers.js";

test("settings fill defaults and ignore values of the wrong type", () => {
  const s = resolveSettings({ maxAttempts: 5, jitterSeconds: "lots", notifySessions: false, providers: ["tollgate"], resumeMessage: "go on" });
  assert.equal(s.maxAttempts, 5);
  assert.equal(s.jitterSeconds, DEFAULTS.jitterSeconds);
  assert.equal(s.notifySessions, false);
  assert.deepEqual(s.providers, ["tollgate"]);
  assert.equal(s.resumeMessage, "go on");
  assert.equal(resolveSettings({ maxAttempts: 0 }).maxAttempts, 1);
  assert.equal(resolveSettings(undefined).maxQueue, DEFAULTS.maxQueue);
});

test("secrets may be literal, ${ENV} or an env SecretRef", () => {
  const env = { TG_KEY: "sk_env" };
  assert.equal(resolveSecret("sk_lit", env), "sk_lit");
  assert.equal(resolveSecret("${TG_KEY}", env), "sk_env");
  assert.equal(resolveSecret({ source: "env", id: "TG_KEY" }, env), "sk_env");
  assert.equal(resolveSecret({ source: "file", id: "x" }, env), null);
  assert.equal(resolveSecret("${MISSING}", env), null);
});

test("the gateway is reached on loopback at its configured port with its token", () => {
  const oc = { gateway: { port: 19001, auth: { mode: "token", token: "gwtok" } } };
  assert.deepEqual(gatewayConnection(resolveSettings({}), oc, null, {}), { url: "ws://127.0.0.1:19001", token: "gwtok", password: undefined });
  assert.equal(gatewayConnection(resolveSettings({}), oc, 18800, {}).url, "ws://127.0.0.1:18800", "the port gateway_start reported wins");
  assert.equal(gatewayConnection(resolveSettings({}), {}, null, { OPENCLAW_GATEWAY_TOKEN: "envtok" }).token, "envtok");
  assert.equal(gatewayConnection(resolveSettings({ gatewayUrl: "wss://gw:1" }), oc, null, {}).url, "wss://gw:1");
});

test("tollgate's URL and key come from the provider the session ran on", () => {
  const oc = { models: { providers: { tollgate: { baseUrl: "http://127.0.0.1:8080/v1", apiKey: "${TG}" } } } };
  assert.deepEqual(tollgateConnection(resolveSettings({}), oc, "tollgate", { TG: "sk_1" }), { baseUrl: "http://127.0.0.1:8080/v1", apiKey: "sk_1" });
  assert.equal(tollgateConnection(resolveSettings({}), oc, "other", {}), null);
  const override = resolveSettings({ tollgateBaseUrl: "http://tg/v1", tollgateApiKey: "sk_2" });
  assert.deepEqual(tollgateConnection(override, {}, null, {}), { baseUrl: "http://tg/v1", apiKey: "sk_2" });
  assert.ok(watchesProvider(resolveSettings({}), "anything"));
  assert.ok(!watchesProvider(resolveSettings({ providers: ["tollgate"] }), "other"));
});

test("register wires agent_end, subagent_spawned, gateway_start and one shared service instance", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const make = (mode) => {
      const api = { registrationMode: mode, pluginConfig: { notifySessions: false }, config: {}, hooks: {}, services: [],
        logger: { info() {}, warn() {}, error() {}, debug() {} } };
      api.on = (name, fn) => { api.hooks[name] = fn; };
      api.registerService = (svc) => api.services.push(svc);
      plugin.register(api);
      return api;
    };
    const full = make("full");
    const discovery = make("discovery"); // OpenClaw may run the hooks of this registration
    assert.deepEqual(Object.keys(full.hooks).sort(), ["agent_end", "gateway_start", "subagent_spawned"]);
    assert.equal(full.services[0].id, PLUGIN_ID);
    await full.services[0].start({ stateDir: dir, config: {} });
    await discovery.hooks.agent_end(budgetEvent(), ctxFor("agent:main:a"));
    const shared = /** @type {any} */ (globalThis)[Symbol.for("tollgate.openclaw.budget-park")];
    assert.equal(shared.queue.dir, join(dir, PLUGIN_ID));
    assert.equal(shared.queue.get("agent:main:a")?.sessionKey, "agent:main:a");
    await full.services[0].stop();
  } finally {
    delete /** @type {any} */ (globalThis)[Symbol.for("tollgate.openclaw.budget-park")];
    await cleanup();
  }
});
