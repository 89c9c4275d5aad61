"""Train the default request classifier (`tollgate router train`), with NumPy only.

The model is a multinomial logistic regression over hashed, TF-IDF weighted word 1–2-grams and
character 2–5-grams of the request text (see `features.text_features`), fitted by full-batch
L-BFGS so that a run is deterministic for a given data file and seed. The training rows are the
`train.jsonl` split, plus texts expanded from the hand-written templates in
`data/augment.json`, which cover what the public data lacks (code questions without code, writing
requests, casual and non-English phrasing). The split is by a hash of the text, so the held-out
rows stay the same when rows are added elsewhere in the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tollgate.config.schema import CATEGORIES
from tollgate.proxy.routing.classifier import RequestClassifier
from tollgate.proxy.routing.features import text_features
from tollgate.training.dataset import HELD_OUT_PCT, VAL_PCT, load_labeled, split_rows
from tollgate.training.evaluate import evaluate, load_items

DEFAULT_BITS = 20
DEFAULT_L2 = 3e-6  # on the mean log-loss; chosen on the validation split (docs/routing.md)
MAX_ITER = 250
AUGMENT_PATH = Path(__file__).parent / "data" / "augment.json"
# Chat-style wrappers applied to a share of training rows of every label alike, so that they carry
# no label signal; the public data has none of them.
PREFIXES = ("Hi! ", "Hey, ", "Hello, ", "Quick question: ", "Can you help me? ", "Please help: ", "Hi there. ", "Question: ")
SUFFIXES = (" Thanks!", " Thank you.", " Thanks in advance.", " Please be brief.", " Any help appreciated!", " :)")
_SLOT_RE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Design:
    """A sparse design matrix: row r holds cols[starts[r]:starts[r+1]] with vals."""

    starts: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray


def expand_templates(spec: dict[str, Any], rng: np.random.Generator) -> list[tuple[str, str]]:
    """Texts from each template group: n random frames with their {slot}s filled at random."""
    out: list[tuple[str, str]] = []
    for group in spec["groups"]:
        slots: dict[str, list[str]] = group.get("slots", {})

        def fill(match: re.Match[str], slots: dict[str, list[str]] = slots) -> str:
            name = match.group(1)
            cap = name.endswith("_cap") and name[:-4] in slots
            values = slots.get(name[:-4] if cap else name)
            if values is None:
                return match.group(0)
            value = values[int(rng.integers(len(values)))]
            return value[:1].upper() + value[1:] if cap else value

        seen: set[str] = set()
        for _ in range(int(group["n"]) * 3):
            if len(seen) >= int(group["n"]):
                break
            text = group["frames"][int(rng.integers(len(group["frames"])))]
            for _depth in range(3):  # slot values may hold slots themselves
                text = _SLOT_RE.sub(fill, text)
            if text not in seen:
                seen.add(text)
                out.append((text, group["label"]))
    return out


def restyle(rows: list[dict[str, Any]], rng: np.random.Generator) -> list[tuple[str, str]]:
    """Training texts with chat-style noise that the public sources lack, label-independent.

    Search-query sources (no capitals, no question mark) get a question mark half the time, so
    that '?' is not a cue for non-simple; a share of every label gets a greeting or a thank-you.
    """
    out = []
    for row in rows:
        text = row["text"]
        if row.get("source", "").split(":")[0] in ("google-research-datasets/natural-questions", "brmson/dataset-factoid-webquestions"):
            if rng.random() < 0.5:
                text = text[:1].upper() + text[1:].rstrip("?").rstrip() + "?"
        r = rng.random()
        if r < 0.08:
            text = PREFIXES[int(rng.integers(len(PREFIXES)))] + text
        elif r < 0.14:
            text = text + SUFFIXES[int(rng.integers(len(SUFFIXES)))]
        out.append((text, row["label"]))
    return out


def featurize(texts: list[str], bits: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    return [text_features(t, bits) for t in texts]


def fit_idf(feats: list[tuple[np.ndarray, ...]], bits: int) -> np.ndarray:
    df = np.zeros(1 << bits, dtype=np.float64)
    for wid, _, cid, _ in feats:
        df[np.unique(np.concatenate([wid, cid]))] += 1.0
    return (np.log((1.0 + len(feats)) / (1.0 + df)) + 1.0).astype(np.float32)


def block_values(ids: np.ndarray, counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """Sublinear TF times IDF, L2-normalised within the block (the same at train and run time)."""
    v = (1.0 + np.log(counts)).astype(np.float32) * idf[ids]
    n = float(np.sqrt(np.dot(v, v)))
    return v / n if n > 0 else v


def design(feats: list[tuple[np.ndarray, ...]], idf: np.ndarray) -> Design:
    cols, vals, lens = [], [], []
    for wid, wcnt, cid, ccnt in feats:
        cols += [wid, cid]
        vals += [block_values(wid, wcnt, idf), block_values(cid, ccnt, idf)]
        lens.append(len(wid) + len(cid))
    starts = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    rows = np.repeat(np.arange(len(feats), dtype=np.int32), lens)
    return Design(starts, rows, np.concatenate(cols).astype(np.int64), np.concatenate(vals).astype(np.float32))


def _lbfgs(f: Any, x: np.ndarray, max_iter: int, memory: int = 8, log: Any = None) -> np.ndarray:
    """Minimise f (returning loss, gradient) from x: L-BFGS with a backtracking line search."""
    fx, g = f(x)
    trace = [fx]
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    for it in range(max_iter):
        q = g.copy()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            a = s.dot(q) / y.dot(s)
            alphas.append(a)
            q -= a * y
        if s_hist:
            q *= s_hist[-1].dot(y_hist[-1]) / y_hist[-1].dot(y_hist[-1])
        for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
            q += s * (a - y.dot(q) / y.dot(s))
        d = -q
        gd = g.dot(d)
        if gd >= 0:  # not a descent direction: restart from the gradient
            s_hist.clear(), y_hist.clear()
            d, gd = -g, -g.dot(g)
        t = 1.0 if s_hist else 1.0 / max(1e-12, float(np.sqrt(g.dot(g))))
        while True:
            x_new = x + t * d
            f_new, g_new = f(x_new)
            if f_new <= fx + 1e-4 * t * gd or t < 1e-12:
                break
            t *= 0.5
        s, y = x_new - x, g_new - g
        if s.dot(y) > 1e-12:
            s_hist.append(s), y_hist.append(y)
            if len(s_hist) > memory:
                s_hist.pop(0), y_hist.pop(0)
        x, fx, g = x_new, f_new, g_new
        trace.append(fx)
        if log is not None and it % 25 == 0:
            log(f"  iter {it:4d}  loss {fx:.5f}")
        # Stop when ten iterations gained less than 0.01% of the loss: accuracy has long settled.
        if float(np.abs(g).max()) < 1e-6 or (len(trace) > 10 and trace[-11] - fx < 1e-4 * fx):
            break
    return x


def fit_softmax(d: Design, y: np.ndarray, l2: float, max_iter: int = MAX_ITER, log: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multinomial logistic regression on the columns that occur; returns (used cols, W (K, U), b)."""
    k, n = len(CATEGORIES), len(y)
    used, cidx = np.unique(d.cols, return_inverse=True)
    u = len(used)
    cidx = cidx.astype(np.int32)
    order = np.argsort(cidx, kind="stable")
    col_starts = np.searchsorted(cidx[order], np.arange(u))
    # The sums run in float32 (half the memory traffic); L-BFGS keeps its vectors in float64.
    rows_cs, vals_cs, row_starts = d.rows[order], d.vals[order], d.starts[:-1]
    vals = d.vals
    onehot = np.zeros((k, n), dtype=np.float32)
    onehot[y, np.arange(n)] = 1.0

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: k * u].reshape(k, u), theta[k * u :]
        w32 = w.astype(np.float32)
        s = np.stack([np.add.reduceat(vals * w32[c][cidx], row_starts) for c in range(k)]).astype(np.float64) + b[:, None]
        s -= s.max(axis=0)
        p = np.exp(s)
        p /= p.sum(axis=0)
        loss = -float(np.log(p[y, np.arange(n)] + 1e-300).mean()) + 0.5 * l2 * float((w * w).sum())
        gs = ((p - onehot) / n).astype(np.float32)
        gw = np.stack([np.add.reduceat(vals_cs * gs[c][rows_cs], col_starts) for c in range(k)]).astype(np.float64) + l2 * w
        return loss, np.concatenate([gw.ravel(), gs.sum(axis=1, dtype=np.float64)])

    theta = _lbfgs(f, np.zeros(k * u + k), max_iter, log=log)
    return used, theta[: k * u].reshape(k, u), theta[k * u :]


