import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isSubagentKey } from "../src/resume.js";
import { budgetEvent, ctxFor, FakeGateway, makePark, okEvent, RESET, tempDir } from "./helpers.js";

const RESET_MS = Date.parse(RESET);
const fresh = { ok: true, remainingNanos: 1_000_000n, resetsAt: RESET_MS + 3600_000, duration: "5h" };
const PARENT = "agent:main:main";
const CHILD = "agent:main:subagent:7f3c";

async function journal(dir) {
  const text = await readFile(join(dir, "journal.jsonl"), "utf8").catch(() => "");
  return text.trim() ? text.trim().split("\n").map((l) => JSON.parse(l)) : [];
}

async function withPark(gateway, fn) {
  const { dir, cleanup } = await tempDir();
  try {
    const env = await makePark({ dir, gateway, usage: fresh });
    // the resumed run of whichever session finishes normally
    gateway.onSend = async (params) => {
      await env.park.onAgentEnd(okEvent(`reply of ${params.sessionKey}`), ctxFor(params.sessionKey, { runId: params.idempotencyKey }));
      return { status: "ok", text: `reply of ${params.sessionKey}` };
    };
    await fn({ ...env, dir });
    await env.park.notices;
  } finally {
    await cleanup();
  }
}

async function spawnAndFail(park, { parentFails }) {
  await park.onSubagentSpawned({ childSessionKey: CHILD, agentId: "main", mode: "run", runId: "r0" }, { requesterSessionKey: PARENT, childSessionKey: CHILD });
  await park.onAgentEnd(budgetEvent(), ctxFor(CHILD));
  if (parentFails) await park.onAgentEnd(budgetEvent(), ctxFor(PARENT));
}

test("sub-agent keys are recognised", () => {
  assert.ok(isSubagentKey(CHILD));
  assert.ok(isSubagentKey("subagent:abc"));
  assert.ok(!isSubagentKey(PARENT));
  assert.ok(!isSubagentKey("agent:main:subagents-notes"));
});

test("a parked child remembers its parent from subagent_spawned", async () => {
  await withPark(new FakeGateway(), async ({ park }) => {
    await spawnAndFail(park, { parentFails: false });
    assert.equal(park.queue?.get(CHILD)?.parentSessionKey, PARENT);
  });
});

test("child and parent both parked: the child folds into the parent, which resumes once for both", async () => {
  const gateway = new FakeGateway();
  gateway.session(PARENT);
  gateway.session(CHILD);
  await withPark(gateway, async ({ park, clock, dir }) => {
    await spawnAndFail(park, { parentFails: true });
    clock.t = RESET_MS + 3600_000 - 1; // both due, budget available
    await park.runDue();
    const sends = gateway.sent();
    assert.deepEqual(sends.map((s) => s.sessionKey), [PARENT], "only the parent is continued");
    assert.match(sends[0].message, new RegExp(`sub-agent sessions.*${CHILD}`));
    assert.equal(park.queue?.size, 0);
    const events = (await journal(dir)).map((j) => `${j.event}:${j.sessionKey}`);
    assert.ok(events.includes(`folded:${CHILD}`), events.join(", "));
    assert.ok(events.includes(`resumed:${PARENT}`), events.join(", "));
  });
});

test("an archived child whose parent is idle is handed to the parent", async () => {
  const gateway = new FakeGateway();
  gateway.session(PARENT);
  gateway.session(CHILD, { archived: true });
  await withPark(gateway, async ({ park, clock, dir }) => {
    await spawnAndFail(park, { parentFails: false });
    clock.t = RESET_MS + 3600_000;
    await park.runDue();
    const sends = gateway.sent();
    assert.deepEqual(sends.map((s) => s.sessionKey), [PARENT]);
    assert.match(sends[0].message, new RegExp(CHILD));
    assert.equal(park.queue?.size, 0);
    assert.ok((await journal(dir)).some((j) => j.event === "handed-to-parent" && j.parent === PARENT));
  });
});

test("a live child whose parent is idle is resumed itself and its reply relayed to the parent", async () => {
  const gateway = new FakeGateway();
  gateway.session(PARENT);
  gateway.session(CHILD);
  await withPark(gateway, async ({ park, clock, dir }) => {
    await spawnAndFail(park, { parentFails: false });
    clock.t = RESET_MS + 3600_000;
    await park.runDue();
    const sends = gateway.sent();
    assert.deepEqual(sends.map((s) => s.sessionKey), [CHILD, PARENT]);
    assert.match(sends[1].message, new RegExp(`${CHILD}.*finished`, "s"));
    assert.match(sends[1].message, new RegExp(`reply of ${CHILD}`));
    assert.ok((await journal(dir)).some((j) => j.event === "relayed"));
  });
});

test("the parent link is also found from the gateway when the spawn was not seen", async () => {
  const gateway = new FakeGateway();
  gateway.session(PARENT);
  gateway.session(CHILD, { archived: true, spawnedBy: PARENT });
  await withPark(gateway, async ({ park, clock }) => {
    await park.onAgentEnd(budgetEvent(), ctxFor(CHILD)); // no subagent_spawned beforehand
    assert.equal(park.queue?.get(CHILD)?.parentSessionKey, null);
    clock.t = RESET_MS + 3600_000;
    await park.runDue();
    assert.deepEqual(gateway.sent().map((s) => s.sessionKey), [PARENT]);
  });
});

test("a parent that comes due before its parked child takes the child along", async () => {
  const gateway = new FakeGateway();
  gateway.session(PARENT);
  gateway.session(CHILD);
  const rolls = [0.9, 0.0]; // the child's jitter is later than the parent's
  const { dir, cleanup } = await tempDir();
  try {
    const { park, clock } = await makePark({ dir, gateway, usage: fresh, random: () => rolls.shift() ?? 0 });
    gateway.onSend = async (params) => {
      await park.onAgentEnd(okEvent(), ctxFor(params.sessionKey, { runId: params.idempotencyKey }));
      return { status: "ok" };
    };
    await spawnAndFail(park, { parentFails: true });
    assert.ok((park.queue?.get(PARENT)?.dueAt ?? 0) < (park.queue?.get(CHILD)?.dueAt ?? 0));
    clock.t = RESET_MS + 3600_000 - 1;
    await park.runDue();
    assert.deepEqual(gateway.sent().map((s) => s.sessionKey), [PARENT]);
    assert.match(gateway.sent()[0].message, new RegExp(CHILD));
    assert.equal(park.queue?.size, 0);
    await park.notices;
  } finally {
    await cleanup();
  }
});
