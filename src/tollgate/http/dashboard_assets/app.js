// tollgate dashboard: a plain script, no framework, no build step (docs/dashboard.md).
//
// Rules kept throughout:
// - The key lives in sessionStorage only and travels only in the Authorization header of fetch calls
//   to this gateway's public API; never in a URL.
// - Everything from the API goes into the page as text (textContent, SVG attributes): never as HTML.
// - Money is shown as the API writes it (decimal strings) or, where the page must add amounts up, with
//   BigInt nano-dollars formatted exactly; JS numbers are used for money only to size bars.
"use strict";

(function () {
  const STORAGE = "tollgate.dashboard.key";
  const NANOS = 1000000000n;
  const PALETTE = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00",
    "#b82e2e", "#316395"];
  const MAX_GROUPS = 8; // series drawn apart; the rest are summed as "other"

  const state = {
    key: null, role: null, // "owner" | "key" | "operator"
    timers: [], logCursor: null, keysCursor: null, barsCursor: null, accountsCursor: null,
    keyNames: new Map(), subscriptions: [],
  };

  // -- small helpers ------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "onclick") node.addEventListener("click", value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function nanos(value) {
    // An integer nano-dollar amount from the API (a JSON number, exact below 2^53) as a BigInt.
    if (value === null || value === undefined) return 0n;
    try { return BigInt(value); } catch (e) { return 0n; }
  }

  function usd(n) {
    // Exact dollars from BigInt nano-dollars, written as the API writes them (tollgate.domain.money.format_usd).
    const sign = n < 0n ? "-" : "";
    const abs = n < 0n ? -n : n;
    let frac = (abs % NANOS).toString().padStart(9, "0").replace(/0+$/, "");
    if (frac.length < 2) frac = frac.padEnd(2, "0");
    return `${sign}$${(abs / NANOS).toString()}.${frac}`;
  }

  const dollars = (text) => (text === null || text === undefined ? "–" : `$${text}`);
  const pick = (obj, ...names) => { for (const n of names) if (obj && obj[n] !== undefined) return obj[n]; return undefined; };

  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  function ms(value) {
    return value === null || value === undefined ? "–" : `${Math.round(value)} ms`;
  }

  function countdownText(iso) {
    if (!iso) return "no reset (credits)";
    const left = Math.floor((Date.parse(iso) - Date.now()) / 1000);
    if (left <= 0) return "resetting now";
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    const two = (x) => String(x).padStart(2, "0");
    return `resets in ${h > 0 ? `${h}h ` : ""}${two(m)}m ${two(s)}s`;
  }

  function setStatus(text, isError) {
    const node = $("status");
    node.textContent = text || "";
    node.classList.toggle("error", Boolean(isError));
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = { Authorization: `Bearer ${state.key}` };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: opts.method || "GET", headers, cache: "no-store", credentials: "omit", redirect: "error",
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const error = data && data.error;
      const message = (error && (error.message || error)) || `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, typeof message === "string" ? message : JSON.stringify(message));
    }
    return data;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) q.set(name, value);
    const text = q.toString();
    return text ? `?${text}` : "";
  }

  function every(ms, fn) {
    state.timers.push(setInterval(() => { fn().catch((e) => setStatus(e.message, true)); }, ms));
  }

  // -- budget bars --------------------------------------------------------------------------------

  function budgetBar(budget, label, testId) {
    // budget: spent / reserved / remaining / limit as decimal strings with their Nanos (API names either style).
    const spent = nanos(pick(budget, "spentNanos", "spent_nanos"));
    const limit = nanos(pick(budget, "limitNanos", "limit_nanos"));
    const remaining = nanos(pick(budget, "remainingNanos", "remaining_nanos"));
    let reserved = pick(budget, "reservedNanos", "reserved_nanos");
    reserved = reserved === undefined ? (limit - spent - remaining > 0n ? limit - spent - remaining : 0n) : nanos(reserved);
    const resetsAt = pick(budget, "resetsAt", "resets_at");
    const share = (part) => (limit > 0n ? Math.min(100, (Number(part) / Number(limit)) * 100) : 0);
    const bar = el("div", { className: "bar", role: "img",
      "aria-label": `${usd(spent)} spent, ${usd(reserved)} reserved, ${usd(remaining)} remaining of ${usd(limit)}` });
    const spentPart = el("span", { className: "spent" });
    spentPart.style.width = `${share(spent)}%`;
    const reservedPart = el("span", { className: "reserved" });
    reservedPart.style.width = `${share(reserved)}%`;
    bar.append(spentPart, reservedPart);
    const duration = pick(budget, "duration");
    return el("div", { className: "bar-row", "data-testid": testId || "budget-bar" },
      el("div", { className: "bar-label" }, label, duration ? el("span", { className: "muted" }, ` · ${duration} window`) : null),
      bar,
      el("div", { className: "bar-figures" },
        el("span", { className: "spent-text", "data-testid": "spent" }, `${usd(spent)} spent`), " · ",
        el("span", { className: "reserved-text", "data-testid": "reserved" }, `${usd(reserved)} reserved`), " · ",
        el("span", { className: "remaining-text", "data-testid": "remaining" }, `${usd(remaining)} remaining`),
        ` of `, el("span", { "data-testid": "limit" }, usd(limit)), " · ",
        el("span", { className: "countdown", "data-testid": "countdown", dataset: { resetsAt: resetsAt || "" } },
          countdownText(resetsAt))));
  }

  function tickCountdowns() {
    let due = false;
    for (const node of document.querySelectorAll(".countdown")) {
      const at = node.dataset.resetsAt;
      node.textContent = countdownText(at || null);
      if (at && Date.parse(at) <= Date.now() && !node.dataset.refreshed) { node.dataset.refreshed = "1"; due = true; }
    }
    if (due) refreshBudgets().catch((e) => setStatus(e.message, true));
  }

  // -- charts (inline SVG) ------------------------------------------------------------------------

  function groupLabel(group, groupBy, name) {
    if (groupBy === "route") return group === null ? "(named model)" : String(group);
    if (groupBy === "key") return name ? `${name}` : String(group);
    return group === null ? "(none)" : String(group);
  }

  function stackedChart(container, series, groupBy) {
    clear(container);
    const groups = series.groups || [];
    if (!series.points || series.points.length === 0) {
      container.append(el("p", { className: "muted" }, "No requests in this range."));
      return;
    }
    const shown = groups.slice(0, MAX_GROUPS).map((g) => g.group);
    const color = new Map(shown.map((g, i) => [g, PALETTE[i % PALETTE.length]]));
    const OTHER = "\u0000other";
    // Buckets in time order, each with its parts (BigInt nano-dollars).
    const buckets = new Map();
    for (const p of series.points) {
      const key = shown.includes(p.group) ? p.group : OTHER;
      const bucket = buckets.get(p.start) || new Map();
      const part = bucket.get(key) || { cost: 0n, requests: 0 };
      part.cost += nanos(p.costNanos);
      part.requests += p.requests;
      bucket.set(key, part);
      buckets.set(p.start, bucket);
    }
    let top = 0n;
    for (const bucket of buckets.values()) {
      let sum = 0n;
      for (const part of bucket.values()) sum += part.cost;
      if (sum > top) top = sum;
    }
    const W = 640, H = 180, left = 4, bottom = 18;
    const starts = [...buckets.keys()].sort();
    const step = (W - left) / Math.max(starts.length, 1);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "svg-chart", role: "img",
      "aria-label": `spend by ${groupBy}` });
    const scale = (n) => (top > 0n ? (Number(n) / Number(top)) * (H - bottom - 14) : 0);
    starts.forEach((start, i) => {
      let y = H - bottom;
      const bucket = buckets.get(start);
      for (const key of [...shown, OTHER]) {
        const part = bucket.get(key);
        if (!part) continue;
        const h = Math.max(scale(part.cost), part.requests > 0 ? 1 : 0);
        y -= h;
        const name = key === OTHER ? "other" : labelOf(series, key, groupBy);
        chart.append(svg("rect", { x: left + i * step + 1, y, width: Math.max(step - 2, 1), height: h,
          fill: key === OTHER ? "#999999" : color.get(key) },
        svg("title", {}, `${when(start)} · ${name}: ${usd(part.cost)}, ${part.requests} requests`)));
      }
    });
    chart.append(svg("text", { x: left, y: 11, class: "axis" }, `max ${usd(top)} per ${series.bucket}`));
    chart.append(svg("text", { x: left, y: H - 4, class: "axis" }, when(starts[0])));
    chart.append(svg("text", { x: W - 2, y: H - 4, class: "axis", "text-anchor": "end" }, when(starts[starts.length - 1])));
    container.append(chart);
    const legend = el("ul", { className: "legend" });
    groups.forEach((g, i) => {
      if (i >= MAX_GROUPS) return;
      const swatch = el("span", { className: "swatch" });
      swatch.style.background = color.get(g.group);
      legend.append(el("li", { "data-testid": "legend-item" }, swatch, labelOf(series, g.group, groupBy), " ",
        el("span", { className: "muted" }, `${dollars(g.cost)} · ${g.requests} requests`)));
    });
    if (groups.length > MAX_GROUPS) legend.append(el("li", {}, `and ${groups.length - MAX_GROUPS} more (grey)`));
    container.append(legend);
  }

  function labelOf(series, group, groupBy) {
    const found = (series.groups || []).find((g) => g.group === group);
    return groupLabel(group, groupBy, found && found.name);
  }

  function mixChart(container, series) {
    clear(container);
    const groups = series.groups || [];
    const total = groups.reduce((sum, g) => sum + g.requests, 0);
    if (total === 0) {
      container.append(el("p", { className: "muted" }, "No requests in this range."));
      return;
    }
    const list = el("div", { className: "mix" });
    groups.forEach((g, i) => {
      const bar = el("span", { className: "mix-bar" });
      bar.style.width = `${(g.requests / total) * 100}%`;
      bar.style.background = PALETTE[i % PALETTE.length];
      list.append(el("div", { className: "mix-row", "data-testid": "route-row" },
        el("span", { className: "mix-label" }, groupLabel(g.group, "route")),
        el("span", { className: "mix-track" }, bar),
        el("span", { className: "mix-figures" }, `${g.requests} (${Math.round((g.requests / total) * 100)}%) · ${dollars(g.cost)}`)));
    });
    container.append(list);
  }

  // -- the request log (every view) ---------------------------------------------------------------

  function logPath() {
    if (state.role === "owner") return "/api/requests";
    if (state.role === "key") return "/v1/requests";
    return "/admin/requests";
  }

  function logFilters() {
    const local = (id) => { const v = $(id).value; return v ? new Date(v).toISOString() : ""; };
    const filters = { model: $("log-model").value.trim(), status: $("log-status").value, since: local("log-since"),
      until: local("log-until"), limit: "50" };
    if (state.role === "owner") filters.keyId = $("log-key").value;
    if (state.role === "operator") filters.accountId = $("log-account").value.trim();
    return filters;
  }

  function logRow(r) {
    const refused = r.status >= 400;
    return el("tr", { className: refused ? "refused" : null, "data-testid": "log-row",
      dataset: { status: r.status, requestId: r.requestId || "" } },
      el("td", {}, when(r.createdAt)),
      el("td", {}, r.keyName || r.keyId),
      el("td", {}, r.model),
      el("td", {}, r.upstreamModel || "–"),
      el("td", {}, r.route || "–"),
      el("td", { className: "num" }, r.fallbacks),
      el("td", { className: "num" }, r.inputTokens),
      el("td", { className: "num" }, r.outputTokens),
      el("td", { className: "num", "data-testid": "log-cost" }, dollars(r.cost)),
      el("td", { className: "num" }, ms(r.latencyMs)),
      el("td", { className: "num" }, ms(r.ttftMs)),
      el("td", { "data-testid": "log-status-code" }, r.status),
      el("td", { className: "reason", "data-testid": "log-reason" }, r.error || ""));
  }

  async function loadLog(more) {
    const body = $("log-body");
    if (!more) { clear(body); state.logCursor = null; }
    body.querySelector("[data-testid=log-empty]")?.remove();
    // A page reads at most 10,000 records: a rare filter's page may be short, even empty, with hasMore.
    // Read on from where it stopped, a few pages at most per click.
    let page = null, found = 0;
    for (let tries = 0; tries < 5; tries++) {
      page = await api(logPath() + query({ ...logFilters(), before: more || tries ? state.logCursor : "" }));
      for (const r of page.data) body.append(logRow(r));
      found += page.data.length;
      state.logCursor = page.nextCursor;
      if (found > 0 || !page.hasMore) break;
    }
    if (found === 0 && body.childElementCount === 0) {
      const text = page.hasMore ? "None among the newest requests read: “Load more” reads further back." : "No requests.";
      body.append(el("tr", { "data-testid": "log-empty" }, el("td", { colspan: 13, className: "muted" }, text)));
    }
    $("log-more").hidden = !page.hasMore;
  }

  // -- an account owner ---------------------------------------------------------------------------

  async function loadOwnerSummary() {
    const status = (await api("/api/billing/status")).data;
    $("owner-account").textContent = pick(status, "accountId", "account_id") || "";
    $("owner-credits").textContent = dollars(pick(status, "creditBalance", "credit_balance"));
    state.subscriptions = status.subscriptions || [];
    const body = clear($("subscriptions-body"));
    for (const s of state.subscriptions) {
      const budget = s.budget;
      body.append(el("tr", { "data-testid": "subscription-row" },
        el("td", {}, pick(s, "planSlug", "plan_slug") || ""),
        el("td", {}, s.status + (pick(s, "cancelAtPeriodEnd", "cancel_at_period_end") ? " (cancels at period end)" : "")),
        el("td", { "data-testid": "expires" }, when(pick(s, "currentPeriodEnd", "current_period_end"))),
        el("td", {}, budget ? budgetBar(budget, s.id, "pool-bar") : "–")));
    }
    if (state.subscriptions.length === 0) body.append(el("tr", {}, el("td", { colspan: 4, className: "muted" }, "No subscriptions.")));
    const pool = $("create-pool");
    const chosen = pool.value;
    clear(pool);
    for (const s of state.subscriptions) {
      if (s.status === "expired") continue;
      pool.append(el("option", { value: `sub:${s.id}` }, `subscription ${pick(s, "planSlug", "plan_slug")} (${s.id})`));
    }
    pool.append(el("option", { value: "credit" }, "credits"));
    if (chosen && [...pool.options].some((o) => o.value === chosen)) pool.value = chosen;
  }

  async function loadKeyBars(more) {
    const bars = $("key-bars");
    if (!more) { clear(bars); state.barsCursor = null; }
    const page = await api("/api/budgets" + query({ limit: "100", after: more ? state.barsCursor : "" }));
    for (const k of page.data) {
      state.keyNames.set(k.keyId, k.name);
      if (!k.isActive || !k.budget) continue;
      const row = budgetBar(k.budget, k.name, "key-bar");
      row.dataset.keyId = k.keyId;
      bars.append(row);
    }
    if (!more && bars.childElementCount === 0) bars.append(el("p", { className: "muted" }, "No active keys."));
    state.barsCursor = page.nextCursor;
    $("key-bars-more").hidden = !page.hasMore;
  }

  async function loadCharts() {
    const days = $("chart-range").value;
    const [byKey, byModel, byRoute] = await Promise.all(["key", "model", "route"].map(
      (groupBy) => api("/api/usage/hourly" + query({ days, groupBy })).then((r) => r.data)));
    stackedChart($("chart-key"), byKey, "key");
    stackedChart($("chart-model"), byModel, "model");
    mixChart($("chart-route"), { groups: (byRoute.groups || []).filter((g) => g.group !== null) });
  }

  async function loadRefusals() {
    const page = await api("/api/requests" + query({ status: "4xx", limit: "10" }));
    const body = clear($("refusals-body"));
    for (const r of page.data) {
      body.append(el("tr", { "data-testid": "refusal-row", dataset: { requestId: r.requestId || "" } },
        el("td", {}, when(r.createdAt)),
        el("td", {}, r.keyName || r.keyId), el("td", {}, r.model),
        el("td", { "data-testid": "refusal-status" }, r.status),
        el("td", { className: "reason", "data-testid": "refusal-reason" }, r.error || "")));
    }
    if (page.data.length === 0) body.append(el("tr", {}, el("td", { colspan: 5, className: "muted" }, "No refusals.")));
  }

  function keyRow(k) {
    const actions = el("td", { className: "actions" });
    const row = el("tr", { "data-testid": "key-row", dataset: { keyId: k.id, name: k.name } },
      el("td", { "data-testid": "key-name" }, k.name),
      el("td", {}, el("code", {}, k.prefix)),
      el("td", {}, k.keyType === "credit" ? "credits" : `${k.keyPlan || ""} ${k.subscriptionId || ""}`.trim()),
      el("td", {}, when(k.createdAt)),
      el("td", { "data-testid": "key-state" }, k.isActive ? "active" : `revoked ${when(k.revokedAt)}`),
      actions);
    if (k.isActive) {
      actions.append(
        el("button", { type: "button", "data-testid": "rotate", onclick: () => confirmAction(actions, `Rotate ${k.name}? The old secret works for one more hour.`, "Confirm rotate", () => rotateKey(k)) }, "Rotate"),
        el("button", { type: "button", className: "danger", "data-testid": "revoke", onclick: () => confirmAction(actions, `Revoke ${k.name}? Its next request is refused.`, "Confirm revoke", () => revokeKey(k)) }, "Revoke"));
    }
    return row;
  }

  function confirmAction(cell, question, label, action) {
    const saved = [...cell.childNodes];
    clear(cell);
    const restore = () => { clear(cell); cell.append(...saved); };
    cell.append(el("span", { className: "question" }, question),
      el("button", { type: "button", className: "danger", "data-testid": "confirm", onclick: () => {
        action().catch((e) => { setStatus(e.message, true); restore(); });
      } }, label),
      el("button", { type: "button", "data-testid": "cancel", onclick: restore }, "Cancel"));
  }

  async function loadKeys(more) {
    const body = $("keys-body");
    if (!more) { clear(body); state.keysCursor = null; }
    const page = await api("/api/keys" + query({ limit: "100", after: more ? state.keysCursor : "" }));
    const select = $("log-key");
    if (!more) { clear(select); select.append(el("option", { value: "" }, "any")); }
    for (const k of page.data) {
      state.keyNames.set(k.id, k.name);
      body.append(keyRow(k));
      select.append(el("option", { value: k.id }, k.name));
    }
    state.keysCursor = page.nextCursor;
    $("keys-more").hidden = !page.hasMore;
  }

  function showSecret(label, secret) {
    $("new-secret-label").textContent = label;
    $("new-secret-value").textContent = secret;
    $("new-secret").hidden = false;
  }

  async function createKey(event) {
    event.preventDefault();
    const body = { name: $("create-name").value.trim() };
    const pool = $("create-pool").value;
    if (pool.startsWith("sub:")) body.subscriptionId = pool.slice(4);
    else body.type = "credit";
    const limit = $("create-limit").value.trim();
    if (limit) body.budget = { limit, window: $("create-window").value.trim() || undefined };
    const created = (await api("/api/keys", { method: "POST", body })).data;
    showSecret(`New key ${created.name}:`, created.apiKey);
    $("create-key").reset();
    setStatus(`Created ${created.name}.`);
    await Promise.all([loadKeys(false), loadKeyBars(false)]);
  }

  async function rotateKey(k) {
    const rotated = (await api(`/api/keys/${encodeURIComponent(k.id)}/rotate`, { method: "POST", body: { graceSeconds: 3600 } })).data;
    showSecret(`New secret for ${rotated.name} (the old one works until ${when(rotated.previousSecretValidUntil)}):`, rotated.apiKey);
    setStatus(`Rotated ${rotated.name}.`);
    await loadKeys(false);
  }

  async function revokeKey(k) {
    await api(`/api/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
    setStatus(`Revoked ${k.name}.`);
    await Promise.all([loadKeys(false), loadKeyBars(false)]);
  }

  async function showOwner() {
    $("owner").hidden = false;
    $("log-key-label").hidden = false;
    $("log-account-label").hidden = true;
    await loadOwnerSummary();
    await Promise.all([loadKeyBars(false), loadKeys(false), loadCharts(), loadRefusals(), loadLog(false)]);
    every(15000, refreshBudgets);
  }

  // -- one API key ---------------------------------------------------------------------------------

  async function loadKeyView() {
    const usage = await api("/v1/usage");
    const key = usage.key || {};
    $("key-name").textContent = `${key.name || ""} (${key.type || ""})`;
    const plan = usage.plan || {};
    $("key-plan").textContent = `${plan.slug || "credits"} · ${plan.status || ""}${plan.expires_at ? ` · expires ${when(plan.expires_at)}` : ""}`;
    const credits = usage.credits || {};
    $("key-credits").textContent = credits.balance_nanos !== undefined ? usd(nanos(credits.balance_nanos)) : "–";
    const bars = clear($("key-own-bars"));
    bars.append(budgetBar(usage.budget || {}, "Tightest budget", "key-bar"));
  }

  async function showKey() {
    $("key").hidden = false;
    $("log-key-label").hidden = true;
    $("log-account-label").hidden = true;
    await Promise.all([loadKeyView(), loadLog(false)]);
    every(15000, refreshBudgets);
  }

  // -- the operator --------------------------------------------------------------------------------

  async function loadTraffic() {
    const ledger = (await api("/admin/metrics/ledger")).data || {};
    $("op-backlog").textContent = `${pick(ledger, "backlogEntries", "backlog_entries") ?? 0} entries`;
    $("op-reservations").textContent = String(pick(ledger, "reservationsOpen", "reservations_open") ?? "–");
    let traffic = null;
    try {
      traffic = (await api("/admin/metrics/traffic")).data;
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    const note = $("op-traffic-note");
    note.hidden = traffic !== null;
    note.textContent = traffic === null ? "This gateway does not serve /admin/metrics/traffic: live counters are not available." : "";
    const refusals = clear($("op-refusals-body"));
    const upstreams = clear($("op-upstreams-body"));
    if (traffic === null) return;
    $("op-inflight").textContent = String(traffic.requestsInFlight ?? "–");
    $("op-reservations").textContent = String(traffic.reservationsOpen ?? "–");
    const reasons = Object.entries(traffic.refusals || {}).sort((a, b) => b[1] - a[1]);
    for (const [reason, count] of reasons) {
      refusals.append(el("tr", { "data-testid": "op-refusal-row" }, el("td", {}, reason), el("td", { className: "num" }, count)));
    }
    if (reasons.length === 0) refusals.append(el("tr", {}, el("td", { colspan: 2, className: "muted" }, "No refusals.")));
    for (const u of traffic.upstreams || []) {
      upstreams.append(el("tr", { "data-testid": "op-upstream-row" }, el("td", {}, u.name),
        el("td", { className: u.healthy ? "ok" : "bad" }, u.healthy ? "healthy" : "unhealthy"),
        el("td", { className: "num" }, u.requests), el("td", { className: "num" }, u.errors),
        el("td", { className: "num" }, u.fallbacks), el("td", { className: "num" }, ms(u.p50Ms)),
        el("td", { className: "num" }, ms(u.p99Ms)), el("td", { className: "reason" }, u.lastError || "")));
    }
  }

  async function loadAccounts(more) {
    const body = $("op-accounts-body");
    if (!more) { clear(body); state.accountsCursor = null; }
    const page = await api("/admin/usage/accounts" + query({ days: $("op-range").value, limit: "100",
      after: more ? state.accountsCursor : "" }));
    const rows = [...page.data].sort((a, b) => { const d = nanos(b.costNanos) - nanos(a.costNanos); return d > 0n ? 1 : d < 0n ? -1 : 0; });
    for (const a of rows) {
      body.append(el("tr", { "data-testid": "op-account-row", dataset: { accountId: a.accountId } },
        el("td", {}, a.name), el("td", {}, el("code", {}, a.accountId)), el("td", { className: "num" }, a.requests),
        el("td", { className: "num" }, a.errors), el("td", { className: "num" }, `${a.inputTokens} / ${a.outputTokens}`),
        el("td", { className: "num", "data-testid": "op-account-spend" }, dollars(a.cost))));
    }
    state.accountsCursor = page.nextCursor;
    $("op-accounts-more").hidden = !page.hasMore;
  }

  async function showOperator() {
    $("operator").hidden = false;
    $("log-key-label").hidden = true;
    $("log-account-label").hidden = false;
    await Promise.all([loadTraffic(), loadAccounts(false), loadLog(false)]);
    every(5000, loadTraffic);
  }

  // -- signing in and out ---------------------------------------------------------------------------

  function roleOf(key) {
    if (key.startsWith("mk_")) return "owner";
    if (key.startsWith("sk_")) return "key";
    return "operator";
  }

  async function refreshBudgets() {
    if (state.role === "owner") await Promise.all([loadOwnerSummary(), loadKeyBars(false)]);
    else if (state.role === "key") await loadKeyView();
  }

  async function refreshAll() {
    if (state.role === "owner") await Promise.all([loadOwnerSummary(), loadKeyBars(false), loadKeys(false), loadCharts(), loadRefusals(), loadLog(false)]);
    else if (state.role === "key") await Promise.all([loadKeyView(), loadLog(false)]);
    else await Promise.all([loadTraffic(), loadAccounts(false), loadLog(false)]);
  }

  async function signIn(key) {
    state.key = key;
    state.role = roleOf(key);
    // Check the key before showing anything: a wrong one is refused here.
    if (state.role === "owner") await api("/api/billing/status");
    else if (state.role === "key") await api("/v1/usage");
    else await api("/admin/metrics/ledger");
    sessionStorage.setItem(STORAGE, key);
    $("signin").hidden = true;
    $("signout").hidden = false;
    $("refresh").hidden = false;
    $("log").hidden = false;
    $("who").textContent = { owner: "account owner", key: "API key", operator: "operator" }[state.role];
    if (state.role === "owner") await showOwner();
    else if (state.role === "key") await showKey();
    else await showOperator();
    setStatus("");
  }

  function signOut() {
    sessionStorage.removeItem(STORAGE);
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
    state.key = null;
    state.role = null;
    for (const id of ["owner", "key", "operator", "log", "signout", "refresh", "new-secret"]) $(id).hidden = true;
    $("signin").hidden = false;
    $("who").textContent = "";
    $("signin-key").value = "";
    setStatus("");
  }

  function guard(fn) {
    return (event) => { Promise.resolve(fn(event)).catch((e) => setStatus(e.message, true)); };
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("signin-key").value.trim();
      $("signin-error").textContent = "";
      signIn(key).catch((e) => {
        state.key = null;
        sessionStorage.removeItem(STORAGE);
        $("signin-error").textContent = `Not signed in: ${e.message}`;
      });
    });
    $("signout").addEventListener("click", signOut);
    $("refresh").addEventListener("click", guard(refreshAll));
    $("log-filters").addEventListener("submit", guard((event) => { event.preventDefault(); return loadLog(false); }));
    $("log-more").addEventListener("click", guard(() => loadLog(true)));
    $("create-key").addEventListener("submit", guard(createKey));
    $("new-secret-close").addEventListener("click", () => { $("new-secret").hidden = true; $("new-secret-value").textContent = ""; });
    $("keys-more").addEventListener("click", guard(() => loadKeys(true)));
    $("key-bars-more").addEventListener("click", guard(() => loadKeyBars(true)));
    $("chart-range").addEventListener("change", guard(loadCharts));
    $("op-range").addEventListener("change", guard(() => loadAccounts(false)));
    $("op-accounts-more").addEventListener("click", guard(() => loadAccounts(true)));
    setInterval(tickCountdowns, 1000);
    const saved = sessionStorage.getItem(STORAGE);
    if (saved) signIn(saved).catch(() => signOut());
  });
})();
