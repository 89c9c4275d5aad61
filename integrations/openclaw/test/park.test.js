import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { budgetEvent, ctxFor, errorEvent, FakeGateway, makePark, okEvent, RESET, tempDir, T0 } from "./helpers.js";

const RESET_MS = Date.parse(RESET);
const spent = { ok: true, remainingNanos: 0n, resetsAt: RESET_MS + 5 * 3600_000, duration: "5h" };
const fresh = { ok: true, remainingNanos: 140_000_000n, resetsAt: RESET_MS + 5 * 3600_000, duration: "5h" };

async function journal(dir) {
  const text = await readFile(join(dir, "journal.jsonl"), "utf8").catch(() => "");
  return text.trim() ? text.trim().split("\n").map((l) => JSON.parse(l)) : [];
}

async function withPark(opts, fn) {
  const { dir, cleanup } = await tempDir();
  try {
    const env = await makePark({ dir, ...opts });
    await fn({ ...env, dir });
    await env.park.notices;
  } finally {
    await cleanup();
  }
}

/** The resumed run ends like this: its agent_end arrives before agent.wait answers. */
function runEndsWith(park, event, status = "error") {
  return async (params) => {
    await park.onAgentEnd(event, ctxFor(params.sessionKey, { runId: params.idempotencyKey }));
    return { status, text: "finished the task" };
  };
}

test("a budget 429 parks the session until the reset the error names, plus grace and jitter", async () => {
  await withPark({ usage: fresh }, async ({ park, dir, gateway, usageCalls }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    const e = park.queue?.get("agent:main:a");
    assert.ok(e);
    assert.equal(e.resetAt, RESET_MS);
    assert.equal(e.resetSource, "error.reset_at");
    assert.equal(e.dueAt, RESET_MS + 2000 + 5000, "2 s grace + jitter 0.5 x 10 s");
    assert.equal(e.sessionId, "sid-agent:main:a");
    assert.deepEqual(usageCalls, [], "no need to ask /v1/usage when the error says it");
    const disk = JSON.parse(await readFile(join(dir, "queue.json"), "utf8"));
    assert.equal(disk.entries[0].sessionKey, "agent:main:a");
    await park.notices;
    const note = gateway.sent("chat.inject")[0];
    assert.equal(note.sessionKey, "agent:main:a");
    assert.match(note.message, /parked.*2026-11-29T15:00:00Z/);
    assert.equal((await journal(dir))[0].event, "parked");
  });
});

test("without a reset time in the error, it is read from GET /v1/usage", async () => {
  await withPark({ usage: spent }, async ({ park, usageCalls }) => {
    const ev = budgetEvent({ withBody: false, message: "budget exceeded: usage limit reached" });
    ev.messages[1].errorMessage = "429 budget exceeded: usage limit reached"; // no time, no Retry-After
    await park.onAgentEnd(ev, ctxFor("agent:main:a"));
    const e = park.queue?.get("agent:main:a");
    assert.equal(e?.resetSource, "usage.resets_at");
    assert.equal(e?.resetAt, spent.resetsAt);
    assert.deepEqual(usageCalls, ["tollgate"]);
  });
});

test("a second failure of the same session updates its entry instead of adding one", async () => {
  await withPark({ usage: fresh }, async ({ park }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    await park.onAgentEnd(budgetEvent({ resetAt: "2026-11-29T20:00:00Z" }), ctxFor("agent:main:a"));
    assert.equal(park.queue?.size, 1);
    assert.equal(park.queue?.get("agent:main:a")?.resetAt, Date.parse("2026-11-29T20:00:00Z"));
    assert.equal(park.queue?.get("agent:main:a")?.attempts, 0);
  });
});

test("per-minute limits, other errors and heartbeat turns do not park", async () => {
  await withPark({ usage: fresh }, async ({ park }) => {
    await park.onAgentEnd(errorEvent({ code: "rate_limit_exceeded" }), ctxFor("agent:main:a"));
    await park.onAgentEnd(errorEvent({ code: "key_revoked" }), ctxFor("agent:main:b"));
    await park.onAgentEnd(okEvent(), ctxFor("agent:main:c"));
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:main", { trigger: "heartbeat" }));
    assert.equal(park.queue?.size, 0);
  });
});

test("a session continued by hand before the reset leaves the queue", async () => {
  await withPark({ usage: fresh }, async ({ park, dir }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    await park.onAgentEnd(okEvent(), ctxFor("agent:main:a"));
    assert.equal(park.queue?.size, 0);
    assert.equal((await journal(dir)).at(-1).event, "continued");
  });
});

