"""`tollgate models catalog|pick`: the reference catalog, and the model-selection guide as a tree."""

from __future__ import annotations

import argparse
import json
import sys

from tollgate.cli.options import add_json, positive, usage_when_bare

PICK_EPILOG = """\
The questions, in the guide's order (the first yes decides):
  images -> vision model; step-by-step reasoning -> reasoning model; tools -> agent model;
  code -> coder; embeddings -> embedding model; a first token faster than the default
  model's -> small model; more context than the default holds -> long-context model;
  maximum quality -> largest general model; otherwise the default general model.
Later yeses are listed as 'also'. If the guide's answer cannot meet --context or
--latency-ms, the best open-weights catalog model with that capability that can is named
instead (--allow-proprietary widens the search)."""


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="reference model catalog and model picking",
                            description="The reference model catalog and the model-selection decision tree.")
    inner = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    usage_when_bare(models)

    catalog = inner.add_parser("catalog", help="list the reference catalog (prices, sizes, speeds, scores)",
                               description="List the packaged reference catalog with each entry's figures.")
    catalog.add_argument("--capability", help="only models with this capability (e.g. vision, agent, embeddings)")
    add_json(catalog)
    catalog.set_defaults(func=run_catalog)

    pick = inner.add_parser("pick", help="pick a model for a task, with the reasoning path",
                            description="Walk the model-selection guide's decision tree over the reference catalog.",
                            epilog=PICK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    pick.add_argument("--images", action="store_true", help="the input includes images")
    pick.add_argument("--reasoning", action="store_true", help="needs step-by-step reasoning (math, logic, science)")
    pick.add_argument("--tools", action="store_true", help="tool calling / agent loops")
    pick.add_argument("--code", action="store_true", help="code generation or editing")
    pick.add_argument("--embeddings", action="store_true", help="vectors for search / RAG")
    pick.add_argument("--latency-ms", type=positive, metavar="MS", help="largest acceptable time to first token")
    pick.add_argument("--context", type=positive, metavar="TOKENS", help="prompt size the model must hold")
    pick.add_argument("--max-quality", action="store_true", help="maximum quality, latency flexible")
    pick.add_argument("--allow-proprietary", action="store_true",
                      help="let proprietary comparison models answer when the guide's pick does not fit")
    add_json(pick)
    pick.set_defaults(func=run_pick)


def run_catalog(args: argparse.Namespace) -> int:
    from tollgate.catalog import CAPABILITIES, CatalogError, load_reference_catalog
    from tollgate.cli.catalog_view import catalog_json, render_catalog

    if args.capability and args.capability not in CAPABILITIES:
        print(f"tollgate models catalog: unknown capability {args.capability!r}; "
              f"known: {', '.join(CAPABILITIES)}", file=sys.stderr)
        return 2
    try:
        catalog = load_reference_catalog()
    except CatalogError as exc:
        print(f"tollgate models catalog: {exc}", file=sys.stderr)
        return 1
    models = [m for m in catalog if not args.capability or m.has(args.capability)]
    print(json.dumps(catalog_json(models), indent=2) if args.json else render_catalog(models))
    return 0


def run_pick(args: argparse.Namespace) -> int:
    from tollgate.catalog import load_reference_catalog
    from tollgate.costlab.pick import Needs, pick_model
    from tollgate.costlab.pick_view import pick_json, render_pick

    needs = Needs(
        images=args.images, reasoning=args.reasoning, tools=args.tools, code=args.code,
        embeddings=args.embeddings, latency_ms=args.latency_ms, context_tokens=args.context,
        max_quality=args.max_quality, allow_proprietary=args.allow_proprietary,
    )
    result = pick_model(load_reference_catalog(), needs)
    print(json.dumps(pick_json(result), indent=2) if args.json else render_pick(result))
    return 0
