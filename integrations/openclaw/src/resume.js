// The resume path: budget check, session check, `chat.send`, and waiting for the outcome;
// plus how a parked sub-agent is routed through its parent. Functions of a BudgetPark.

import { usdToNanos } from "./reset.js";
import { complete, failedAttempt, giveUp } from "./settle.js";

const GATEWAY_RETRY_MS = 60_000;
const BUSY_RETRY_MS = 30_000;
const SETTLE_GRACE_MS = 3_000;

/** @typedef {import("./park.js").BudgetPark} BudgetPark */
/** @typedef {import("./queue.js").Entry} Entry */
/** @typedef {import("./queue.js").ParkQueue} ParkQueue */
/** @typedef {import("./park.js").GatewayLike} GatewayLike */

/** @param {string} key */
export function isSubagentKey(key) {
  return /(^|:)subagent:/i.test(key);
}

/** @param {number} ms */
function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * @param {BudgetPark} park
 * @param {Entry} entry
 */
export async function resumeOne(park, entry) {
  const q = /** @type {ParkQueue} */ (park.queue);
  if (entry.parentSessionKey || isSubagentKey(entry.sessionKey)) {
    const routed = await routeSubagent(park, entry);
    if (routed === "handled") return;
    if (routed !== "self") entry = routed;
  }
  await foldChildren(park, entry);
  if (!(await budgetAvailable(park, entry))) return;
  let gw;
  try {
    gw = await park.openGateway({ admin: false });
  } catch (e) {
    entry.dueAt = park.now() + GATEWAY_RETRY_MS;
    q.dirty = true;
    await q.save();
    park.logger.warn(`budget-park: cannot reach the gateway (${String(e)}); retrying ${entry.sessionKey} in a minute`);
    return;
  }
  try {
    await sendResume(park, gw, entry);
  } finally {
    gw.close();
  }
}

/**
 * Checks `GET /v1/usage` first, so a resume never spends a request on a budget still spent.
 * @param {BudgetPark} park
 * @param {Entry} entry
 */
export async function budgetAvailable(park, entry) {
  const q = /** @type {ParkQueue} */ (park.queue);
  const usage = await park.readUsage(entry.providerId).catch((e) => ({ ok: false, fatal: false, reason: String(e) }));
  if (!usage) return true;
  if (!usage.ok) {
    if (usage.fatal) {
      await giveUp(park, entry, `tollgate refused the key (${usage.reason})`);
      return false;
    }
    park.logger.warn(`budget-park: budget check failed (${usage.reason}); resuming ${entry.sessionKey} anyway`);
    return true;
  }
  const min = usdToNanos(park.settings.minRemainingUsd) ?? 0n;
  if (usage.remainingNanos === null || usage.remainingNanos > min) return true;
  const now = park.now();
  const resetAt = usage.resetsAt && usage.resetsAt > now ? usage.resetsAt : now + GATEWAY_RETRY_MS;
  park.setParked(entry, resetAt, "usage.resets_at");
  await q.save();
  await q.journal({ event: "postponed", sessionKey: entry.sessionKey, reason: "budget not yet available", resetAt: iso(resetAt) });
  park.logger.info(`budget-park: budget for ${entry.sessionKey} not back yet; waiting until ${iso(resetAt)}`);
  return false;
}

/**
 * @param {BudgetPark} park
 * @param {GatewayLike} gw
 * @param {Entry} entry
 */
export async function sendResume(park, gw, entry) {
  const q = /** @type {ParkQueue} */ (park.queue);
  const key = entry.sessionKey;
  if (entry.attempts >= park.settings.maxAttempts) {
    return giveUp(park, entry, `all ${entry.attempts} resume attempt(s) are used up`);
  }
  const described = await gw.request("sessions.describe", { key }).catch(() => undefined);
  if (described !== undefined) {
    const session = described?.session;
    if (!session) return giveUp(park, entry, "the session no longer exists");
    if (entry.sessionId && session.sessionId && session.sessionId !== entry.sessionId) {
      return giveUp(park, entry, "the session was reset after it was parked, so its transcript is gone");
    }
    if (session.archived) return giveUp(park, entry, "the session was archived");
    if (session.hasActiveRun) {
      entry.dueAt = park.now() + BUSY_RETRY_MS;
      q.dirty = true;
      await q.save();
      return;
    }
  }
  entry.attempts += 1;
  entry.status = "resuming";
  entry.resumeStartedAt = park.now();
  entry.resumeRunId = `tollgate-resume-${entry.attempts}-${park.now().toString(36)}-${Math.floor(park.random() * 1e9).toString(36)}`;
  q.dirty = true;
  await q.save();
  await q.journal({ event: "resuming", sessionKey: key, attempt: entry.attempts, runId: entry.resumeRunId });
  park.logger.info(`budget-park: resuming ${key} (attempt ${entry.attempts} of ${park.settings.maxAttempts})`);
  let runId = entry.resumeRunId;
  let ack;
  try {
    ack = await gw.request("chat.send", { sessionKey: key, message: resumeText(park, entry), idempotencyKey: runId }, 30_000);
  } catch (e) {
    return failedAttempt(park, entry, `the gateway refused the resume: ${String(/** @type {any} */ (e).message ?? e)}`);
  }
  // The run id is normally the idempotency key; follow the gateway if it chose another.
  if (typeof ack?.runId === "string" && ack.runId !== runId && entry.resumeRunId === runId) {
    entry.resumeRunId = runId = ack.runId;
    q.dirty = true;
    await q.save();
  }
  const waitMs = park.settings.runTimeoutSeconds * 1000;
  let waited;
  try {
    waited = await gw.request("agent.wait", { runId, timeoutMs: waitMs }, waitMs + 15_000);
  } catch {
    return; // the run goes on; its agent_end settles it, or it expires as stale
  }
  await settleAfterWait(park, key, runId, waited);
}

