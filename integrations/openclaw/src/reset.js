// When a spent budget comes back: told by the server, never guessed from the clock.
//
// Sources, best first: the 429's `reset_at` field, the "resets at <ISO>" in its message, its
// Retry-After (OpenClaw appends "Retry-After: N seconds" to the message), and finally tollgate's
// `GET /v1/usage`, whose `budget.resets_at` is exact.

const ISO_RE = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})/;

/**
 * @param {unknown} value
 * @returns {number|null} epoch ms
 */
export function parseInstant(value) {
  if (typeof value !== "string") return null;
  const m = ISO_RE.exec(value);
  if (!m) return null;
  const ms = Date.parse(m[0]);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The reset time a budget error carries, if any.
 * @param {import("./classify.js").RunError} err
 * @param {number} now epoch ms, used when only a relative Retry-After is known
 * @returns {{at: number, source: string}|null}
 */
export function resetFromError(err, now) {
  const fromField = parseInstant(err.body?.reset_at) ?? parseInstant(err.body?.resets_at);
  if (fromField !== null) return { at: fromField, source: "error.reset_at" };
  const said = /resets? at\s+(\S+)/i.exec(err.message ?? "");
  const fromText = said ? parseInstant(said[1]) : null;
  if (fromText !== null) return { at: fromText, source: "error.message" };
  const retry = /retry-after:?\s*(\d+)\s*s/i.exec(err.message ?? "");
  if (retry) {
    const base = err.timestamp ?? now;
    return { at: base + Number(retry[1]) * 1000, source: "retry-after" };
  }
  return null;
}

/**
 * Dollars as exact nano-dollars (BigInt) from a JSON number or decimal string.
 * @param {unknown} value
 * @returns {bigint|null}
 */
export function usdToNanos(value) {
  let text;
  if (typeof value === "number" && Number.isFinite(value)) text = String(value);
  else if (typeof value === "string" && value.trim()) text = value.trim();
  else return null;
  const m = /^(-)?(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(text);
  if (!m || (!m[2] && !m[3])) return null;
  let digits = (m[2] || "0") + (m[3] || "");
  // nanos = digits * 10^(9 - fractionLength + exponent); a negative power drops digits.
  let scale = (m[3] || "").length - Number(m[4] || 0) - 9;
  if (scale > 0) {
    const keep = digits.length - scale;
    const cut = keep > 0 ? digits.slice(keep) : digits;
    digits = keep > 0 ? digits.slice(0, keep) : "0";
    if (/[1-9]/.test(cut)) digits = (BigInt(digits) + 1n).toString(); // below a nano: round up
    scale = 0;
  }
  const nanos = BigInt(digits) * 10n ** BigInt(-scale);
  return m[1] ? -nanos : nanos;
}

/**
 * `baseUrl` is the provider's OpenAI base (".../v1"); usage lives beside chat completions.
 * @param {string} baseUrl
 */
export function usageUrl(baseUrl) {
  const base = baseUrl.replace(/\/+$/, "");
  return /\/v1$/.test(base) ? `${base}/usage` : `${base}/v1/usage`;
}

/**
 * @typedef {object} Usage
 * @property {true} ok
 * @property {bigint|null} remainingNanos
 * @property {number|null} resetsAt epoch ms
 * @property {string|null} duration
 */

/**
 * @typedef {object} UsageFailure
 * @property {false} ok
 * @property {boolean} fatal  the key itself is refused (401/403): waiting cannot help
 * @property {number|null} status
 * @property {string} reason
 */

/**
 * Reads `GET /v1/usage`. Accepts the bare object and the `{"success": true, "data": …}` envelope.
 * @param {{baseUrl: string, apiKey: string, fetchImpl?: typeof fetch, timeoutMs?: number}} opts
 * @returns {Promise<Usage|UsageFailure>}
 */
export async function fetchUsage({ baseUrl, apiKey, fetchImpl = fetch, timeoutMs = 10_000 }) {
  let res;
  try {
    res = await fetchImpl(usageUrl(baseUrl), {
      headers: { authorization: `Bearer ${apiKey}`, accept: "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    return { ok: false, fatal: false, status: null, reason: `usage request failed: ${errText(e)}` };
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const err = body && typeof body === "object" ? /** @type {any} */ (body).error : null;
    const code = err && typeof err === "object" ? err.code : typeof err === "string" ? err : null;
    const reason = `usage answered HTTP ${res.status}${code ? ` (${code})` : ""}`;
    return { ok: false, fatal: res.status === 401 || res.status === 403, status: res.status, reason };
  }
  return readUsage(body);
}

/**
 * @param {unknown} body
 * @returns {Usage|UsageFailure}
 */
export function readUsage(body) {
  let data = /** @type {any} */ (body);
  if (data && typeof data === "object" && "data" in data && data.data && typeof data.data === "object") data = data.data;
  const budget = data && typeof data === "object" ? data.budget : null;
  if (!budget || typeof budget !== "object") {
    return { ok: false, fatal: false, status: 200, reason: "usage has no budget object" };
  }
  let remaining = null;
  if (Number.isSafeInteger(budget.remaining_nanos)) remaining = BigInt(budget.remaining_nanos);
  else if (budget.remaining !== undefined && budget.remaining !== null) remaining = usdToNanos(budget.remaining);
  else if (budget.limit !== undefined && budget.limit !== null) {
    const limit = usdToNanos(budget.limit);
    const spent = usdToNanos(budget.spent ?? 0);
    remaining = limit !== null && spent !== null ? limit - spent : null;
  }
  return {
    ok: true,
    remainingNanos: remaining,
    resetsAt: parseInstant(budget.resets_at ?? budget.reset_at),
    duration: typeof budget.duration === "string" ? budget.duration : null,
  };
}

/** @param {unknown} e */
function errText(e) {
  if (e && typeof e === "object" && "cause" in e && e.cause) return `${String(e)} (${String(e.cause)})`;
  return String(e);
}
