import { test } from "node:test";
import assert from "node:assert/strict";
import { GatewayClient, PROTOCOL_VERSION, withGateway } from "../src/gateway-client.js";

/**
 * A WebSocket stand-in that plays the gateway's side of protocol 4: it sends the
 * connect.challenge on open and answers each request through `reply`.
 */
function fakeSocketClass({ reply, challenge = true }) {
  const sockets = [];
  class FakeSocket extends EventTarget {
    constructor(url) {
      super();
      this.url = url;
      this.sent = [];
      sockets.push(this);
      if (challenge) setImmediate(() => this.push({ type: "event", event: "connect.challenge", payload: { nonce: "n1", ts: 1 } }));
    }
    push(frame) {
      const ev = new Event("message");
      /** @type {any} */ (ev).data = JSON.stringify(frame);
      this.dispatchEvent(ev);
    }
    send(text) {
      const frame = JSON.parse(text);
      this.sent.push(frame);
      setImmediate(() => {
        const out = reply(frame, this);
        if (out) this.push(out);
      });
    }
    close() {
      if (this.closed) return;
      this.closed = true;
      const ev = new Event("close");
      Object.assign(ev, { code: 1000, reason: "bye" });
      this.dispatchEvent(ev);
    }
  }
  return { FakeSocket, sockets };
}

const ok = (frame, payload) => ({ type: "res", id: frame.id, ok: true, payload });

test("the handshake answers the challenge with a protocol-4 backend connect", async () => {
  const { FakeSocket, sockets } = fakeSocketClass({
    reply: (f) => (f.method === "connect" ? ok(f, { type: "hello-ok", protocol: 4, auth: { role: "operator", scopes: f.params.scopes } }) : null),
  });
  const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "tok", WebSocketImpl: /** @type {any} */ (FakeSocket) });
  const hello = await client.connect();
  assert.equal(hello.protocol, 4);
  const connect = sockets[0].sent[0];
  assert.equal(connect.type, "req");
  assert.equal(typeof connect.id, "string", "frame ids are strings");
  assert.equal(connect.method, "connect");
  assert.equal(connect.params.minProtocol, PROTOCOL_VERSION);
  assert.equal(connect.params.maxProtocol, PROTOCOL_VERSION);
  assert.deepEqual(connect.params.client.id, "gateway-client");
  assert.deepEqual(connect.params.client.mode, "backend");
  assert.ok(connect.params.client.platform);
  assert.equal(connect.params.role, "operator");
  assert.deepEqual(connect.params.auth, { token: "tok" });
  assert.deepEqual(connect.params.scopes, ["operator.read", "operator.write"]);
  assert.equal("name" in connect.params.client, false, "no keys outside the schema");
  client.close();
});

test("requests resolve with their payload and reject with the gateway's error", async () => {
  const { FakeSocket } = fakeSocketClass({
    reply: (f) => {
      if (f.method === "connect") return ok(f, { type: "hello-ok" });
      if (f.method === "chat.send") return ok(f, { runId: f.params.idempotencyKey, status: "started" });
      return { type: "res", id: f.id, ok: false, error: { code: "INVALID_REQUEST", message: "unknown method", retryable: false } };
    },
  });
  await withGateway({ url: "ws://x", password: "pw", WebSocketImpl: /** @type {any} */ (FakeSocket) }, async (gw) => {
    assert.deepEqual(await gw.request("chat.send", { sessionKey: "k", message: "m", idempotencyKey: "id1" }), { runId: "id1", status: "started" });
    await assert.rejects(gw.request("nope", {}), (e) => e.code === "INVALID_REQUEST" && /unknown method/.test(e.message));
  });
});

test("a refused connect fails the handshake with the reason", async () => {
  const { FakeSocket } = fakeSocketClass({
    reply: (f) => ({ type: "res", id: f.id, ok: false, error: { code: "UNAUTHORIZED", message: "gateway token mismatch" } }),
  });
  const client = new GatewayClient({ url: "ws://x", token: "bad", WebSocketImpl: /** @type {any} */ (FakeSocket) });
  await assert.rejects(client.connect(), /token mismatch/);
});

test("no challenge means a handshake timeout, not a hang", async () => {
  const { FakeSocket } = fakeSocketClass({ reply: () => null, challenge: false });
  const client = new GatewayClient({ url: "ws://x", connectTimeoutMs: 50, WebSocketImpl: /** @type {any} */ (FakeSocket) });
  await assert.rejects(client.connect(), /timed out/);
});

test("a request without an answer times out, and a closed socket rejects what is pending", async () => {
  const { FakeSocket, sockets } = fakeSocketClass({ reply: (f) => (f.method === "connect" ? ok(f, {}) : null) });
  const client = new GatewayClient({ url: "ws://x", WebSocketImpl: /** @type {any} */ (FakeSocket) });
  await client.connect();
  await assert.rejects(client.request("agent.wait", {}, 30), /timed out/);
  const pending = client.request("agent.wait", {}, 10_000);
  sockets[0].close();
  await assert.rejects(pending, /closed/);
  await assert.rejects(client.request("x", {}), /not open/);
});

test("server events reach listeners", async () => {
  const { FakeSocket, sockets } = fakeSocketClass({ reply: (f) => (f.method === "connect" ? ok(f, {}) : null) });
  const client = new GatewayClient({ url: "ws://x", WebSocketImpl: /** @type {any} */ (FakeSocket) });
  await client.connect();
  const seen = [];
  client.onEvent((event, payload) => seen.push([event, payload.state]));
  sockets[0].push({ type: "event", event: "chat", payload: { state: "final" } });
  assert.deepEqual(seen, [["chat", "final"]]);
  client.close();
});
