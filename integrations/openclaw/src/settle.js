// How a parked session's story ends: finished, tried again later, or given up with a reason
// that the person using the session can see. Functions of a BudgetPark.

const FAILED_RETRY_BASE_MS = 60_000;
const FAILED_RETRY_CAP_MS = 3_600_000;
const RELAY_MAX_CHARS = 4_000;

/** @typedef {import("./park.js").BudgetPark} BudgetPark */
/** @typedef {import("./queue.js").Entry} Entry */
/** @typedef {import("./queue.js").ParkQueue} ParkQueue */

/** @param {number} ms */
function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * @param {BudgetPark} park
 * @param {Entry} entry
 * @param {"resumed"|"continued"} how
 * @param {string|null} text the run's final reply, relayed to a sub-agent's parent
 */
export async function complete(park, entry, how, text) {
  const q = /** @type {ParkQueue} */ (park.queue);
  q.remove(entry.sessionKey);
  await q.save();
  await q.journal({ event: how, sessionKey: entry.sessionKey, attempts: entry.attempts });
  park.logger.info(`budget-park: ${entry.sessionKey} ${how === "resumed" ? "resumed and finished" : "was continued by someone else"}`);
  if (how === "resumed" && entry.parentSessionKey && !q.get(entry.parentSessionKey)) {
    await relayToParent(park, entry, text);
  }
}

/**
 * OpenClaw announces a sub-agent's result only from the run that spawned it; a resumed child
 * has no such run, so its reply is passed on to the parent here.
 * @param {BudgetPark} park
 * @param {Entry} entry
 * @param {string|null} text
 */
export async function relayToParent(park, entry, text) {
  const parent = /** @type {string} */ (entry.parentSessionKey);
  const reply = (text ?? "(no text)").slice(0, RELAY_MAX_CHARS);
  const message = `Sub-agent session ${entry.sessionKey} was stopped by the usage budget and has now finished after the reset. Its final reply:\n\n${reply}`;
  try {
    await park.withGateway(false, (gw) => gw.request("chat.send", {
      sessionKey: parent, message, idempotencyKey: `tollgate-relay-${park.now().toString(36)}`,
    }));
    await park.queue?.journal({ event: "relayed", sessionKey: entry.sessionKey, parent });
  } catch (e) {
    park.logger.warn(`budget-park: could not pass ${entry.sessionKey}'s result to ${parent}: ${String(e)}`);
  }
}

/**
 * A resume that failed for a reason other than the budget: try again later, up to the limit.
 * @param {BudgetPark} park
 * @param {Entry} entry
 * @param {string} reason
 */
export async function failedAttempt(park, entry, reason) {
  const q = /** @type {ParkQueue} */ (park.queue);
  if (entry.attempts >= park.settings.maxAttempts) {
    await giveUp(park, entry, `${entry.attempts} resume attempt(s) failed; the last: ${reason}`);
    return;
  }
  entry.lastError = reason;
  const delay = Math.min(FAILED_RETRY_BASE_MS * 2 ** Math.max(0, entry.attempts - 1), FAILED_RETRY_CAP_MS);
  park.setParked(entry, entry.resetAt, entry.resetSource, park.now() + delay);
  await q.save();
  await q.journal({ event: "retry-later", sessionKey: entry.sessionKey, attempts: entry.attempts, reason, dueAt: iso(entry.dueAt) });
  park.logger.warn(`budget-park: resume of ${entry.sessionKey} failed (${reason}); next try after ${iso(entry.dueAt)}`);
}

/**
 * @param {BudgetPark} park
 * @param {Entry} entry
 * @param {string} reason
 */
export async function giveUp(park, entry, reason) {
  const q = /** @type {ParkQueue} */ (park.queue);
  q.remove(entry.sessionKey);
  await q.save();
  await q.journal({ event: "gave-up", sessionKey: entry.sessionKey, attempts: entry.attempts, reason });
  park.logger.warn(`budget-park: gave up on ${entry.sessionKey}: ${reason}`);
  park.notify(entry.sessionKey, `⚠️ Automatic resume stopped: ${reason}. Continue this session by hand when you are ready.`);
}