test("at the reset the budget is checked first, then the session is continued", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a");
  await withPark({ gateway, usage: fresh }, async ({ park, clock, dir, usageCalls }) => {
    gateway.onSend = runEndsWith(park, okEvent(), "ok");
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    await park.runDue();
    assert.equal(gateway.sent().length, 0, "nothing is resumed before it is due");
    assert.equal(usageCalls.length, 0);
    clock.t = RESET_MS + 10_000;
    await park.runDue();
    assert.deepEqual(usageCalls, ["tollgate"], "the budget was checked at the due time");
    const order = gateway.calls.map((c) => c.method).filter((m) => m !== "chat.inject");
    assert.deepEqual(order, ["sessions.describe", "chat.send", "agent.wait"]);
    const send = gateway.sent()[0];
    assert.equal(send.sessionKey, "agent:main:a");
    assert.match(send.message, /budget has reset/);
    assert.match(send.idempotencyKey, /^tollgate-resume-1-/);
    assert.equal(park.queue?.size, 0);
    const events = (await journal(dir)).map((j) => j.event);
    assert.deepEqual(events, ["parked", "resuming", "resumed"]);
  });
});

test("a budget still spent at the due time postpones the resume without spending an attempt", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a");
  await withPark({ gateway, usage: spent }, async ({ park, clock }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    clock.t = RESET_MS + 10_000;
    await park.runDue();
    const e = park.queue?.get("agent:main:a");
    assert.equal(gateway.sent().length, 0);
    assert.equal(e?.attempts, 0);
    assert.equal(e?.resetAt, spent.resetsAt);
    assert.ok((e?.dueAt ?? 0) >= spent.resetsAt);
  });
});

test("sessions due together resume one at a time, in jittered order, with spacing", async () => {
  const gateway = new FakeGateway();
  const keys = ["agent:main:a", "agent:main:b", "agent:main:c"];
  keys.forEach((k) => gateway.session(k));
  const rolls = [0.9, 0.1, 0.5];
  await withPark({ gateway, usage: fresh, random: () => rolls.shift() ?? 0 }, async ({ park, clock, sleeps }) => {
    gateway.onSend = runEndsWith(park, okEvent(), "ok");
    for (const k of keys) await park.onAgentEnd(budgetEvent(), ctxFor(k));
    const due = keys.map((k) => park.queue?.get(k)?.dueAt);
    assert.equal(new Set(due).size, 3, "jitter gives each session its own time");
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    assert.deepEqual(gateway.sent().map((s) => s.sessionKey), ["agent:main:b", "agent:main:c", "agent:main:a"]);
    assert.equal(gateway.maxActive, 1, "never two resumes at once");
    assert.deepEqual(sleeps.filter((ms) => ms === 5000).length, 2, "a pause between consecutive resumes");
  });
});

test("a resumed run that hits the budget again is parked again, then given up after N attempts", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a");
  await withPark({ gateway, usage: fresh, settings: { maxAttempts: 2 } }, async ({ park, clock, dir }) => {
    gateway.onSend = runEndsWith(park, budgetEvent({ resetAt: "2026-11-29T20:00:00Z" }));
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    const e = park.queue?.get("agent:main:a");
    assert.equal(e?.status, "parked");
    assert.equal(e?.attempts, 1);
    assert.equal(e?.resetAt, Date.parse("2026-11-29T20:00:00Z"));
    clock.t = Date.parse("2026-11-29T20:01:00Z");
    await park.runDue();
    assert.equal(park.queue?.size, 0);
    const last = (await journal(dir)).at(-1);
    assert.equal(last.event, "gave-up");
    assert.match(last.reason, /still spent after 2 resume attempt/);
    await park.notices;
    assert.match(gateway.sent("chat.inject").at(-1).message, /Automatic resume stopped/);
    assert.equal(gateway.sent().length, 2, "exactly N resumes were sent");
  });
});

test("a non-retriable error on resume gives up at once with the reason", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a");
  await withPark({ gateway, usage: fresh, settings: { maxAttempts: 5 } }, async ({ park, clock, dir }) => {
    gateway.onSend = runEndsWith(park, errorEvent({ code: "key_revoked", message: "403 this API key has been revoked" }));
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    assert.equal(park.queue?.size, 0);
    const last = (await journal(dir)).at(-1);
    assert.equal(last.event, "gave-up");
    assert.match(last.reason, /revoked/);
    assert.equal(gateway.sent().length, 1);
  });
});

