// The parked sessions, on disk, so a gateway restart or crash loses none of them.
//
// One entry per session key (a second failure updates the entry instead of adding one). Every
// change is written to a temporary file, flushed, and renamed over `queue.json`, so a reader
// sees the old state or the new one, never half of each. A file that cannot be read is moved
// aside (never overwritten) and reported; entries that fail validation are moved aside too.
// The queue is bounded: a session that does not fit is refused loudly, never dropped silently.

import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export const QUEUE_FILE = "queue.json";
export const JOURNAL_FILE = "journal.jsonl";
const JOURNAL_MAX_BYTES = 1 << 20;
const STATE_VERSION = 1;
const MAX_PARENT_LINKS = 2000;

/**
 * @typedef {object} Entry
 * @property {string} sessionKey
 * @property {string|null} sessionId   transcript generation the failure happened in
 * @property {string|null} agentId
 * @property {string|null} providerId  OpenClaw provider id whose key hit the budget
 * @property {string|null} parentSessionKey  set for sub-agent sessions
 * @property {string[]} children       sub-agent sessions folded into this one
 * @property {number} parkedAt         epoch ms
 * @property {number} resetAt          epoch ms the budget resets
 * @property {string} resetSource
 * @property {number} dueAt            epoch ms the resume is planned (reset + jitter)
 * @property {number} attempts         resumes sent so far
 * @property {"parked"|"resuming"} status
 * @property {string|null} resumeRunId
 * @property {number|null} resumeStartedAt
 * @property {string} lastError
 */

/**
 * @param {unknown} e
 * @returns {e is Entry}
 */
export function isValidEntry(e) {
  if (!e || typeof e !== "object" || Array.isArray(e)) return false;
  const x = /** @type {Record<string, unknown>} */ (e);
  const optStr = (v) => v === null || v === undefined || typeof v === "string";
  const num = (v) => typeof v === "number" && Number.isFinite(v);
  return (
    typeof x.sessionKey === "string" && x.sessionKey.length > 0 && x.sessionKey.length <= 512 &&
    optStr(x.sessionId) && optStr(x.agentId) && optStr(x.providerId) && optStr(x.parentSessionKey) &&
    Array.isArray(x.children) && x.children.every((c) => typeof c === "string") &&
    num(x.parkedAt) && num(x.resetAt) && num(x.dueAt) && typeof x.resetSource === "string" &&
    Number.isInteger(x.attempts) && /** @type {number} */ (x.attempts) >= 0 &&
    (x.status === "parked" || x.status === "resuming") &&
    optStr(x.resumeRunId) && (x.resumeStartedAt === null || x.resumeStartedAt === undefined || num(x.resumeStartedAt)) &&
    typeof x.lastError === "string"
  );
}

export class ParkQueue {
  /**
   * @param {{dir: string, maxEntries: number, logger?: {warn: Function, error: Function, info: Function}, now?: () => number}} opts
   */
  constructor({ dir, maxEntries, logger = console, now = Date.now }) {
    this.dir = dir;
    this.maxEntries = maxEntries;
    this.logger = logger;
    this.now = now;
    /** @type {Map<string, Entry>} */
    this.entries = new Map();
    /** child session key -> parent session key, learned from `subagent_spawned` */
    /** @type {Map<string, string>} */
    this.parents = new Map();
    /** @type {Promise<void>} */
    this.writing = Promise.resolve();
    this.dirty = false;
  }

  get path() {
    return join(this.dir, QUEUE_FILE);
  }

  /** Reads the file; a damaged one is quarantined and reported, and the queue starts empty. */
  async load() {
    await fsp.mkdir(this.dir, { recursive: true });
    // Temporary files are only ever complete once renamed; any left here are from a crash.
    for (const name of await fsp.readdir(this.dir)) {
      if (name.startsWith(`.${QUEUE_FILE}.`) && name.endsWith(".tmp")) await fsp.rm(join(this.dir, name), { force: true });
    }
    let raw;
    try {
      raw = await fsp.readFile(this.path, "utf8");
    } catch (e) {
      if (/** @type {any} */ (e).code === "ENOENT") return;
      throw e;
    }
    let state;
    try {
      state = JSON.parse(raw);
    } catch (e) {
      await this.quarantine(`not valid JSON (${String(e)})`);
      return;
    }
    if (!state || typeof state !== "object" || !Array.isArray(state.entries)) {
      await this.quarantine("not a queue object with an `entries` array");
      return;
    }
    const rejected = [];
    for (const e of state.entries) {
      if (isValidEntry(e) && !this.entries.has(e.sessionKey)) this.entries.set(e.sessionKey, normalize(e));
      else rejected.push(e);
    }
    if (state.parents && typeof state.parents === "object") {
      for (const [child, parent] of Object.entries(state.parents)) {
        if (typeof parent === "string") this.parents.set(child, parent);
      }
    }
    if (rejected.length) {
      const file = join(this.dir, `queue.rejected-${stamp(this.now())}.json`);
      await fsp.writeFile(file, JSON.stringify(rejected, null, 2));
      this.logger.error(`budget-park: ${rejected.length} invalid queue entries moved to ${file}`);
      await this.journal({ event: "quarantined", count: rejected.length, file, reason: "invalid entries" });
      await this.save();
    }
  }

