// Park a session when tollgate says its budget is spent; continue it when the budget is back.
//
// Life of an entry: `agent_end` shows a budget 429 -> parked until the reset the server named,
// plus a grace and a random jitter -> when due (one session at a time), the budget is checked
// at `GET /v1/usage`, the session is checked at the gateway (still there, same transcript, not
// busy) -> `chat.send` continues it with its stored transcript -> the resumed run's own
// `agent_end` (or `agent.wait`) settles it: done, parked again on another 429, or given up
// with a reason once attempts run out or an error no wait can fix.

import { classify, runError } from "./classify.js";
import { gatewayConnection, tollgateConnection, watchesProvider } from "./config.js";
import { GatewayClient } from "./gateway-client.js";
import { ParkQueue } from "./queue.js";
import { fetchUsage, resetFromError } from "./reset.js";
import { resumeOne } from "./resume.js";
import { complete, failedAttempt, giveUp } from "./settle.js";

const MAX_TIMER_MS = 60_000;

/**
 * @typedef {object} GatewayLike
 * @property {(method: string, params: Record<string, unknown>, timeoutMs?: number) => Promise<any>} request
 * @property {() => void} close
 */

export class BudgetPark {
  /**
   * @param {object} deps
   * @param {import("./config.js").Settings} deps.settings
   * @param {() => any} deps.getConfig                 OpenClaw's config
   * @param {{info: Function, warn: Function, error: Function, debug?: Function}} deps.logger
   * @param {(opts: {admin: boolean}) => Promise<GatewayLike>} [deps.openGateway]
   * @param {(providerId: string|null) => Promise<any>} [deps.readUsage]
   * @param {() => number} [deps.now]
   * @param {() => number} [deps.random]
   * @param {(fn: () => void, ms: number) => any} [deps.setTimer]
   * @param {(t: any) => void} [deps.clearTimer]
   * @param {(ms: number) => Promise<void>} [deps.sleep]
   */
  constructor(deps) {
    this.settings = deps.settings;
    this.getConfig = deps.getConfig;
    this.logger = deps.logger;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.setTimer = deps.setTimer ?? ((fn, ms) => {
      const t = setTimeout(fn, ms);
      t.unref?.();
      return t;
    });
    this.clearTimer = deps.clearTimer ?? clearTimeout;
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.openGateway = deps.openGateway ?? ((opts) => this.defaultGateway(opts));
    this.readUsage = deps.readUsage ?? ((providerId) => this.defaultUsage(providerId));
    /** @type {ParkQueue|null} */
    this.queue = null;
    this.port = null;
    this.timer = null;
    this.running = null;
    this.stopped = false;
    this.generation = 0;
    /** @type {Promise<void>} */
    this.notices = Promise.resolve();
    /** @type {(v?: unknown) => void} */
    let resolveReady = () => {};
    this.ready = new Promise((r) => (resolveReady = r));
    this.resolveReady = resolveReady;
  }

  // -- lifecycle ------------------------------------------------------------------------------

  /**
   * @param {string} dir where the queue and journal live
   * @returns {Promise<number>} this start's generation, to hand back to stop()
   */
  async start(dir) {
    const generation = ++this.generation;
    this.stopped = false;
    const queue = new ParkQueue({ dir, maxEntries: this.settings.maxQueue, logger: this.logger, now: this.now });
    await queue.load();
    // A resume that was in flight when the gateway stopped ended with it: it counts as tried.
    for (const e of queue.list()) {
      if (e.status === "resuming") this.setParked(e, e.resetAt, e.resetSource, this.now() + this.settings.spacingSeconds * 1000);
    }
    if (queue.dirty) await queue.save();
    this.queue = queue;
    this.resolveReady();
    this.logger.info(`budget-park: ${queue.size} parked session(s) in ${dir}`);
    this.arm();
    return generation;
  }

  /**
   * On a config reload OpenClaw stops the old service and starts the new one, in either order;
   * a stop meant for an earlier start is ignored.
   * @param {number} [generation]
   */
  async stop(generation) {
    if (generation !== undefined && generation !== this.generation) return;
    this.stopped = true;
    if (this.timer) this.clearTimer(this.timer);
    this.timer = null;
    await this.queue?.writing;
  }

  /** @param {number|undefined} port */
  setPort(port) {
    if (Number.isInteger(port)) this.port = port;
  }

