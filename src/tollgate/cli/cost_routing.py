"""`tollgate cost routing`: replay a labeled workload through a route table and price it against one model."""

from __future__ import annotations

import argparse
import json

from tollgate.cli.options import add_json
from tollgate.cli.output import table

EPILOG = """\
The default workload is the routing guide's: 1,000 requests (600 simple, 300 general, 70
reasoning, 30 code), 500 tokens in and 200 out each, on the guide's route table priced from
the reference catalog. A route whose model has no published price is priced at the baseline's
rates, so routing is never credited with savings nobody can check; the report says which.

With --workload FILE (JSON lines with "request" or "text", "label", optional "input_tokens",
"output_tokens") and --classify, each request is routed by the shipped classifier, so its
mistakes are priced too."""


def add_parser(inner: argparse._SubParsersAction) -> None:
    p = inner.add_parser(
        "routing",
        help="what routing saves: a labeled workload through the route table vs one general model",
        description="Replay a labeled workload through the router's route table and compare its cost with "
                    "sending everything to one general model, at the reference catalog's prices.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workload", metavar="FILE", help="labeled requests as JSON lines (default: the guide's mix)")
    p.add_argument("--classify", action="store_true", help="route by the shipped classifier instead of the labels")
    p.add_argument("--route", action="append", metavar="CATEGORY=MODEL", help="override a route (catalog id)")
    p.add_argument("--baseline", default=None, metavar="MODEL", help="the single general model (default deepseek-v3.2)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tollgate.catalog import load_reference_catalog
    from tollgate.costlab.routing import (
        DEFAULT_BASELINE,
        DEFAULT_ROUTES,
        catalog_prices,
        load_workload,
        reference_workload,
        replay,
    )
    from tollgate.domain.money import format_usd

    routes = dict(DEFAULT_ROUTES)
    for item in args.route or ():
        category, _, model = item.partition("=")
        if category not in routes or not model:
            raise SystemExit(f"tollgate: --route wants CATEGORY=MODEL with a category of {', '.join(routes)}")
        routes[category] = model
    baseline_id = args.baseline or DEFAULT_BASELINE
    catalog = load_reference_catalog()
    try:
        prices = catalog_prices(catalog, routes, stand_in=baseline_id)
        baseline = catalog_prices(catalog, {"general": baseline_id})["general"]
        items = load_workload(args.workload) if args.workload else reference_workload()
    except (KeyError, ValueError, OSError) as exc:
        raise SystemExit(f"tollgate: {exc}") from None
    classify = None
    if args.classify:
        from tollgate.proxy.routing.classifier import RequestClassifier

        classifier = RequestClassifier.load()
        classify = lambda request: classifier.classify(request)[0]  # noqa: E731
    report = replay(items, prices, baseline, classify)
    if args.json:
        data = report.as_dict()
        data["stand_ins"] = {c: p.priced_as for c, p in prices.items() if p.priced_as}
        print(json.dumps(data, indent=2))
        return 0
    rows = [{"category": line.category, "model": line.model, "requests": line.requests, "cost": format_usd(line.cost),
             "note": f"priced as {prices[line.category].priced_as}" if line.category in prices
             and prices[line.category].priced_as else ""} for line in report.lines.values()]
    print(table(rows, [("category", "ROUTE"), ("model", "MODEL"), ("requests", "REQUESTS"), ("cost", "COST $"),
                       ("note", "NOTE")]))
    print()
    print(f"routed:   ${format_usd(report.routed_cost)}")
    print(f"baseline: ${format_usd(report.baseline_cost)} (everything on {report.baseline_model})")
    print(f"savings:  {report.savings:.1%}")
    if report.classified and report.total:
        print(f"classifier accuracy on this workload: {report.correct / report.total:.1%}")
    return 0
