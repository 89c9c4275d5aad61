import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { fetchUsage, parseInstant, readUsage, resetFromError, usageUrl, usdToNanos } from "../src/reset.js";
import { runError } from "../src/classify.js";
import { budgetEvent, T0 } from "./helpers.js";

test("reset time comes from the error's reset_at field first", () => {
  const err = runError(budgetEvent({ resetAt: "2026-11-29T20:00:00Z", message: "budget exceeded: usage limit reached; resets at 2026-11-29T15:00:00Z" }));
  assert.deepEqual(resetFromError(err, T0), { at: Date.parse("2026-11-29T20:00:00Z"), source: "error.reset_at" });
});

test("then from 'resets at' in the message, then from Retry-After", () => {
  const noBody = runError(budgetEvent({ withBody: false }));
  assert.deepEqual(resetFromError(noBody, T0), { at: Date.parse("2026-11-29T15:00:00Z"), source: "error.message" });
  const onlyRetry = { message: "429 budget exceeded; Retry-After: 120 seconds", code: null, type: null, body: null, timestamp: T0, stopReason: "error" };
  assert.deepEqual(resetFromError(onlyRetry, 0), { at: T0 + 120_000, source: "retry-after" });
  const nothing = { message: "429 budget exceeded", code: null, type: null, body: null, timestamp: null, stopReason: "error" };
  assert.equal(resetFromError(nothing, T0), null);
});

test("instants accept offsets and fractions, reject junk", () => {
  assert.equal(parseInstant("2026-11-29T15:00:00+01:00"), Date.parse("2026-11-29T14:00:00Z"));
  assert.equal(parseInstant("2026-11-29T15:00:00.250Z"), Date.parse("2026-11-29T15:00:00.250Z"));
  assert.equal(parseInstant("tomorrow"), null);
  assert.equal(parseInstant(42), null);
});

test("dollars become exact nano-dollars", () => {
  assert.equal(usdToNanos("0.14"), 140_000_000n);
  assert.equal(usdToNanos("0.0000225"), 22_500n);
  assert.equal(usdToNanos(0.42), 420_000_000n);
  assert.equal(usdToNanos("3"), 3_000_000_000n);
  assert.equal(usdToNanos("1e-9"), 1n);
  assert.equal(usdToNanos("0.0000000001"), 1n); // below a nano rounds up
  assert.equal(usdToNanos("-0.5"), -500_000_000n);
  assert.equal(usdToNanos("abc"), null);
  assert.equal(usdToNanos(""), null);
});

test("usage is read bare or inside the success envelope", () => {
  const budget = { spent: "0.14", limit: "0.14", remaining: "0.00", duration: "5h", resets_at: "2026-11-29T15:00:00Z" };
  for (const body of [{ budget }, { success: true, data: { budget } }]) {
    const u = readUsage(body);
    assert.ok(u.ok);
    assert.equal(u.remainingNanos, 0n);
    assert.equal(u.resetsAt, Date.parse("2026-11-29T15:00:00Z"));
    assert.equal(u.duration, "5h");
  }
  // remaining_nanos wins; remaining is derived from limit - spent when absent
  assert.equal(readUsage({ budget: { remaining: "9", remaining_nanos: 5 } }).remainingNanos, 5n);
  assert.equal(readUsage({ budget: { limit: 0.42, spent: "0.40" } }).remainingNanos, 20_000_000n);
  assert.equal(readUsage({ nothing: true }).ok, false);
});

test("usage URL sits beside the OpenAI base", () => {
  assert.equal(usageUrl("http://h:1/v1"), "http://h:1/v1/usage");
  assert.equal(usageUrl("http://h:1/v1/"), "http://h:1/v1/usage");
  assert.equal(usageUrl("http://h:1"), "http://h:1/v1/usage");
});

// A real HTTP server standing in for tollgate's GET /v1/usage.
const seen = [];
let mode = "ok";
const server = createServer((req, res) => {
  seen.push({ url: req.url, auth: req.headers.authorization });
  const send = (status, obj) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(obj));
  };
  if (mode === "ok") return send(200, { success: true, data: { budget: { spent: "0.1", limit: "0.14", remaining: "0.04", duration: "5h", resets_at: "2026-11-29T15:00:00Z" } } });
  if (mode === "revoked") return send(403, { error: { code: "key_revoked", message: "revoked" } });
  if (mode === "broken") return send(502, { error: { code: "upstream_error" } });
  res.writeHead(200);
  res.end("not json");
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${/** @type {any} */ (server.address()).port}/v1`;
after(() => server.close());

test("fetchUsage reads a live /v1/usage with the key", async () => {
  mode = "ok";
  const u = await fetchUsage({ baseUrl: base, apiKey: "sk_test" });
  assert.ok(u.ok);
  assert.equal(u.remainingNanos, 40_000_000n);
  assert.equal(u.resetsAt, Date.parse("2026-11-29T15:00:00Z"));
  assert.deepEqual(seen.at(-1), { url: "/v1/usage", auth: "Bearer sk_test" });
});

test("a refused key is fatal; a broken server is not", async () => {
  mode = "revoked";
  const revoked = await fetchUsage({ baseUrl: base, apiKey: "sk_test" });
  assert.equal(revoked.ok, false);
  assert.equal(/** @type {any} */ (revoked).fatal, true);
  assert.match(/** @type {any} */ (revoked).reason, /403.*key_revoked/);
  mode = "broken";
  const broken = await fetchUsage({ baseUrl: base, apiKey: "sk_test" });
  assert.equal(/** @type {any} */ (broken).fatal, false);
  mode = "garbage";
  assert.equal((await fetchUsage({ baseUrl: base, apiKey: "sk_test" })).ok, false);
});

test("an unreachable server is a non-fatal failure", async () => {
  const dead = createServer();
  await new Promise((r) => dead.listen(0, "127.0.0.1", r));
  const port = /** @type {any} */ (dead.address()).port;
  await new Promise((r) => dead.close(r));
  const u = await fetchUsage({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: "k", timeoutMs: 2000 });
  assert.equal(u.ok, false);
  assert.equal(/** @type {any} */ (u).fatal, false);
});