test("a key refused by /v1/usage gives up before sending anything", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a");
  const usage = { ok: false, fatal: true, status: 403, reason: "usage answered HTTP 403 (key_revoked)" };
  await withPark({ gateway, usage }, async ({ park, clock, dir }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    assert.equal(gateway.sent().length, 0);
    assert.match((await journal(dir)).at(-1).reason, /key_revoked/);
  });
});

test("a resume that fails for another reason is retried later, and counted", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a");
  await withPark({ gateway, usage: fresh, settings: { maxAttempts: 2 } }, async ({ park, clock, dir }) => {
    gateway.onSend = () => ({ status: "error", error: "upstream exploded" }); // no agent_end at all
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    const e = park.queue?.get("agent:main:a");
    assert.equal(e?.attempts, 1);
    assert.equal(e?.dueAt, clock.t + 60_000, "first retry a minute later");
    clock.t += 61_000;
    await park.runDue();
    assert.equal(park.queue?.size, 0);
    assert.match((await journal(dir)).at(-1).reason, /2 resume attempt\(s\) failed; the last: upstream exploded/);
  });
});

test("a session reset or deleted since it was parked is not resumed", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a", { sessionId: "a-new-transcript" });
  await withPark({ gateway, usage: fresh }, async ({ park, clock, dir }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:gone"));
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    assert.equal(gateway.sent().length, 0);
    const reasons = (await journal(dir)).filter((j) => j.event === "gave-up").map((j) => j.reason).join(" | ");
    assert.match(reasons, /reset after it was parked/);
    assert.match(reasons, /no longer exists/);
  });
});

test("a busy session is retried shortly without spending an attempt", async () => {
  const gateway = new FakeGateway();
  gateway.session("agent:main:a", { hasActiveRun: true });
  await withPark({ gateway, usage: fresh }, async ({ park, clock }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    const e = park.queue?.get("agent:main:a");
    assert.equal(e?.attempts, 0);
    assert.equal(e?.dueAt, clock.t + 30_000);
  });
});

test("an unreachable gateway postpones the resume without spending an attempt", async () => {
  const gateway = new FakeGateway();
  await withPark({ gateway, usage: fresh }, async ({ park, clock }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    gateway.refuseConnect = "ECONNREFUSED";
    clock.t = RESET_MS + 60_000;
    await park.runDue();
    assert.equal(park.queue?.get("agent:main:a")?.attempts, 0);
    assert.equal(park.queue?.get("agent:main:a")?.dueAt, clock.t + 60_000);
  });
});

test("a full queue refuses loudly: logged, journaled and told to the session", async () => {
  await withPark({ usage: fresh, settings: { maxQueue: 1 } }, async ({ park, dir, gateway, logger }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:b"));
    assert.deepEqual(park.queue?.list().map((e) => e.sessionKey), ["agent:main:a"]);
    assert.equal((await journal(dir)).at(-1).event, "refused");
    assert.ok(logger.lines.some((l) => l.startsWith("warn:") && l.includes("NOT parking agent:main:b")));
    await park.notices;
    assert.match(gateway.sent("chat.inject").find((n) => n.sessionKey === "agent:main:b").message, /could not be parked/);
  });
});

test("a resume in flight when the gateway stopped counts as tried after a restart", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const first = await makePark({ dir, usage: fresh });
    await first.park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a"));
    const e = first.park.queue?.get("agent:main:a");
    Object.assign(e, { status: "resuming", attempts: 1, resumeRunId: "r1", resumeStartedAt: T0 });
    await first.park.queue?.save();
    await first.park.stop();
    const second = await makePark({ dir, usage: fresh });
    const again = second.park.queue?.get("agent:main:a");
    assert.equal(again?.status, "parked");
    assert.equal(again?.attempts, 1);
  } finally {
    await cleanup();
  }
});

test("only the configured providers are watched", async () => {
  await withPark({ usage: fresh, settings: { providers: ["tollgate"] } }, async ({ park }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:a", { modelProviderId: "other" }));
    await park.onAgentEnd(budgetEvent(), ctxFor("agent:main:b"));
    assert.deepEqual(park.queue?.list().map((e) => e.sessionKey), ["agent:main:b"]);
  });
});

test("a reload's late stop for the previous start does not stop the new one", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const { park } = await makePark({ dir, usage: fresh }); // started once (generation 1)
    const second = await park.start(dir);
    await park.stop(1);
    assert.equal(park.stopped, false);
    await park.stop(second);
    assert.equal(park.stopped, true);
  } finally {
    await cleanup();
  }
});
