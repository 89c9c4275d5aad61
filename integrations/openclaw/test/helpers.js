// Fakes for the plugin's unit tests: a clock, a gateway that records calls, a usage source,
// and agent_end payloads shaped like the ones OpenClaw 2026.9 sends.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BudgetPark } from "../src/park.js";
import { resolveSettings } from "../src/config.js";

export const T0 = Date.parse("2026-11-29T14:30:00Z");
export const RESET = "2026-11-29T15:00:00Z";

export async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), "budget-park-test-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function quietLogger() {
  const lines = [];
  const log = (level) => (msg) => lines.push(`${level}: ${msg}`);
  return { lines, info: log("info"), warn: log("warn"), error: log("error"), debug: log("debug") };
}

/** The failing last message OpenClaw puts in agent_end when the provider answered 429. */
export function budgetEvent({ resetAt = RESET, withBody = true, message } = {}) {
  const text = message ?? `budget exceeded: usage limit reached for this 5h window; resets at ${resetAt}`;
  const body = { code: "budget_exceeded", message: text, param: null, reset_at: resetAt, type: "budget_exceeded" };
  return {
    success: true, // what OpenClaw really reports on a provider 429
    durationMs: 80,
    messages: [
      { role: "user", content: [{ type: "text", text: "do the task" }], timestamp: T0 - 1000 },
      {
        role: "assistant", content: [], stopReason: "error", timestamp: T0,
        errorMessage: `429 ${text}; Retry-After: 1800 seconds`,
        ...(withBody ? { errorCode: "budget_exceeded", errorType: "budget_exceeded", errorBody: JSON.stringify(body) } : {}),
      },
    ],
  };
}

export function errorEvent({ code, type = code, message = `${code} error` }) {
  return {
    success: true,
    messages: [
      { role: "user", content: "x" },
      {
        role: "assistant", content: [], stopReason: "error", errorMessage: message, errorCode: code, errorType: type,
        errorBody: JSON.stringify({ code, type, message }),
      },
    ],
  };
}

export function okEvent(text = "all done") {
  return {
    success: true,
    messages: [
      { role: "user", content: "x" },
      { role: "assistant", content: [{ type: "text", text }], stopReason: "stop" },
    ],
  };
}

export function ctxFor(sessionKey, extra = {}) {
  return { sessionKey, sessionId: `sid-${sessionKey}`, agentId: "main", modelProviderId: "tollgate", runId: "user-run", ...extra };
}

/**
 * A gateway that answers like OpenClaw's: sessions.describe from a table, chat.send recorded
 * (and, if `onSend` says so, followed by that run's agent_end), agent.wait as scripted.
 */
export class FakeGateway {
  constructor() {
    this.calls = [];
    this.sessions = new Map();
    this.active = 0;
    this.maxActive = 0;
    this.opened = 0;
    /** @type {(params: any) => Promise<{status: string, error?: string, text?: string}>|{status: string}} */
    this.onSend = () => ({ status: "ok", text: "done" });
    this.refuseConnect = null;
  }

  session(key, fields = {}) {
    this.sessions.set(key, { key, sessionId: `sid-${key}`, archived: false, hasActiveRun: false, ...fields });
  }

  open = async () => {
    if (this.refuseConnect) throw new Error(this.refuseConnect);
    this.opened += 1;
    return {
      request: (method, params) => this.request(method, params),
      close: () => {},
    };
  };

  sent(method = "chat.send") {
    return this.calls.filter((c) => c.method === method).map((c) => c.params);
  }

  async request(method, params) {
    this.calls.push({ method, params });
    if (method === "sessions.describe") return { session: this.sessions.get(params.key) ?? null };
    if (method === "chat.inject") return { ok: true };
    if (method === "chat.send") {
      this.active += 1;
      this.maxActive = Math.max(this.maxActive, this.active);
      this.pendingRun = Promise.resolve(this.onSend(params));
      return { runId: params.idempotencyKey, status: "started" };
    }
    if (method === "agent.wait") {
      const out = await this.pendingRun;
      await new Promise((r) => setImmediate(r));
      this.active -= 1;
      if (out.status === "ok") return { runId: params.runId, status: "ok", terminalReply: { text: out.text ?? "done" } };
      return { runId: params.runId, status: out.status, error: out.error };
    }
    throw new Error(`unexpected method ${method}`);
  }
}

/** A BudgetPark wired to fakes; timers never fire on their own, the test drives runDue(). */
export async function makePark({ dir, gateway = new FakeGateway(), usage, settings = {}, now, random } = {}) {
  const clock = { t: T0 };
  const logger = quietLogger();
  const sleeps = [];
  const usageCalls = [];
  const park = new BudgetPark({
    settings: resolveSettings({ graceSeconds: 2, jitterSeconds: 10, spacingSeconds: 5, ...settings }),
    getConfig: () => ({}),
    logger,
    openGateway: gateway.open,
    readUsage: async (providerId) => {
      usageCalls.push(providerId);
      return typeof usage === "function" ? usage(providerId) : usage ?? null;
    },
    now: now ?? (() => clock.t),
    random: random ?? (() => 0.5),
    setTimer: () => ({ fake: true }),
    clearTimer: () => {},
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
  await park.start(dir);
  return { park, gateway, clock, logger, sleeps, usageCalls };
}
