"""Per-class results from the validation confusion matrices (layer 2: pure numpy of a Run).

The trainer records a C x C matrix of counts per epoch (row: true class, column: predicted class;
rundir/format.py CONFUSION_FIELD). From the last epoch's (the model as the run ended) this module derives
each class's accuracy (its recall) with a Wilson score interval, the most-confused pairs, the classes never
predicted, and where the predictions concentrate. The per-class rules (rules/per_class.py), the
`class_imbalance` evidence and the report's `per_class` object all read `per_class(run)`, computed once
per run (run.memo).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from rundir.format import CONFUSION_FIELD
from rundir.read import Run
from .stats import median

WILSON_Z = 1.96  # two-sided 95 % interval
MOST_CONFUSED = 10  # pairs listed in the report
HEATMAP_MAX = 30  # classes drawn in the heatmap: more (CIFAR-100) keep the 30 with the most errors


def wilson(k: np.ndarray, n: np.ndarray, z: float = WILSON_Z) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k successes in n trials (elementwise); (0, 1) where n = 0. Unlike the normal
    interval it stays inside [0, 1] and is honest at 0 or n successes, which per-class counts often are."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(all="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
    hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return lo, hi


def _matrix(value: Any, c: Optional[int]) -> Optional[np.ndarray]:
    """A recorded matrix as a (C, C) int array, or None unless it is one (a file from elsewhere may hold anything)."""
    if not isinstance(value, list) or not value or (c is not None and len(value) != c) or len(value) > 10_000:
        return None
    n = len(value)
    if not all(isinstance(row, list) and len(row) == n for row in value):
        return None
    if not all(type(v) is int and 0 <= v < 2**53 for row in value for v in row):
        return None
    return np.array(value, dtype=np.int64)


def confusion_history(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, matrices E x C x C) of the validation records that hold a well-formed matrix; empty without."""
    key = "confusion_history"
    if key not in run.memo:
        c = run.num_classes
        epochs, mats = [], []
        for epoch, value in zip(run.val.epochs, run.val.raw(CONFUSION_FIELD)):
            m = _matrix(value, c)
            if m is not None and (not mats or m.shape == mats[0].shape):
                epochs.append(int(epoch))
                mats.append(m)
        run.memo[key] = (np.array(epochs, dtype=np.int64),
                         np.stack(mats) if mats else np.zeros((0, 0, 0), dtype=np.int64))
    return run.memo[key]


def class_names(run: Run, c: int) -> list[str]:
    """run_info.json's class names when it has C of them (an image folder's), else the class indices."""
    names = (run.info or {}).get("class_names")
    if isinstance(names, list) and len(names) == c and all(isinstance(n, str) for n in names):
        return [n[:60] for n in names]
    return [str(i) for i in range(c)]


def per_class(run: Run) -> Optional[dict]:
    """The per-class results of the last recorded matrix, as plain data; None when no matrix was recorded."""
    if "per_class" not in run.memo:
        run.memo["per_class"] = _per_class(run)
    return run.memo["per_class"]


