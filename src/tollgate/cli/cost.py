"""`tollgate cost agent|quality`: what an agent task really costs, and what a quality point costs."""

from __future__ import annotations

import argparse
import json
import sys

from tollgate.cli.options import add_config, add_json, positive, usage_when_bare, whole_number

AGENT_EPILOG = """\
The model: every call re-sends the system prompt and the history kept so far, reads the
step's fresh tool output and writes the step's output; history is kept whole, windowed,
capped or summarised (--history). Totals are spread evenly over the steps.

Defaults reproduce the agent-cost blog post's task (38 tool calls, ~70K tokens of tool
output, ~19K of agent output, ~4.1K system prompt): ~280K context accumulation, ~156K of
system prompt, ~525K in all, ~96% overhead, ~$9.18 at $15/$75 and ~$0.16 at $0.27/$1.10.

Figures in the post that disagree with its own breakdown:
  - It also says the system prompt is ~9,600 tokens (365K over 38 calls), while the
    breakdown's 156K is ~4.1K a call. The breakdown is reproduced.
  - Its prose says every call re-sends the whole history; that would re-send ~1.65M tokens
    here. 280K implies history capped near 7.8K tokens, hence the default --history cap:7800.
  - $9.18 is ~2% above what its own 506K in / 19K out cost at $15/$75 ($9.00).
  - GPT-5.4 at $4.73 a task does not follow from the $2.50/M input price the comparison
    post quotes; $15/$75 is an older Opus price (Opus 4.6 is $5/$25); Pro is $60/mo, not $50.
See docs/costlab.md for the derivation.

--price cached: every call's resent prefix read from the provider's cache (a hit), the rest
written to it, priced on each catalog model that publishes cache prices, without and with them;
for the task's history policy and for full history (trimming changes the prefix, so it hits less)."""

LIVE_EPILOG = """\
A conversation is the requests of one key that share a session id (the hash of the
messages up to and including the first user message). In admission order, each
request's prompt resent the longest prefix of the conversation so far that fits in it
(0, an earlier prompt, or an earlier prompt plus its answer); the rest is new. In a
conversation that only grows that is min(prompt, previous prompt + previous output); a
prompt that shrinks (retry, edit, branch, restart) goes back to the prefix it still fits.
Costs are the ledger's own charges; the resent part is priced at the model's input price.
See docs/costlab.md, "Live overhead"."""


