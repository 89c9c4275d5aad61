// Reading how an OpenClaw run ended, from the `agent_end` hook's payload.
//
// OpenClaw reports `success: true` when the provider answered 429: the failure is only on the
// last message (`stopReason: "error"` plus `errorMessage`, `errorCode`, `errorType` and
// `errorBody`, the provider's JSON error object as text). So classification reads those fields
// and the gateway's error `code` first; message text is a fallback for when a proxy in between
// dropped the body.

/** Error codes that mean "the budget window is spent; wait for the reset". */
export const BUDGET_CODES = new Set(["budget_exceeded"]);

/** Per-minute limits: OpenClaw retries these itself within the run. */
export const RATE_CODES = new Set(["rate_limit_exceeded"]);

/** Codes no wait can fix: resuming would only fail again. */
export const FATAL_CODES = new Set([
  "invalid_api_key",
  "key_revoked",
  "subscription_expired",
  "insufficient_credits",
  "insufficient_quota",
  "model_not_found",
  "context_length_exceeded",
  "invalid_request_error",
  "permission_error",
  "authentication_error",
]);

/**
 * @typedef {object} RunError
 * @property {string} message   the user-facing error text
 * @property {string|null} code the provider's error code, when known
 * @property {string|null} type the provider's error type, when known
 * @property {Record<string, unknown>|null} body the provider's error object, parsed
 * @property {number|null} timestamp when the failing message was written (ms)
 * @property {string|null} stopReason
 */

/**
 * The error a run ended with, or null when its last message is a normal answer.
 * @param {{messages?: unknown[], success?: boolean, error?: string}} event
 * @returns {RunError|null}
 */
export function runError(event) {
  const messages = Array.isArray(event?.messages) ? event.messages : [];
  const last = /** @type {Record<string, any>|undefined} */ (messages[messages.length - 1]);
  if (last && typeof last === "object" && last.stopReason === "error") {
    const body = parseErrorBody(last.errorBody);
    return {
      message: String(last.errorMessage ?? body?.message ?? "unknown error"),
      code: str(body?.code) ?? str(last.errorCode),
      type: str(body?.type) ?? str(last.errorType),
      body,
      timestamp: typeof last.timestamp === "number" ? last.timestamp : null,
      stopReason: "error",
    };
  }
  if (last && typeof last === "object" && last.stopReason === "aborted") {
    return { message: "run aborted", code: null, type: null, body: null, timestamp: null, stopReason: "aborted" };
  }
  if (event?.success === false || (typeof event?.error === "string" && event.error)) {
    return {
      message: String(event.error || "run failed"),
      code: null, type: null, body: null, timestamp: null, stopReason: event?.success === false ? "exception" : null,
    };
  }
  return null;
}

/**
 * `errorBody` arrives as JSON text: either the inner error object or `{"error": {...}}`.
 * @param {unknown} raw
 * @returns {Record<string, unknown>|null}
 */
export function parseErrorBody(raw) {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return null;
  const inner = /** @type {Record<string, unknown>} */ (value).error;
  if (inner && typeof inner === "object" && !Array.isArray(inner)) return /** @type {any} */ (inner);
  return /** @type {Record<string, unknown>} */ (value);
}

/**
 * @typedef {"ok"|"budget"|"rate_limit"|"fatal"|"transient"|"aborted"} Outcome
 */

/**
 * What a run's ending means for parking.
 * @param {RunError|null} err
 * @returns {{kind: Outcome, code: string|null, reason: string}}
 */
export function classify(err) {
  if (!err) return { kind: "ok", code: null, reason: "completed" };
  if (err.stopReason === "aborted") return { kind: "aborted", code: null, reason: "the run was aborted" };
  const code = err.code ?? err.type;
  for (const c of [err.code, err.type]) {
    if (c && BUDGET_CODES.has(c)) return { kind: "budget", code: c, reason: err.message };
  }
  for (const c of [err.code, err.type]) {
    if (c && RATE_CODES.has(c)) return { kind: "rate_limit", code: c, reason: err.message };
    if (c && FATAL_CODES.has(c)) return { kind: "fatal", code: c, reason: err.message };
  }
  if (!err.code) return classifyText(err.message);
  return { kind: "transient", code, reason: err.message };
}

/**
 * Fallback when no error code reached the plugin: tollgate's budget message always says
 * "budget exceeded" and "usage limit" and names the reset time.
 * @param {string} message
 * @returns {{kind: Outcome, code: string|null, reason: string}}
 */
function classifyText(message) {
  const text = message.toLowerCase();
  if (text.includes("budget exceeded") && (text.includes("usage limit") || text.includes("resets at"))) {
    return { kind: "budget", code: null, reason: message };
  }
  if (/\b(401|403)\b/.test(text) || /invalid api key|revoked|subscription expired/.test(text)) {
    return { kind: "fatal", code: null, reason: message };
  }
  if (/\b429\b|rate limit|too many requests/.test(text)) return { kind: "rate_limit", code: null, reason: message };
  return { kind: "transient", code: null, reason: message };
}

/** @param {unknown} v */
function str(v) {
  return typeof v === "string" && v ? v : null;
}
