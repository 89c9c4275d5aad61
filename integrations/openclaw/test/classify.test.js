import { test } from "node:test";
import assert from "node:assert/strict";
import { classify, parseErrorBody, runError } from "../src/classify.js";
import { budgetEvent, errorEvent, okEvent } from "./helpers.js";

test("a provider 429 with success:true is read from the last message's error fields", () => {
  const err = runError(budgetEvent());
  assert.ok(err);
  assert.equal(err.code, "budget_exceeded");
  assert.equal(err.stopReason, "error");
  assert.equal(err.body?.reset_at, "2026-11-29T15:00:00Z");
  assert.deepEqual(classify(err).kind, "budget");
});

test("a normal answer is not an error", () => {
  assert.equal(runError(okEvent()), null);
  assert.equal(classify(null).kind, "ok");
});

test("the error code decides, not the wording", () => {
  // A budget code with a message that mentions nothing budget-like is still a budget stop.
  const odd = runError(errorEvent({ code: "budget_exceeded", message: "429 something happened" }));
  assert.equal(classify(odd).kind, "budget");
  // A per-minute limit that mentions the word "budget" is still a per-minute limit.
  const rate = runError(errorEvent({ code: "rate_limit_exceeded", type: "rate_limit_error", message: "rate limit exceeded; budget fine" }));
  assert.equal(classify(rate).kind, "rate_limit");
});

test("errors no wait can fix are fatal", () => {
  for (const code of ["invalid_api_key", "key_revoked", "subscription_expired", "insufficient_credits", "insufficient_quota"]) {
    assert.equal(classify(runError(errorEvent({ code }))).kind, "fatal", code);
  }
});

test("an unknown code is transient", () => {
  assert.equal(classify(runError(errorEvent({ code: "upstream_error", message: "502 bad gateway" }))).kind, "transient");
});

test("without a code, tollgate's budget wording is recognised", () => {
  const err = runError(budgetEvent({ withBody: false }));
  assert.equal(err?.code, null);
  assert.equal(classify(err).kind, "budget");
});

test("without a code, a bare 429 is a rate limit and a 401 is fatal", () => {
  const mk = (message) => classify({ message, code: null, type: null, body: null, timestamp: null, stopReason: "error" });
  assert.equal(mk("429 Too Many Requests").kind, "rate_limit");
  assert.equal(mk("401 invalid api key").kind, "fatal");
  assert.equal(mk("socket hang up").kind, "transient");
});

test("aborted runs and thrown errors are recognised", () => {
  const aborted = runError({ success: false, messages: [{ role: "assistant", stopReason: "aborted", content: [] }] });
  assert.equal(classify(aborted).kind, "aborted");
  const thrown = runError({ success: false, error: "boom", messages: [] });
  assert.equal(thrown?.message, "boom");
  assert.equal(classify(thrown).kind, "transient");
});

test("errorBody may be the inner object or wrapped in {error}", () => {
  assert.equal(parseErrorBody('{"error":{"code":"x"}}')?.code, "x");
  assert.equal(parseErrorBody('{"code":"y"}')?.code, "y");
  assert.equal(parseErrorBody("not json"), null);
  assert.equal(parseErrorBody("[1,2]"), null);
});
