// tollgate budget-park: an OpenClaw plugin that parks a session when tollgate's budget for the
// window is spent and continues it, with its whole transcript, once the budget is back.
// Plain ESM with no dependencies; OpenClaw loads it as is.

import { join } from "node:path";
import { resolveSettings } from "./src/config.js";
import { BudgetPark } from "./src/park.js";

export const PLUGIN_ID = "tollgate-budget-park";

// OpenClaw calls register() several times in one gateway process, sometimes from separately
// loaded copies of this module: a "full" registration whose service is started, and
// "discovery" registrations whose hooks may be the ones that run. All of them must reach the
// one started instance, so it hangs off globalThis under a registered symbol.
const SHARED = Symbol.for("tollgate.openclaw.budget-park");

/**
 * @param {ReturnType<typeof resolveSettings>} settings
 * @param {any} api
 * @returns {BudgetPark}
 */
function sharedPark(settings, api) {
  const g = /** @type {any} */ (globalThis);
  if (!g[SHARED]) g[SHARED] = new BudgetPark({ settings, getConfig: () => api.config, logger: api.logger ?? console });
  return g[SHARED];
}

export default {
  id: PLUGIN_ID,
  name: "tollgate budget park",
  description: "Parks sessions stopped by a spent tollgate budget and resumes them after the reset.",
  /** @param {any} api OpenClaw's plugin API */
  register(api) {
    const settings = resolveSettings(api.pluginConfig);
    const park = sharedPark(settings, api);
    // agent_end needs plugins.entries.<id>.hooks.allowConversationAccess: true.
    api.on("agent_end", (event, ctx) => park.onAgentEnd(event, ctx), { timeoutMs: 25_000 });
    api.on("subagent_spawned", (event, ctx) => park.onSubagentSpawned(event, ctx));
    api.on("gateway_start", (event) => park.setPort(event?.port));
    /** @type {number|undefined} */
    let generation;
    api.registerService({
      id: PLUGIN_ID,
      start: async (ctx) => {
        // A config reload stops the service and starts it again with the new settings.
        park.settings = settings;
        park.getConfig = () => ctx.config ?? api.config;
        if (api.logger) park.logger = api.logger;
        generation = await park.start(settings.stateDir ?? join(ctx.stateDir, PLUGIN_ID));
      },
      stop: () => park.stop(generation),
    });
  },
};