  /** Wakes at the next due entry (or within a minute, so clock jumps are noticed). */
  arm() {
    if (this.stopped || !this.queue) return;
    if (this.timer) this.clearTimer(this.timer);
    this.timer = null;
    const at = this.queue.nextDueAt();
    const stale = this.queue.list().some((e) => e.status === "resuming");
    if (at === null && !stale) return;
    const wait = at === null ? MAX_TIMER_MS : Math.min(Math.max(0, at - this.now()), MAX_TIMER_MS);
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.runDue().catch((e) => this.logger.error(`budget-park: scheduler failed: ${String(e)}`));
    }, wait);
  }

  /** Resumes due sessions strictly one after another; a second call while running is a no-op. */
  async runDue() {
    if (this.running || !this.queue || this.stopped) return this.running ?? undefined;
    const run = (async () => {
      try {
        await this.expireStaleResumes();
        let entry;
        let first = true;
        while (!this.stopped && (entry = this.queue.nextDue(this.now()))) {
          if (!first) await this.sleep(this.settings.spacingSeconds * 1000);
          first = false;
          const current = this.queue.get(entry.sessionKey);
          if (current === entry && entry.status === "parked") await resumeOne(this, entry);
        }
      } finally {
        this.running = null;
        this.arm();
      }
    })();
    this.running = run;
    return run;
  }

  /** A resume whose run never reported back within its timeout counts as a failed attempt. */
  async expireStaleResumes() {
    const limit = (this.settings.runTimeoutSeconds + 60) * 1000;
    for (const e of this.queue.list()) {
      if (e.status === "resuming" && e.resumeStartedAt !== null && this.now() - e.resumeStartedAt > limit) {
        await failedAttempt(this, e, "the resumed run never reported an outcome");
      }
    }
  }

  // -- hooks ----------------------------------------------------------------------------------

  /**
   * `agent_end`: every run's outcome, including the runs this plugin started.
   * @param {any} event
   * @param {any} ctx
   */
  async onAgentEnd(event, ctx) {
    const key = ctx?.sessionKey;
    if (typeof key !== "string" || !key) return;
    if (!this.queue) {
      const started = await Promise.race([this.ready.then(() => true), new Promise((r) => this.setTimer(() => r(false), 10_000))]);
      if (!started || !this.queue) return;
    }
    const err = runError(event);
    const outcome = classify(err);
    let entry = this.queue.get(key);
    const ours = Boolean(entry && entry.status === "resuming" && entry.resumeRunId && ctx.runId === entry.resumeRunId);
    if (entry && !ours && entry.sessionId && ctx.sessionId && ctx.sessionId !== entry.sessionId) {
      this.queue.remove(key);
      await this.queue.journal({ event: "superseded", sessionKey: key, reason: "the session was reset after it was parked" });
      entry = undefined;
    }
    switch (outcome.kind) {
      case "ok":
        if (entry) await complete(this, entry, ours ? "resumed" : "continued", finalText(event));
        break;
      case "budget":
        // Heartbeat turns come back on their own schedule; resuming them would only add turns.
        if (ctx.trigger === "heartbeat" && !entry) break;
        if (watchesProvider(this.settings, ctx.modelProviderId ?? null)) await this.park(key, ctx, /** @type {any} */ (err), entry, ours);
        break;
      case "fatal":
        if (entry) await giveUp(this, entry, `an error that waiting cannot fix: ${outcome.reason}`);
        break;
      case "aborted":
        if (entry && ours) await giveUp(this, entry, "the resumed run was aborted");
        break;
      default:
        if (entry && ours) await failedAttempt(this, entry, outcome.reason);
    }
    if (this.queue.dirty) await this.queue.save();
    this.arm();
  }

  /**
   * `subagent_spawned`: remember each child's parent, since a parked child is resumed through it.
   * @param {any} event
   * @param {any} ctx
   */
  async onSubagentSpawned(event, ctx) {
    const child = event?.childSessionKey ?? ctx?.childSessionKey;
    const parent = ctx?.requesterSessionKey;
    if (!this.queue || typeof child !== "string" || typeof parent !== "string") return;
    this.queue.linkParent(child, parent);
    await this.queue.save();
  }

  // -- parking --------------------------------------------------------------------------------

  /**
   * @param {string} key
   * @param {any} ctx
   * @param {import("./classify.js").RunError} err
   * @param {import("./queue.js").Entry|undefined} entry
   * @param {boolean} ours
   */
  async park(key, ctx, err, entry, ours) {
    const q = /** @type {ParkQueue} */ (this.queue);
    const reset = await this.findReset(err, ctx.modelProviderId ?? entry?.providerId ?? null);
    if (entry && ours) {
      if (entry.attempts >= this.settings.maxAttempts) {
        await giveUp(this, entry, `the budget was still spent after ${entry.attempts} resume attempt(s)`);
        return;
      }
      entry.lastError = err.message;
      this.setParked(entry, reset.at, reset.source);
      await q.journal({ event: "re-parked", sessionKey: key, attempts: entry.attempts, resetAt: iso(reset.at), resetSource: reset.source });
      this.logger.info(`budget-park: ${key} hit the budget again; next try after ${iso(entry.dueAt)}`);
      this.notify(key, `⏸ The usage budget is still spent. This session stays parked and continues automatically after ${iso(reset.at)} (attempt ${entry.attempts} of ${this.settings.maxAttempts} used).`);
      return;
    }
    if (entry) {
      entry.lastError = err.message;
      entry.providerId = ctx.modelProviderId ?? entry.providerId;
      this.setParked(entry, reset.at, reset.source);
      await q.journal({ event: "updated", sessionKey: key, resetAt: iso(reset.at), resetSource: reset.source });
      return;
    }
    /** @type {import("./queue.js").Entry} */
    const fresh = {
      sessionKey: key,
      sessionId: ctx.sessionId ?? null,
      agentId: ctx.agentId ?? null,
      providerId: ctx.modelProviderId ?? null,
      parentSessionKey: q.parents.get(key) ?? null,
      children: [],
      parkedAt: this.now(),
      resetAt: reset.at,
      resetSource: reset.source,
      dueAt: 0,
      attempts: 0,
      status: "parked",
      resumeRunId: null,
      resumeStartedAt: null,
      lastError: err.message,
    };
    this.setParked(fresh, reset.at, reset.source);
    const put = q.put(fresh);
    if (put.refused) {
      this.logger.warn(`budget-park: NOT parking ${key}: ${put.refused}`);
      await q.journal({ event: "refused", sessionKey: key, reason: put.refused });
      this.notify(key, `⚠️ The usage budget is spent, and this session could not be parked for an automatic resume: ${put.refused}. Continue it by hand after ${iso(reset.at)}.`);
      return;
    }
    await q.journal({ event: "parked", sessionKey: key, resetAt: iso(reset.at), resetSource: reset.source, dueAt: iso(fresh.dueAt) });
    this.logger.info(`budget-park: parked ${key} until ${iso(reset.at)} (from ${reset.source})`);
    this.notify(key, `⏸ The usage budget is spent. This session is parked and continues automatically after ${iso(reset.at)}.`);
  }

  /**
   * @param {import("./classify.js").RunError} err
   * @param {string|null} providerId
   * @returns {Promise<{at: number, source: string}>}
   */
  async findReset(err, providerId) {
    const now = this.now();
    const told = resetFromError(err, now);
    if (told) return told;
    const usage = await this.readUsage(providerId).catch(() => null);
    if (usage?.ok && usage.resetsAt) return { at: usage.resetsAt, source: "usage.resets_at" };
    this.logger.warn("budget-park: no reset time in the error or from /v1/usage; using the fallback delay");
    return { at: now + this.settings.fallbackDelayMinutes * 60_000, source: "fallback" };
  }

  /**
   * @param {import("./queue.js").Entry} entry
   * @param {number} resetAt
   * @param {string} source
   * @param {number} [dueAt]
   */
  setParked(entry, resetAt, source, dueAt) {
    const s = this.settings;
    entry.status = "parked";
    entry.resumeRunId = null;
    entry.resumeStartedAt = null;
    entry.resetAt = resetAt;
    entry.resetSource = source;
    entry.dueAt = dueAt ?? Math.max(resetAt, this.now()) + s.graceSeconds * 1000 + Math.floor(this.random() * s.jitterSeconds * 1000);
    if (this.queue) this.queue.dirty = true;
  }

  // -- notices and connections ----------------------------------------------------------------

  /**
   * Writes a short note into the session's transcript so the person using it sees what
   * happened (needs `operator.admin` for `chat.inject`). Failures are logged, never fatal.
   * @param {string} sessionKey
   * @param {string} message
   */
  notify(sessionKey, message) {
    if (!this.settings.notifySessions) return;
    this.notices = this.notices.then(async () => {
      try {
        await this.withGateway(true, (gw) => gw.request("chat.inject", { sessionKey, message, label: "tollgate" }));
      } catch (e) {
        this.logger.debug?.(`budget-park: notice to ${sessionKey} failed: ${String(e)}`);
      }
    });
  }

  /**
   * @template T
   * @param {boolean} admin
   * @param {(gw: GatewayLike) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async withGateway(admin, fn) {
    const gw = await this.openGateway({ admin });
    try {
      return await fn(gw);
    } finally {
      gw.close();
    }
  }

  /** @param {{admin: boolean}} opts */
  async defaultGateway({ admin }) {
    const conn = gatewayConnection(this.settings, this.getConfig(), this.port);
    const scopes = admin ? ["operator.read", "operator.write", "operator.admin"] : ["operator.read", "operator.write"];
    const client = new GatewayClient({ ...conn, scopes, version: "0.1.0" });
    await client.connect();
    return client;
  }

  /** @param {string|null} providerId */
  async defaultUsage(providerId) {
    const conn = tollgateConnection(this.settings, this.getConfig(), providerId);
    if (!conn) return null;
    return fetchUsage(conn);
  }
}

/** @param {number} ms */
function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** @param {any} event */
function finalText(event) {
  const msgs = Array.isArray(event?.messages) ? event.messages : [];
  const last = msgs[msgs.length - 1];
  if (!last || last.role !== "assistant") return null;
  if (typeof last.content === "string") return last.content;
  if (Array.isArray(last.content)) return last.content.filter((p) => p?.type === "text").map((p) => p.text).join("") || null;
  return null;
}