/**
 * `agent_end` usually settles the entry first; `agent.wait` decides only if it did not.
 * @param {BudgetPark} park
 * @param {string} key
 * @param {string} runId
 * @param {any} waited
 */
export async function settleAfterWait(park, key, runId, waited) {
  const q = /** @type {ParkQueue} */ (park.queue);
  const pending = () => {
    const e = q.get(key);
    return e && e.status === "resuming" && e.resumeRunId === runId ? e : null;
  };
  for (let waitedMs = 0; pending() && waitedMs < SETTLE_GRACE_MS; waitedMs += 100) await park.sleep(100);
  const entry = pending();
  if (!entry) return;
  if (waited?.status === "ok") await complete(park, entry, "resumed", waited?.terminalReply?.text ?? null);
  else if (waited?.status === "error") await failedAttempt(park, entry, String(waited.error ?? "the resumed run failed"));
  if (q.dirty) await q.save();
}

/**
 * @param {BudgetPark} park
 * @param {Entry} entry
 */
export function resumeText(park, entry) {
  let text = park.settings.resumeMessage;
  if (entry.children.length) {
    text += `\n\nThese sub-agent sessions were stopped by the same budget limit before they finished: ${entry.children.join(", ")}. Start them again if you still need their results.`;
  }
  return text;
}

/**
 * A parent about to resume takes its parked sub-agents along, whichever came due first.
 * @param {BudgetPark} park
 * @param {Entry} entry
 */
async function foldChildren(park, entry) {
  const q = /** @type {ParkQueue} */ (park.queue);
  for (const other of q.list()) {
    if (other === entry || other.status !== "parked") continue;
    const parent = other.parentSessionKey ?? q.parents.get(other.sessionKey);
    if (parent !== entry.sessionKey) continue;
    if (!entry.children.includes(other.sessionKey)) entry.children.push(other.sessionKey);
    q.remove(other.sessionKey);
    await q.journal({ event: "folded", sessionKey: other.sessionKey, parent, reason: "its parent resumes for it" });
  }
  if (q.dirty) await q.save();
}

/**
 * A parked sub-agent is continued through its parent when that is the only way its work can
 * reach anyone: the parent is parked too (fold into it), or the child was archived meanwhile
 * (hand it to the parent). A live child whose parent is idle is resumed itself.
 * @param {BudgetPark} park
 * @param {Entry} entry
 * @returns {Promise<"handled"|"self"|Entry>}
 */
export async function routeSubagent(park, entry) {
  const q = /** @type {ParkQueue} */ (park.queue);
  let parent = entry.parentSessionKey ?? q.parents.get(entry.sessionKey) ?? null;
  let child;
  try {
    child = await park.withGateway(false, (gw) => gw.request("sessions.describe", { key: entry.sessionKey }));
  } catch {
    child = undefined;
  }
  const session = child?.session;
  parent = parent ?? session?.spawnedBy ?? session?.parentSessionKey ?? null;
  if (!parent || parent === entry.sessionKey) return "self";
  entry.parentSessionKey = parent;
  const parentEntry = q.get(parent);
  if (parentEntry) {
    if (!parentEntry.children.includes(entry.sessionKey)) parentEntry.children.push(entry.sessionKey);
    q.remove(entry.sessionKey);
    await q.save();
    await q.journal({ event: "folded", sessionKey: entry.sessionKey, parent, reason: "its parent is parked too and resumes for it" });
    return "handled";
  }
  const gone = child !== undefined && (!session || session.archived);
  if (!gone) return "self";
  /** @type {Entry} */
  const handoff = {
    ...entry,
    sessionKey: parent,
    sessionId: null,
    parentSessionKey: q.parents.get(parent) ?? null,
    children: [entry.sessionKey],
  };
  q.remove(entry.sessionKey);
  q.put(handoff);
  await q.save();
  await q.journal({ event: "handed-to-parent", sessionKey: entry.sessionKey, parent, reason: "the sub-agent session was archived" });
  return handoff;
}
