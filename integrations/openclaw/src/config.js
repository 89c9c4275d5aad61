// Plugin settings (`plugins.entries.tollgate-budget-park.config` in openclaw.json) with their
// defaults, and the two connections the plugin needs, read from OpenClaw's own config: the
// gateway's WebSocket (port, token) and tollgate (the provider's baseUrl and apiKey).

export const DEFAULTS = Object.freeze({
  maxAttempts: 3,
  maxQueue: 200,
  graceSeconds: 2,
  jitterSeconds: 60,
  spacingSeconds: 5,
  runTimeoutSeconds: 600,
  fallbackDelayMinutes: 30,
  minRemainingUsd: "0",
  notifySessions: true,
  providers: /** @type {string[]|null} */ (null),
  resumeMessage:
    "The usage budget has reset. Continue the task you were working on from where you left off; " +
    "do not start over.",
  gatewayUrl: /** @type {string|null} */ (null),
  gatewayToken: /** @type {string|null} */ (null),
  gatewayPassword: /** @type {string|null} */ (null),
  tollgateBaseUrl: /** @type {string|null} */ (null),
  tollgateApiKey: /** @type {string|null} */ (null),
  stateDir: /** @type {string|null} */ (null),
});

/** @typedef {typeof DEFAULTS} Settings */

/**
 * Settings with defaults filled in; values of the wrong type fall back to the default.
 * @param {Record<string, unknown>|undefined} raw
 * @returns {Settings}
 */
export function resolveSettings(raw) {
  const cfg = raw && typeof raw === "object" ? raw : {};
  /** @type {any} */
  const out = { ...DEFAULTS };
  for (const [k, def] of Object.entries(DEFAULTS)) {
    const v = cfg[k];
    if (v === undefined || v === null) continue;
    if (k === "providers") {
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) out[k] = v;
    } else if (typeof def === "number" || (def === null && typeof v === "number")) {
      if (typeof v === "number" && Number.isFinite(v) && v >= 0) out[k] = v;
    } else if (typeof def === "boolean") {
      if (typeof v === "boolean") out[k] = v;
    } else if (typeof v === "string") {
      out[k] = v;
    }
  }
  out.maxAttempts = Math.max(1, Math.floor(out.maxAttempts));
  out.maxQueue = Math.max(1, Math.floor(out.maxQueue));
  return out;
}

/**
 * A secret in OpenClaw's config is a string, "${ENV}", or a SecretRef {source: "env", id}.
 * @param {unknown} v
 * @param {NodeJS.ProcessEnv} env
 * @returns {string|null}
 */
export function resolveSecret(v, env = process.env) {
  if (typeof v === "string") {
    const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v.trim());
    if (m) return env[m[1]] ?? null;
    return v || null;
  }
  if (v && typeof v === "object") {
    const ref = /** @type {Record<string, unknown>} */ (v);
    if (ref.source === "env" && typeof ref.id === "string") return env[ref.id] ?? null;
  }
  return null;
}

/**
 * How to reach this gateway's WebSocket.
 * @param {Settings} s
 * @param {any} ocConfig   OpenClaw's config (api.config)
 * @param {number|null} port  the port reported by `gateway_start`, when known
 * @param {NodeJS.ProcessEnv} [env]
 */
export function gatewayConnection(s, ocConfig, port, env = process.env) {
  const gw = ocConfig?.gateway ?? {};
  const p = port ?? (Number.isInteger(gw.port) ? gw.port : null) ?? Number(env.OPENCLAW_GATEWAY_PORT || 18789);
  const scheme = gw.tls?.enabled ? "wss" : "ws";
  return {
    url: s.gatewayUrl ?? `${scheme}://127.0.0.1:${p}`,
    token: s.gatewayToken ?? resolveSecret(gw.auth?.token, env) ?? env.OPENCLAW_GATEWAY_TOKEN ?? undefined,
    password: s.gatewayPassword ?? resolveSecret(gw.auth?.password, env) ?? env.OPENCLAW_GATEWAY_PASSWORD ?? undefined,
  };
}

/**
 * tollgate's base URL and key for the provider a session ran on.
 * @param {Settings} s
 * @param {any} ocConfig
 * @param {string|null} providerId
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {{baseUrl: string, apiKey: string}|null}
 */
export function tollgateConnection(s, ocConfig, providerId, env = process.env) {
  const provider = providerId ? ocConfig?.models?.providers?.[providerId] : null;
  const baseUrl = s.tollgateBaseUrl ?? (typeof provider?.baseUrl === "string" ? provider.baseUrl : null);
  const apiKey = (s.tollgateApiKey ? resolveSecret(s.tollgateApiKey, env) : null) ?? resolveSecret(provider?.apiKey, env);
  return baseUrl && apiKey ? { baseUrl, apiKey } : null;
}

/**
 * @param {Settings} s
 * @param {string|null|undefined} providerId
 */
export function watchesProvider(s, providerId) {
  return !s.providers || (typeof providerId === "string" && s.providers.includes(providerId));
}