def _per_class(run: Run) -> Optional[dict]:
    epochs, mats = confusion_history(run)
    if not len(epochs) or mats[-1].sum() == 0:
        return None
    m = mats[-1]
    c = m.shape[0]
    total = int(m.sum())
    support, predicted, correct = m.sum(axis=1), m.sum(axis=0), np.diag(m)
    lo, hi = wilson(correct, support)
    names = class_names(run, c)
    with np.errstate(all="ignore"):
        recall = np.where(support > 0, correct / np.maximum(support, 1), np.nan)
        precision = np.where(predicted > 0, correct / np.maximum(predicted, 1), np.nan)
    # Epochs in a row, up to the last, in which each class got no prediction at all.
    zero = (mats.sum(axis=1) == 0)[::-1]  # E x C, last epoch first
    unpredicted_for = np.where(zero.all(axis=0), len(epochs), np.argmin(zero, axis=0))
    classes = [{"class": i, "name": names[i], "support": int(support[i]), "correct": int(correct[i]),
                "predicted": int(predicted[i]), "accuracy": _num(recall[i]), "ci": [_r(lo[i]), _r(hi[i])],
                "precision": _num(precision[i])} for i in range(c)]
    off = m.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:MOST_CONFUSED]
    confused = [{"true": int(t), "predicted": int(p), "true_name": names[t], "predicted_name": names[p],
                 "count": int(off[t, p]), "share_of_true": _r(off[t, p] / support[t]) if support[t] else None}
                for t, p in zip(*np.unravel_index(order, off.shape)) if off[t, p] > 0]
    never = [int(i) for i in np.flatnonzero((predicted == 0) & (support > 0))]
    top = int(np.argmax(predicted))
    return {
        "epoch": int(epochs[-1]),
        "num_classes": c,
        "total": total,
        "accuracy": _r(correct.sum() / total),
        "chance": _r(1 / c),
        "classes": classes,
        "most_confused": confused,
        "never_predicted": never,
        "never_predicted_epochs": {str(i): int(unpredicted_for[i]) for i in never},
        "epochs_recorded": int(len(epochs)),
        "top_predicted": {"class": top, "name": names[top], "share_of_predictions": _r(predicted[top] / total),
                          "share_of_labels": _r(support[top] / total)},
        "heatmap": heatmap(m, names, recall),
    }


def heatmap(m: np.ndarray, names: list[str], recall: np.ndarray) -> dict:
    """What the report draws: classes ordered worst accuracy first (ties: most errors first); with more than
    HEATMAP_MAX classes only the HEATMAP_MAX with the most errors (missed plus wrongly predicted) are kept,
    so a 100-class matrix stays readable. Cells: counts, and each row's shares of its class's images."""
    c = m.shape[0]
    errors = m.sum(axis=0) + m.sum(axis=1) - 2 * np.diag(m)
    keep = np.arange(c)
    if c > HEATMAP_MAX:
        keep = np.sort(np.argsort(-errors, kind="stable")[:HEATMAP_MAX])
    acc = np.where(np.isfinite(recall), recall, 2.0)  # classes without images last
    keep = keep[np.lexsort((-errors[keep], acc[keep]))]
    sub = m[np.ix_(keep, keep)]
    rows = m[keep].sum(axis=1)
    with np.errstate(all="ignore"):
        shares = np.where(rows[:, None] > 0, sub / np.maximum(rows[:, None], 1), 0.0)
    return {"classes": [int(i) for i in keep], "labels": [names[i] for i in keep], "counts": sub.tolist(),
            "row_shares": np.round(shares, 4).tolist(), "shown": int(len(keep)), "of": int(c),
            "order": "worst accuracy first" + (f"; the {len(keep)} classes with the most errors of {c}"
                                               if len(keep) < c else "")}


# ── per-matrix tests, for the rules (rules/per_class.py), which require them over the last epochs ──

PERSIST_EPOCHS = 3  # a per-class finding must hold in each of the last 3 recorded epochs (all of a shorter run)
# A collapse: one class receives at least half the predictions and more than halfway from its share of
# the labels to all of them (10 balanced classes: over 55 %; 2: over 75 %).
COLLAPSE_MIN_SHARE = 0.5
MAJORITY_FACTOR = 2.0  # a "majority" class: the largest training class, with at least 2x the median's images


def recent(run: Run) -> list[np.ndarray]:
    """The matrices of the last PERSIST_EPOCHS recorded epochs, oldest first; fewer only for a run planned
    shorter (a run still in its first epochs, live, has none yet: early epochs leave classes unlearned)."""
    _, mats = confusion_history(run)
    need = min(PERSIST_EPOCHS, run.planned_epochs or PERSIST_EPOCHS)
    return list(mats[-PERSIST_EPOCHS:]) if len(mats) >= need else []


def never_predicted(m: np.ndarray) -> set[int]:
    """Classes with validation images that no image was predicted as."""
    return {int(i) for i in np.flatnonzero((m.sum(axis=0) == 0) & (m.sum(axis=1) > 0))}