def register(sub: argparse._SubParsersAction) -> None:
    cost = sub.add_parser("cost", help="cost lab: agent task costs and cost per quality point",
                          description="Cost lab: simulate what agent tasks cost and compare cost per quality point.")
    inner = cost.add_subparsers(dest="cost_command", metavar="SUBCOMMAND")
    usage_when_bare(cost)

    agent = inner.add_parser(
        "agent",
        help="simulate an agent task's token flow and price it on every catalog model and plan",
        description="Simulate an agent task step by step and price it per token and on flat-rate plans.",
        epilog=AGENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    agent.add_argument("--steps", type=positive, default=38, help="model calls, one per tool call (default 38)")
    agent.add_argument("--system-prompt", type=whole_number, default=4100, help="system prompt tokens, re-sent every call")
    agent.add_argument("--tool-output", type=whole_number, default=70000, help="tool output tokens over the whole task")
    agent.add_argument("--agent-output", type=whole_number, default=19000, help="agent output tokens over the whole task")
    agent.add_argument("--task-tokens", type=whole_number, default=0, help="the task message, read at step 1 and kept")
    agent.add_argument("--history", default="cap:7800",
                       help="history policy: full | window:STEPS | cap:TOKENS | summarise:AT:SUMMARY (default cap:7800)")
    agent.add_argument("--compare", action="append", metavar="POLICY",
                       help="also compare this history policy (repeatable; default: a standard set)")
    agent.add_argument("--price", action="append", metavar="[LABEL=]IN/OUT | cached",
                       help="extra price point, USD per million tokens, e.g. mine=0.5/2 (repeatable); `cached`: "
                            "also price the task with and without the catalog's cache prices, side by side")
    agent.add_argument("--tasks-per-day", type=positive, action="append", metavar="N",
                       help="monthly cost at N tasks a day (repeatable; default 5 and 20)")
    agent.add_argument("--steps-table", action="store_true", help="print the step-by-step token flow")
    add_json(agent)
    agent.set_defaults(func=run_agent)

    quality = inner.add_parser(
        "quality",
        help="cost per benchmark point for catalog models, as a table and an SVG plot",
        description="Cost per quality point: a model's price per million tokens divided by its benchmark score "
                    "(the comparison post's '$ per point per M tokens').",
    )
    quality.add_argument("--benchmark", default="mmlu_pro",
                         help="mmlu_pro | gpqa | livecodebench | hle | hle_tools | swe_bench_verified")
    quality.add_argument("--basis", default="input", choices=("input", "output", "blended"),
                         help="which price to divide (default input, as the post does)")
    quality.add_argument("--output-share", default="0.25",
                         help="output share of tokens for --basis blended (default 0.25; an agent's is ~0.04)")
    quality.add_argument("--svg", metavar="PATH", help="also write the scatter plot as SVG to PATH")
    add_json(quality)
    quality.set_defaults(func=run_quality)

    live = inner.add_parser(
        "live",
        help="resent context vs new input in the gateway's own traffic, and its cost on other models and plans",
        description="Live overhead analytics from this gateway's usage records: per key and per conversation, "
                    "how many input tokens were resent context versus new and what that cost, and what the same "
                    "traffic would have cost on every served and catalog model and on each flat plan.",
        epilog=LIVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    live.add_argument("--account", required=True, metavar="ID", help="the account whose usage to analyse")
    live.add_argument("--key", metavar="ID", help="only this API key of the account")
    live.add_argument("--days", type=positive, default=31, metavar="N", help="the last N days (default 31)")
    live.add_argument("--steps", action="store_true", help="with --json: every request of every conversation")
    add_config(live)
    add_json(live)
    live.set_defaults(func=run_live)

    from tollgate.cli.cost_routing import add_parser as add_routing

    add_routing(inner)


def run_agent(args: argparse.Namespace) -> int:
    from tollgate.costlab.agent_report import agent_report, render_agent_report

    try:
        report = agent_report(
            steps=args.steps,
            system_prompt=args.system_prompt,
            tool_output=args.tool_output,
            agent_output=args.agent_output,
            task_tokens=args.task_tokens,
            history=args.history,
            compare=args.compare,
            extra_prices=args.price or [],
            tasks_per_day=args.tasks_per_day or [5, 20],
        )
    except ValueError as exc:
        print(f"tollgate cost agent: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render_agent_report(report, steps_table=args.steps_table))
    return 0


def run_quality(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from tollgate.catalog import load_reference_catalog
    from tollgate.costlab.quality import quality_table
    from tollgate.costlab.quality_report import quality_json, render_quality_text
    from tollgate.costlab.svg_plot import render_quality_svg

    try:
        share = Decimal(args.output_share)
        table = quality_table(load_reference_catalog(), args.benchmark, args.basis, share)
    except (ValueError, InvalidOperation) as exc:
        print(f"tollgate cost quality: {exc}", file=sys.stderr)
        return 2
    if args.svg:
        try:
            with open(args.svg, "w", encoding="utf-8") as handle:
                handle.write(render_quality_svg(table))
        except OSError as exc:
            print(f"tollgate cost quality: cannot write {args.svg}: {exc}", file=sys.stderr)
            return 1
    if args.json:
        data = quality_json(table)
        if args.svg:
            data["svg"] = args.svg
        print(json.dumps(data, indent=2))
    else:
        print(render_quality_text(table))
        if args.svg:
            print(f"\nPlot written to {args.svg}")
    return 0


def run_live(args: argparse.Namespace) -> int:
    import asyncio

    from tollgate.cli.configured import read_config

    config = read_config(args.config, "tollgate cost live")
    if config is None:
        return 1
    try:
        report = asyncio.run(_live_report(config, args.account, args.key, args.days))
    except _NotFound as exc:
        print(f"tollgate cost live: {exc}", file=sys.stderr)
        return 1
    from tollgate.costlab.live_report import live_json, render_live_text

    if args.json:
        print(json.dumps(live_json(report, steps=args.steps), indent=2))
    else:
        print(render_live_text(report))
    return 0


class _NotFound(Exception):
    """The account, or the account's key, that `cost live` was asked about does not exist."""


async def _live_report(config, account_id: str, key_id: str | None, days: int):
    import time

    from tollgate.catalog import load_reference_catalog
    from tollgate.cli.configured import configured_store
    from tollgate.costlab.live import catalog_prices, live_overhead, served_prices

    async with configured_store(config) as store:
        if await store.get_account(account_id) is None:
            raise _NotFound(f"no account {account_id!r}")
        keys = await store.list_api_keys(account_id)
        if key_id is not None and key_id not in {k.id for k in keys}:
            raise _NotFound(f"account {account_id!r} has no key {key_id!r}")
        until = time.time()
        since = until - days * 86400
        records = await store.usage_records(account_id, key_id=key_id, since=since)
        plans = await store.list_plans()
    catalog, unpriced = catalog_prices(load_reference_catalog())
    return live_overhead(records, served_prices(config.models) + catalog, plans, account_id, since, until,
                         {k.id: k.name for k in keys}, unpriced)
