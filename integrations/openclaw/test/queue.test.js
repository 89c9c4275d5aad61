import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ParkQueue, isValidEntry } from "../src/queue.js";
import { quietLogger, tempDir, T0 } from "./helpers.js";

function entry(key, extra = {}) {
  return {
    sessionKey: key, sessionId: `sid-${key}`, agentId: "main", providerId: "tollgate", parentSessionKey: null,
    children: [], parkedAt: T0, resetAt: T0 + 60_000, resetSource: "error.reset_at", dueAt: T0 + 62_000,
    attempts: 0, status: "parked", resumeRunId: null, resumeStartedAt: null, lastError: "budget exceeded", ...extra,
  };
}

async function journal(dir) {
  const text = await readFile(join(dir, "journal.jsonl"), "utf8").catch(() => "");
  return text.trim() ? text.trim().split("\n").map((l) => JSON.parse(l)) : [];
}

test("entries survive a restart and the file is replaced whole", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const a = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger(), now: () => T0 });
    await a.load();
    a.put(entry("agent:main:one"));
    a.put(entry("agent:main:two", { dueAt: T0 + 1000 }));
    a.linkParent("agent:main:subagent:c1", "agent:main:one");
    await a.save();
    const files = await readdir(dir);
    assert.deepEqual(files.filter((f) => f.endsWith(".tmp")), [], "no temporary file is left behind");
    const b = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger(), now: () => T0 });
    await b.load();
    assert.deepEqual(b.list().map((e) => e.sessionKey).sort(), ["agent:main:one", "agent:main:two"]);
    assert.equal(b.parents.get("agent:main:subagent:c1"), "agent:main:one");
    assert.equal(b.nextDue(T0 + 5000)?.sessionKey, "agent:main:two");
    assert.equal(b.nextDueAt(), T0 + 1000);
  } finally {
    await cleanup();
  }
});

test("concurrent saves serialize and the last state wins", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const q = new ParkQueue({ dir, maxEntries: 100, logger: quietLogger() });
    await q.load();
    const saves = [];
    for (let i = 0; i < 20; i++) {
      q.put(entry(`agent:main:s${i}`));
      saves.push(q.save());
    }
    await Promise.all(saves);
    const disk = JSON.parse(await readFile(join(dir, "queue.json"), "utf8"));
    assert.equal(disk.entries.length, 20);
  } finally {
    await cleanup();
  }
});

test("a leftover temporary file from a crash does not affect loading", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const q = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger() });
    await q.load();
    q.put(entry("agent:main:kept"));
    await q.save();
    await writeFile(join(dir, ".queue.json.123.abcd.tmp"), '{"entries": [ {"half');
    const r = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger() });
    await r.load();
    assert.deepEqual(r.list().map((e) => e.sessionKey), ["agent:main:kept"]);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith(".tmp")), [], "the crash leftover is cleaned up");
  } finally {
    await cleanup();
  }
});

test("one entry per session: a second put replaces, it does not add", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const q = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger() });
    await q.load();
    assert.deepEqual(q.put(entry("agent:main:x")), { added: true });
    assert.deepEqual(q.put(entry("agent:main:x", { resetAt: T0 + 99 })), { added: false });
    assert.equal(q.size, 1);
    assert.equal(q.get("agent:main:x")?.resetAt, T0 + 99);
  } finally {
    await cleanup();
  }
});

test("a full queue refuses a new session with a reason and keeps the ones it has", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const q = new ParkQueue({ dir, maxEntries: 2, logger: quietLogger() });
    await q.load();
    q.put(entry("agent:main:a"));
    q.put(entry("agent:main:b"));
    const r = q.put(entry("agent:main:c"));
    assert.equal(r.added, false);
    assert.match(r.refused ?? "", /full \(2 sessions\)/);
    assert.deepEqual(q.list().map((e) => e.sessionKey), ["agent:main:a", "agent:main:b"]);
    // an update to a session already queued is still accepted when full
    assert.equal(q.put(entry("agent:main:a", { attempts: 1 })).refused, undefined);
  } finally {
    await cleanup();
  }
});

test("a corrupted file is moved aside, reported, and never overwritten", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const garbage = '{"version":1,"entries":[{"sessionKey":"agent:main:a"';
    await writeFile(join(dir, "queue.json"), garbage);
    const logger = quietLogger();
    const q = new ParkQueue({ dir, maxEntries: 10, logger, now: () => T0 });
    await q.load();
    assert.equal(q.size, 0);
    const files = await readdir(dir);
    const moved = files.find((f) => f.startsWith("queue.corrupt-"));
    assert.ok(moved, `quarantine file in ${files}`);
    assert.equal(await readFile(join(dir, moved), "utf8"), garbage, "the damaged bytes are kept as they were");
    assert.ok(logger.lines.some((l) => l.startsWith("error:") && l.includes("not valid JSON")));
    const j = await journal(dir);
    assert.equal(j[0].event, "quarantined");
    q.put(entry("agent:main:new"));
    await q.save();
    assert.equal(await readFile(join(dir, moved), "utf8"), garbage);
  } finally {
    await cleanup();
  }
});

test("a file of the wrong shape is quarantined too", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, "queue.json"), "[1, 2, 3]");
    const q = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger() });
    await q.load();
    assert.equal(q.size, 0);
    assert.ok((await readdir(dir)).some((f) => f.startsWith("queue.corrupt-")));
  } finally {
    await cleanup();
  }
});

test("invalid entries are set aside one by one; valid ones load", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const bad = { sessionKey: "agent:main:bad", attempts: "three" };
    await writeFile(join(dir, "queue.json"), JSON.stringify({ version: 1, entries: [entry("agent:main:good"), bad, 7] }));
    const q = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger() });
    await q.load();
    assert.deepEqual(q.list().map((e) => e.sessionKey), ["agent:main:good"]);
    const rejectedFile = (await readdir(dir)).find((f) => f.startsWith("queue.rejected-"));
    assert.ok(rejectedFile);
    assert.deepEqual(JSON.parse(await readFile(join(dir, rejectedFile), "utf8")), [bad, 7]);
    const disk = JSON.parse(await readFile(join(dir, "queue.json"), "utf8"));
    assert.equal(disk.entries.length, 1, "the cleaned queue is written back");
  } finally {
    await cleanup();
  }
});

test("entry validation checks every field's type", () => {
  assert.ok(isValidEntry(entry("k")));
  assert.ok(!isValidEntry({ ...entry("k"), status: "gone" }));
  assert.ok(!isValidEntry({ ...entry("k"), dueAt: "soon" }));
  assert.ok(!isValidEntry({ ...entry("k"), children: [1] }));
  assert.ok(!isValidEntry({ ...entry(""), sessionKey: "" }));
  assert.ok(!isValidEntry(null));
});

test("the parent map stays bounded", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const q = new ParkQueue({ dir, maxEntries: 10, logger: quietLogger() });
    for (let i = 0; i < 2100; i++) q.linkParent(`agent:main:subagent:${i}`, "agent:main:p");
    assert.equal(q.parents.size, 2000);
    assert.equal(q.parents.has("agent:main:subagent:0"), false);
    assert.equal(q.parents.has("agent:main:subagent:2099"), true);
  } finally {
    await cleanup();
  }
});
