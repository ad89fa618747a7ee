"""CSV tables: one row per epoch for a run (train and val side by side)."""

from __future__ import annotations

import csv
import io

from .html import series

TRAIN_COLS = ["loss", "accuracy", "learning_rate", "mean_grad_norm", "min_grad_norm", "max_grad_norm",
              "weight_update", "weight_update_ratio", "clipped_fraction", "nonfinite_steps", "epoch_time_s"]
VAL_COLS = ["loss", "accuracy", "top5_accuracy"]


def run_epochs(curves: dict) -> str:
    """epochs.csv from a run's curves (run_report.curves)."""
    tr, va = curves["train"], curves["val"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["epoch"] + [f"train_{c}" for c in TRAIN_COLS] + [f"val_{c}" for c in VAL_COLS])
    val_rows = {int(e): i for i, e in enumerate(va["epoch"])}
    train_cols = [series(tr, c) for c in TRAIN_COLS]
    val_cols = [series(va, c) for c in VAL_COLS]
    for i, e in enumerate(tr["epoch"]):
        row = [int(e)] + [_cell(col[i]) for col in train_cols]
        j = val_rows.get(int(e))
        row += [_cell(col[j]) if j is not None else "" for col in val_cols]
        w.writerow(row)
    return buf.getvalue()


def _cell(x) -> str:
    return "" if x != x else repr(float(x))  # NaN -> empty cell


def sweep_runs(report: dict) -> str:
    """runs.csv: one row per job, its overrides as columns."""
    keys = sorted({k for r in report["runs"] for k in r["overrides"]})
    cols = ["best_val_accuracy", "final_val_accuracy", "best_epoch", "epochs", "final_train_loss", "lr_cuts",
            "progress_verdict", "loss_progress", "still_falling"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["job", "status", *keys, *cols, "findings", "error"])
    for r in report["runs"]:
        w.writerow([r["job"], r["status"], *[_value(r["overrides"].get(k)) for k in keys],
                    *[_value(r.get(c)) for c in cols], " ".join(r["findings"]), r["error"] or ""])
    return buf.getvalue()


def _value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return _cell(v)
    return str(v)


def comparison_sweeps(data: dict) -> str:
    """comparison.csv: one row per sweep compared (the first is the baseline)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sweep", "path", "best_mean", "best_std", "best_n", "best_overrides", "delta_vs_baseline",
                "delta_se", "completed", "found"])
    deltas = [{"best_delta": None, "best_delta_se": None}] + data["comparisons"]
    for s, c in zip(data["sweeps"], deltas):
        b = s["best"] or {}
        w.writerow([s["name"], s["path"], _value(b.get("mean")), _value(b.get("std")), _value(b.get("n")),
                    " ".join(b.get("overrides", [])), _value(c["best_delta"]), _value(c["best_delta_se"]),
                    s["jobs"]["completed"], s["jobs"]["found"]])
    return buf.getvalue()