  /** @param {string} reason */
  async quarantine(reason) {
    const file = join(this.dir, `queue.corrupt-${stamp(this.now())}.json`);
    await fsp.rename(this.path, file);
    this.logger.error(`budget-park: queue file ${reason}; moved to ${file}, starting with an empty queue`);
    await this.journal({ event: "quarantined", file, reason });
  }

  /** @param {string} key */
  get(key) {
    return this.entries.get(key);
  }

  list() {
    return [...this.entries.values()];
  }

  get size() {
    return this.entries.size;
  }

  /**
   * Adds a new entry, or replaces the one for the same session.
   * @param {Entry} entry
   * @returns {{added: boolean, refused?: string}}
   */
  put(entry) {
    const exists = this.entries.has(entry.sessionKey);
    if (!exists && this.entries.size >= this.maxEntries) {
      return { added: false, refused: `the park queue is full (${this.maxEntries} sessions)` };
    }
    this.entries.set(entry.sessionKey, entry);
    this.dirty = true;
    return { added: !exists };
  }

  /** @param {string} key */
  remove(key) {
    const had = this.entries.delete(key);
    if (had) this.dirty = true;
    return had;
  }

  /**
   * @param {string} child
   * @param {string} parent
   */
  linkParent(child, parent) {
    this.parents.delete(child);
    this.parents.set(child, parent);
    while (this.parents.size > MAX_PARENT_LINKS) this.parents.delete(this.parents.keys().next().value);
    this.dirty = true;
  }

  /** The parked entry due first, if its time has come. */
  nextDue(now = this.now()) {
    let best = null;
    for (const e of this.entries.values()) {
      if (e.status !== "parked" || e.dueAt > now) continue;
      if (!best || e.dueAt < best.dueAt) best = e;
    }
    return best;
  }

  /** Earliest planned resume among parked entries, or null. */
  nextDueAt() {
    let at = null;
    for (const e of this.entries.values()) {
      if (e.status === "parked" && (at === null || e.dueAt < at)) at = e.dueAt;
    }
    return at;
  }

  /** Writes the whole queue atomically; calls are serialized so the last state wins. */
  save() {
    this.dirty = false;
    const snapshot = JSON.stringify(
      { version: STATE_VERSION, savedAt: this.now(), entries: this.list(), parents: Object.fromEntries(this.parents) },
      null,
      2,
    );
    const run = async () => {
      await fsp.mkdir(this.dir, { recursive: true });
      const tmp = join(this.dir, `.${QUEUE_FILE}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
      const fh = await fsp.open(tmp, "w", 0o600);
      try {
        await fh.writeFile(snapshot);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, this.path);
      await syncDir(this.dir);
    };
    this.writing = this.writing.then(run, run);
    return this.writing;
  }

  /**
   * Appends one outcome to the journal people read to learn what happened to their sessions.
   * @param {Record<string, unknown>} record
   */
  async journal(record) {
    const file = join(this.dir, JOURNAL_FILE);
    try {
      const st = await fsp.stat(file).catch(() => null);
      if (st && st.size > JOURNAL_MAX_BYTES) await fsp.rename(file, join(this.dir, `${JOURNAL_FILE}.1`));
      await fsp.mkdir(this.dir, { recursive: true });
      await fsp.appendFile(file, JSON.stringify({ at: new Date(this.now()).toISOString(), ...record }) + "\n");
    } catch (e) {
      this.logger.warn(`budget-park: could not write the journal: ${String(e)}`);
    }
  }
}

/** @param {Entry} e */
function normalize(e) {
  return {
    ...e,
    sessionId: e.sessionId ?? null,
    agentId: e.agentId ?? null,
    providerId: e.providerId ?? null,
    parentSessionKey: e.parentSessionKey ?? null,
    resumeRunId: e.resumeRunId ?? null,
    resumeStartedAt: e.resumeStartedAt ?? null,
  };
}

/** @param {number} ms */
function stamp(ms) {
  return new Date(ms).toISOString().replace(/[:.]/g, "-");
}

/** @param {string} dir */
async function syncDir(dir) {
  let fh;
  try {
    fh = await fsp.open(dir, "r");
    await fh.sync();
  } catch {
    // Some filesystems refuse to sync a directory; the rename itself is still atomic.
  } finally {
    await fh?.close();
  }
}