def at_chance(m: np.ndarray) -> dict[int, dict]:
    """Classes predicted sometimes but recognised no better than chance while the other classes learn: the
    class's accuracy interval reaches down to chance (1/C), its accuracy lies closer to chance than to that
    of the other classes together, and the others' interval lies wholly above both chance and its own."""
    c = m.shape[0]
    support, predicted, correct = m.sum(axis=1), m.sum(axis=0), np.diag(m)
    lo, hi = wilson(correct, support)
    chance = 1 / c
    out = {}
    for i in np.flatnonzero((support > 0) & (predicted > 0)):
        rest_n, rest_k = support.sum() - support[i], correct.sum() - correct[i]
        if rest_n <= 0:
            continue
        rest_lo, _ = wilson(rest_k, rest_n)
        acc, rest_acc = correct[i] / support[i], rest_k / rest_n
        if lo[i] <= chance and acc < (chance + rest_acc) / 2 and rest_lo > max(chance, hi[i]):
            out[int(i)] = {"accuracy": _r(acc), "ci": [_r(lo[i]), _r(hi[i])], "support": int(support[i]),
                           "others_accuracy": _r(rest_acc), "others_ci_low": _r(float(rest_lo))}
    return out


def collapse(m: np.ndarray) -> Optional[dict]:
    """The class the predictions collapse onto (COLLAPSE_MIN_SHARE), or None."""
    total = m.sum()
    if total == 0:
        return None
    predicted, support = m.sum(axis=0), m.sum(axis=1)
    top = int(np.argmax(predicted))
    share, truth = predicted[top] / total, support[top] / total
    if share >= COLLAPSE_MIN_SHARE and share > truth + (1 - truth) / 2:
        return {"class": top, "share_of_predictions": _r(share), "share_of_labels": _r(truth)}
    return None


def majority_classes(counts: Any) -> set[int]:
    """The largest training class(es), when they hold MAJORITY_FACTOR x the median class's images."""
    if not (isinstance(counts, list) and len(counts) >= 2 and all(type(v) is int and v >= 0 for v in counts)):
        return set()
    arr = np.array(counts, dtype=float)
    top = arr.max()
    if top <= 0 or top < MAJORITY_FACTOR * median(arr):
        return set()
    return {int(i) for i in np.flatnonzero(arr == top)}


def _r(x: float, digits: int = 4) -> Optional[float]:
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def _num(x: float) -> Optional[float]:
    return _r(x)


def per_class_section(run: Run) -> Optional[dict]:
    """The report's short per-class section (text, Markdown and HTML print its lines); None without a matrix."""
    pc = per_class(run)
    if pc is None:
        return None
    rows = [r for r in pc["classes"] if r["accuracy"] is not None]
    worst = sorted(rows, key=lambda r: (r["accuracy"], -r["support"]))[:5]
    lines = [f"epoch {pc['epoch']}: {pc['total']} validation images, {pc['num_classes']} classes; "
             f"accuracy per class with its 95 % Wilson interval (chance {pc['chance']:.3g})"]
    if rows:
        lines.append("lowest: " + ", ".join(f"{r['name']} {r['accuracy']:.2f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}] "
                                            f"of {r['support']}" for r in worst))
    if pc["most_confused"]:
        lines.append("most confused (true -> predicted): " + ", ".join(
            f"{p['true_name']} -> {p['predicted_name']} {p['count']}"
            + (f" ({p['share_of_true']:.0%})" if p["share_of_true"] is not None else "")
            for p in pc["most_confused"][:5]))
    else:
        lines.append("no validation image was confused with another class")
    never = pc["never_predicted"]
    lines.append(f"never predicted: {', '.join(pc['classes'][i]['name'] for i in never[:20])}"
                 + (f" and {len(never) - 20} more" if len(never) > 20 else "") if never
                 else "every class with validation images is predicted at least once")
    top = pc["top_predicted"]
    lines.append(f"most predicted: {top['name']}, {top['share_of_predictions']:.0%} of predictions "
                 f"for {top['share_of_labels']:.0%} of the labels")
    return {"title": "Per-class results", "lines": lines, "data": {}}
