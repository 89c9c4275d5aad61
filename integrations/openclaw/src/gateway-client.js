// A small client for the OpenClaw gateway's WebSocket protocol (version 4), with no dependencies.
//
// Handshake: the gateway first sends a `connect.challenge` event; the client answers with a
// `connect` request. On direct loopback, the reserved `gateway-client` id in `backend` mode
// with the gateway's shared token (or password) needs no device identity and keeps the scopes
// it asks for. Frames: {type:"req", id, method, params} -> {type:"res", id, ok, payload|error};
// the server also pushes {type:"event", event, payload}.
//
// Third-party plugins may not dispatch gateway methods in process
// (`api.runtime.gateway.request` is reserved for bundled plugins), hence the socket.

export const PROTOCOL_VERSION = 4;

export class GatewayError extends Error {
  /**
   * @param {string} message
   * @param {{code?: string, retryable?: boolean, retryAfterMs?: number, details?: unknown}} [info]
   */
  constructor(message, info = {}) {
    super(message);
    this.name = "GatewayError";
    this.code = info.code ?? null;
    this.retryable = info.retryable ?? false;
    this.retryAfterMs = info.retryAfterMs ?? null;
    this.details = info.details ?? null;
  }
}

/**
 * @typedef {object} GatewayOptions
 * @property {string} url               ws://127.0.0.1:<port>
 * @property {string} [token]           gateway.auth.token
 * @property {string} [password]        gateway.auth.password
 * @property {string[]} [scopes]
 * @property {string} [version]         this client's version, for the gateway's logs
 * @property {number} [connectTimeoutMs]
 * @property {typeof WebSocket} [WebSocketImpl]
 */

export class GatewayClient {
  /** @param {GatewayOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.seq = 0;
    /** @type {Map<string, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    /** @type {Set<(event: string, payload: any) => void>} */
    this.listeners = new Set();
    this.hello = null;
    this.closed = false;
  }

  /** Opens the socket and completes the handshake. */
  async connect() {
    const { url, connectTimeoutMs = 15_000 } = this.opts;
    const WS = this.opts.WebSocketImpl ?? globalThis.WebSocket;
    if (typeof WS !== "function") throw new GatewayError("this Node has no WebSocket (Node 22 or later is needed)");
    const ws = new WS(url);
    this.ws = ws;
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new GatewayError(`gateway handshake timed out after ${connectTimeoutMs} ms`)), connectTimeoutMs);
      let settled = false;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.close();
        reject(err);
      };
      ws.addEventListener("error", (ev) => fail(new GatewayError(`gateway socket error: ${/** @type {any} */ (ev)?.message ?? "connection failed"}`)));
      ws.addEventListener("close", (ev) => {
        this.closed = true;
        const err = new GatewayError(`gateway socket closed (${ev?.code ?? "?"} ${ev?.reason ?? ""})`.trim());
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(err);
        }
        this.pending.clear();
        fail(err);
      });
      ws.addEventListener("message", (ev) => {
        let frame;
        try {
          frame = JSON.parse(typeof ev.data === "string" ? ev.data : Buffer.from(ev.data).toString("utf8"));
        } catch {
          return;
        }
        if (frame?.type === "res") return this.onResponse(frame);
        if (frame?.type !== "event") return;
        if (frame.event === "connect.challenge" && !settled) {
          this.request("connect", this.connectParams(), connectTimeoutMs).then(
            (hello) => {
              if (settled) return;
              settled = true;
              clearTimeout(timer);
              this.hello = hello;
              resolve(hello);
            },
            fail,
          );
          return;
        }
        for (const fn of this.listeners) {
          try {
            fn(frame.event, frame.payload);
          } catch {
            // a listener's bug must not break the socket
          }
        }
      });
    });
  }

  connectParams() {
    const { token, password, scopes = ["operator.read", "operator.write"], version = "0.1.0" } = this.opts;
    /** @type {Record<string, string>} */
    const auth = {};
    if (token) auth.token = token;
    if (password) auth.password = password;
    return {
      minProtocol: PROTOCOL_VERSION,
      maxProtocol: PROTOCOL_VERSION,
      client: { id: "gateway-client", version, platform: process.platform, mode: "backend" },
      role: "operator",
      scopes,
      caps: [],
      commands: [],
      permissions: {},
      auth,
      locale: "en-US",
      userAgent: `tollgate-budget-park/${version}`,
    };
  }

  /** @param {any} frame */
  onResponse(frame) {
    const p = this.pending.get(String(frame.id));
    if (!p) return;
    this.pending.delete(String(frame.id));
    clearTimeout(p.timer);
    if (frame.ok) p.resolve(frame.payload);
    else {
      const e = frame.error ?? {};
      p.reject(new GatewayError(String(e.message ?? "gateway request failed"), {
        code: e.code, retryable: e.retryable, retryAfterMs: e.retryAfterMs, details: e.details,
      }));
    }
  }

  /**
   * @param {string} method
   * @param {Record<string, unknown>} params
   * @param {number} [timeoutMs]
   */
  request(method, params, timeoutMs = 30_000) {
    const ws = this.ws;
    if (!ws || this.closed) return Promise.reject(new GatewayError("gateway socket is not open"));
    const id = `tg${++this.seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new GatewayError(`${method} timed out after ${timeoutMs} ms`, { code: "TIMEOUT", retryable: true }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }

  /** @param {(event: string, payload: any) => void} fn */
  onEvent(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close() {
    this.closed = true;
    try {
      this.ws?.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Connects, runs `fn` with the client, and always closes the socket.
 * @template T
 * @param {GatewayOptions} opts
 * @param {(client: GatewayClient) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withGateway(opts, fn) {
  const client = new GatewayClient(opts);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
