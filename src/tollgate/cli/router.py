"""`tollgate router ...`: train and evaluate the default request classifier for model `auto`.

The labelled training data is not shipped with the package, so `router train` is told where
it is: `--data PATH`, else `$TOLLGATE_ROUTER_DATA`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tollgate.cli.options import add_json, usage_when_bare

DATA_ENV = "TOLLGATE_ROUTER_DATA"


def _training_data(given: str | None) -> Path | None:
    """`--data`, else $TOLLGATE_ROUTER_DATA; None (with the reason printed) when neither names a file."""
    text = given or os.environ.get(DATA_ENV)
    if not text:
        print(f"tollgate router train: no training data given; pass --data PATH or set ${DATA_ENV} "
              "(labelled requests, one JSON object a line, train.jsonl format)", file=sys.stderr)
        return None
    path = Path(text)
    if not path.is_file():
        source = "--data" if given else f"${DATA_ENV}"
        print(f"tollgate router train: no training data at {path} (from {source})", file=sys.stderr)
        return None
    return path


def _train(args: argparse.Namespace) -> int:
    from tollgate.proxy.routing.classifier import MODEL_DIR
    from tollgate.training.train import AUGMENT_PATH, train

    data = _training_data(args.data)
    if data is None:
        return 2
    out = Path(args.out) if args.out else MODEL_DIR
    log = (lambda _msg: None) if args.json else (lambda msg: print(msg, flush=True))
    manifest = train(
        data,
        out,
        seed=args.seed,
        bits=args.bits,
        l2=args.l2,
        augment_path=None if args.no_augment else AUGMENT_PATH,
        log=log,
    )
    if args.json:
        print(json.dumps(manifest, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from tollgate.proxy.routing.classifier import RequestClassifier
    from tollgate.proxy.routing.features import extract_parts
    from tollgate.training.evaluate import evaluate, format_report, load_items
    from tollgate.training.train import file_sha256

    clf = RequestClassifier.load(args.model)
    path = Path(args.file)
    if not path.exists():
        print(f"tollgate router eval: no such file: {path}", file=sys.stderr)
        return 2
    seed = int(clf.manifest.get("seed", 0))
    if args.split:
        trained_on = clf.manifest.get("data", {}).get("sha256")
        if trained_on and trained_on != file_sha256(path):
            print(f"warning: {path} is not the file the model was trained on; the split is not held out", file=sys.stderr)
    items, skipped = load_items(path, split=args.split, seed=seed)
    if not items:
        print(f"tollgate router eval: no labelled requests in {path}", file=sys.stderr)
        return 1
    result = evaluate(clf, items)
    result["file"] = str(path)
    result["split"] = args.split
    result["skipped"] = skipped
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"file: {path}" + (f"  (split: {args.split}, seed {seed})" if args.split else ""))
    print(format_report(result, skipped=skipped))
    if args.errors and result["errors"]:
        print(f"\nfirst {min(args.errors, len(result['errors']))} errors:")
        for err in result["errors"][: args.errors]:
            text = " ".join(extract_parts(items[err["index"]].body).user.split())[:100]
            print(f"  {err['label']:>9} -> {err['predicted']:<9} {err['confidence']:.2f}  {text}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "router",
        help="train and evaluate the request classifier for model 'auto'",
        description="Train and evaluate the default request classifier that routes model 'auto'.",
    )
    sub = parser.add_subparsers(dest="router_command", metavar="SUBCOMMAND")
    usage_when_bare(parser)

    train = sub.add_parser(
        "train",
        help="fit the classifier and write the artifact (NumPy only)",
        description="Fit the classifier on labelled requests and write router.npz and router.json. "
        "Needs only NumPy; takes a few minutes on one core.",
    )
    train.add_argument("--data", metavar="PATH",
                       help=f"training data, train.jsonl format (default: ${DATA_ENV}; one of the two is required)")
    train.add_argument("--out", help="output directory (default: the packaged model directory)")
    train.add_argument("--seed", type=int, default=0, help="seed of the split and of the augmentation (default 0)")
    train.add_argument("--bits", type=int, default=20, help="hash table size as a power of two (default 20)")
    train.add_argument("--l2", type=float, default=3e-6, help="L2 penalty on the mean log-loss (default 3e-6)")
    train.add_argument("--no-augment", action="store_true", help="train on the data file only, without the template texts")
    add_json(train, help="print the manifest as JSON instead of progress")
    train.set_defaults(func=_train)

    ev = sub.add_parser(
        "eval",
        help="accuracy, confusion matrix and latency on a labelled file",
        description="Classify every labelled request of FILE and print accuracy, per-class precision and "
        'recall, the confusion matrix and latency percentiles. FILE holds {"text", "label"} lines '
        '(the training format) or {"request", "label"} lines (chat request bodies, as written by hand '
        "or exported by `tollgate router sample`); unlabelled lines are skipped.",
    )
    ev.add_argument("file", metavar="FILE", help="JSON lines to evaluate")
    ev.add_argument("--split", choices=("heldout", "val", "train"), help="only that split of a training-format file (same hash rule and seed as training)")
    ev.add_argument("--model", help="artifact directory or .npz (default: the packaged model)")
    ev.add_argument("--errors", type=int, default=0, metavar="N", help="also list the first N misclassified requests")
    add_json(ev, help="print the result as JSON")
    ev.set_defaults(func=_eval)

    from tollgate.cli.router_sample import add_parser as add_sample

    add_sample(sub)