def scores(d: Design, table: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Logits (n, K) for a design with a full weight table (2**bits, K)."""
    return np.add.reduceat(d.vals[:, None] * table[d.cols], d.starts[:-1], axis=0) + bias


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature that minimises validation log-loss, so confidences mean something."""
    best_t, best = 1.0, np.inf
    for t in np.arange(0.3, 3.01, 0.05):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = -float((z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())
        if nll < best:
            best_t, best = float(t), nll
    return round(best_t, 2)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def training_texts(rows: list[dict[str, Any]], seed: int, augment_path: Path | None = AUGMENT_PATH) -> list[tuple[str, str]]:
    """The train split, restyled, plus the template texts; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    pairs = restyle(rows, rng)
    if augment_path is not None:
        pairs += expand_templates(json.loads(augment_path.read_text(encoding="utf-8")), rng)
    return pairs


def train(
    data: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    bits: int = DEFAULT_BITS,
    l2: float = DEFAULT_L2,
    augment_path: Path | None = AUGMENT_PATH,
    combine: dict[str, float] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Fit the model on `data`, write router.npz and router.json to out_dir, return the manifest."""
    from tollgate.proxy.routing.classifier import DEFAULT_COMBINE, MANIFEST_FILE, MODEL_FILE

    started = time.monotonic()
    rows = load_labeled(data)
    parts = split_rows(rows, seed)
    pairs = training_texts(parts["train"], seed, augment_path)
    log(f"rows: {len(rows)} (train {len(parts['train'])}, val {len(parts['val'])}, held-out {len(parts['test'])}); "
        f"training texts with augmentation: {len(pairs)}")
    feats = featurize([t for t, _ in pairs], bits)
    idf = fit_idf(feats, bits)
    d = design(feats, idf)
    y = np.array([CATEGORIES.index(label) for _, label in pairs])
    log(f"features: {len(d.cols)} non-zeros over {len(np.unique(d.cols))} columns; fitting (L-BFGS, l2={l2:g})")
    used, w, b = fit_softmax(d, y, l2, log=log)
    table = np.zeros((1 << bits, len(CATEGORIES)), dtype=np.float16)
    table[used] = w.T.astype(np.float16)
    table32 = table.astype(np.float32)
    metrics: dict[str, Any] = {}
    temperature = 1.0
    for name in ("val", "test"):
        if not parts[name]:
            continue
        dd = design(featurize([r["text"] for r in parts[name]], bits), idf)
        logits = scores(dd, table32, b)
        yy = np.array([CATEGORIES.index(r["label"]) for r in parts[name]])
        if name == "val":
            temperature = fit_temperature(logits, yy)
        metrics[f"{'heldout' if name == 'test' else name}_text_accuracy"] = round(float((logits.argmax(axis=1) == yy).mean()), 4)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / MODEL_FILE, table=table, idf=idf.astype(np.float16), bias=b.astype(np.float32))
    manifest = {
        "method": "multinomial logistic regression on hashed TF-IDF word 1-2-grams and char 2-5-grams "
        "of the latest user turn; system prompt, history and tools combined as tempered experts",
        "categories": list(CATEGORIES),
        "bits": bits,
        "l2": l2,
        "seed": seed,
        "temperature": temperature,
        "combine": {**DEFAULT_COMBINE, **(combine or {})},
        "data": {"file": Path(data).name, "sha256": file_sha256(Path(data)), "rows": len(rows),
                 "split": {"train": len(parts["train"]), "val": len(parts["val"]), "heldout": len(parts["test"])},
                 "split_rule": f"blake2b(seed, text) % 100: <{HELD_OUT_PCT} held-out, <{HELD_OUT_PCT + VAL_PCT} val"},
        "augment": {"file": augment_path.name, "sha256": file_sha256(augment_path)} if augment_path else None,
        "training_texts": len(pairs),
        "metrics": metrics,
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    metrics.update(chat_set_metrics(out_dir))  # scores the artifact just written, then records the result
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out_dir / MODEL_FILE} ({(out_dir / MODEL_FILE).stat().st_size / 1e6:.1f} MB) in "
        f"{time.monotonic() - started:.0f} s; metrics {metrics}")
    return manifest


def chat_set_metrics(model_dir: Path) -> dict[str, float]:
    """Accuracy of the written model on the chat-request sets shipped in data/ (whole requests)."""
    clf = RequestClassifier.load(model_dir)
    out = {}
    for name in ("dev_chat", "handwritten", "handwritten_long"):
        path = AUGMENT_PATH.parent / f"{name}.jsonl"
        if path.exists():
            items, _ = load_items(path)
            out[f"{name}_accuracy"] = evaluate(clf, items, warmup=0)["accuracy"]
    return out
