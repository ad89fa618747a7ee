"""One run -> the report as plain data: run, summary, the seed's sections, findings.

Built once here; every format (text, Markdown, HTML, JSON) renders this dict and computes nothing.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional

import numpy as np

from rundir.config_keys import (
    REGULARIZATION_GRAD_CLIP, SCHEDULER_NAME, SCHEDULER_PATIENCE)
from .facts import chance_accuracy, chance_loss, finite, known_loss_floor, not_checked, val_size_info
from .findings import Finding
from .records import read_live
from rundir.format import epoch_ranges
from .progress import progress
from .overrides import mark_replacements, report_recommendations
from .per_class import per_class, per_class_section
from rundir.read import Run
from .label_noise_report import label_noise_section
from .facts import skipped_images
from .rules import causes, diagnose
from .schedule import find_cuts, is_piecewise, lr_rises
from .stats import json_safe, trend, window_size
from .summary import finite_number, summary
from .verification import verified_section

GROUPS = ("data", "model", "optimizer", "scheduler", "augmentation", "fault")


def _f(x: Any, spec: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, spec)


def lr_section(run: Run) -> dict:
    tr = run.train
    lr = tr["learning_rate"]
    lines, cuts = [], find_cuts(run)
    if not np.isfinite(lr).any():
        return {"title": "Learning Rate Analysis", "lines": ["no learning_rate recorded"], "data": {}}
    name = run.cfg(SCHEDULER_NAME)
    sched = f" (scheduler {name}" + (f", patience {run.cfg(SCHEDULER_PATIENCE)}" if name == "plateau" else "") + ")" \
        if name else ""
    lines.append(f"initial LR {_f(lr[0])}, final LR {_f(lr[-1])}{sched}")
    if is_piecewise(run):
        if not cuts:
            lines.append("the LR was never cut")
        for c in cuts:
            line = f"cut at epoch {c.epoch}: {_f(c.lr_before)} -> {_f(c.lr_after)} (x{c.lr_after / c.lr_before:.3g})"
            if c.planned:
                line += " (planned by the schedule)"
            if c.verdict != "unknown":
                line += (f"; val loss before it {c.verdict} (slope {_f(c.val_slope, '+.3g')}/epoch, "
                         f"t={_f(c.val_slope_t, '.1f')}, noise {_f(c.val_noise, '.2g')})")
            if c.after_text():
                line += f"; {c.after_text()}"
            lines.append(line)
    elif not lr_rises(run):
        lines.append("the LR follows a smooth schedule (no discrete cuts)")
    for r in lr_rises(run):  # never smooth: the schedule restarted
        lines.append(f"the LR jumped back up at epoch {r.epoch}: {_f(r.lr_before)} -> {_f(r.lr_after)} after decaying "
                     f"from {_f(r.peak_before)} (a restarted schedule, e.g. a resume with another trainer.epochs)")
    return {"title": "Learning Rate Analysis", "lines": lines,
            "data": {"initial": finite_number(lr[0]), "final": finite_number(lr[-1]), "cuts": [c.as_dict() for c in cuts],
                     "rises": [r.as_dict() for r in lr_rises(run)]}}


def loss_section(run: Run) -> dict:
    tr, va = run.train, run.val
    y, e = tr.finite("loss")
    floor, floor_source = known_loss_floor(run)  # unknown smoothing: an unknown floor, never 0
    lines, data = [], {"floor": floor, "chance_loss": chance_loss(run)}
    if len(y):
        best = int(np.argmin(y))
        lines.append(f"train loss: initial {_f(y[0])}, final {_f(y[-1])}, best {_f(y[best])} at epoch {int(e[best])}")
        w = window_size(len(y))
        t = trend(y[-w:], e[-w:])
        state = "still falling" if t.falling() else ("rising" if t.rising() else "flat (no significant trend)")
        lines.append(f"last {t.n} epochs: slope {_f(t.slope, '+.3g')} +/- {_f(t.se, '.2g')} per epoch: {state}")
        data.update(initial=float(y[0]), final=float(y[-1]), best=float(y[best]), best_epoch=int(e[best]),
                    trend=t.as_dict())
    vl = va["loss"]
    if np.isfinite(vl).any():
        best = int(np.nanargmin(vl))
        lines.append(f"val loss: final {_f(vl[-1])}, best {_f(vl[best])} at epoch {int(va.epochs[best])}")
    floor_note = f"loss floor {floor:.4g} ({floor_source})" if floor is not None else f"loss floor {floor_source}"
    if chance_loss(run) is not None:
        floor_note += f"; chance level ln {run.num_classes} = {chance_loss(run):.4g}"
    lines.append(floor_note)
    counts = np.asarray(tr["nonfinite_steps"], dtype=float) if tr.has("nonfinite_steps") else np.zeros(0)
    nonfinite = float(np.sum(counts[np.isfinite(counts)]))
    if not math.isfinite(nonfinite) or nonfinite > 2**53:  # a hostile file's 1e308 steps: a count no run had
        lines.append("training steps with a non-finite loss: unknown (the recorded counts are not plausible)")
    elif nonfinite:
        lines.append(f"{int(nonfinite)} training steps had a non-finite loss")
    return {"title": "Loss Analysis", "lines": lines, "data": data}


def accuracy_section(run: Run) -> dict:
    tr, va = run.train, run.val
    lines = []
    ta, vacc = finite(tr["accuracy"]), va["accuracy"]
    if len(ta):
        lines.append(f"train accuracy: initial {_f(ta[0], '.4f')}, final {_f(ta[-1], '.4f')}")
    if np.isfinite(vacc).any():
        best = int(np.nanargmax(vacc))
        lines.append(f"val accuracy: initial {_f(vacc[0], '.4f')}, final {_f(vacc[-1], '.4f')}, "
                     f"best {_f(vacc[best], '.4f')} at epoch {int(va.epochs[best])}")
        if va.has("top5_accuracy"):
            lines.append(f"val top-5 accuracy: best {_f(np.nanmax(va['top5_accuracy']), '.4f')}")
        if len(ta):
            lines.append(f"train - val accuracy gap at the end: {_f(ta[-1] - vacc[-1], '+.4f')}")
    p0 = chance_accuracy(run)
    if p0 is not None:
        lines.append(f"chance level 1/{run.num_classes} = {p0:.4f}")
    n_val, n_source = val_size_info(run)
    lines.append(f"validation set: {n_val} images, {n_source}" if n_val else f"validation set size {n_source}")
    return {"title": "Accuracy Analysis", "lines": lines,
            "data": {"chance_accuracy": p0, "val_size": n_val or None, "val_size_source": n_source}}


def gradient_section(run: Run) -> dict:
    tr = run.train
    if not tr.has("mean_grad_norm"):
        return {"title": "Gradient Norm Analysis", "lines": ["no gradient norms recorded"], "data": {}}
    g = tr["mean_grad_norm"]
    lines = [f"mean global norm (before clipping, after AMP unscaling): first epoch {_f(g[0], '.3g')}, "
             f"last {_f(g[-1], '.3g')}; range over steps {_f(np.nanmin(tr['min_grad_norm']), '.3g')} .. "
             f"{_f(np.nanmax(tr['max_grad_norm']), '.3g')}"]
    first, last = tr["grad_norm_first_layer"], tr["grad_norm_last_layer"]
    if np.isfinite(first).any() and np.isfinite(last).any():
        lines.append(f"first layer {_f(first[-1], '.3g')}, last layer {_f(last[-1], '.3g')} (last epoch)")
    clip = run.cfg(REGULARIZATION_GRAD_CLIP)
    if tr.has("clipped_fraction") and (clip is not None or np.nanmax(tr["clipped_fraction"]) > 0):
        lines.append(f"clipped at {clip}: {_f(np.nanmean(tr['clipped_fraction']), '.0%')} of steps on average")
    if tr.has("amp_scale"):
        lines.append(f"AMP loss scale: last {_f(tr['amp_scale'][-1], '.0f')}")
    return {"title": "Gradient Norm Analysis", "lines": lines,
            "data": {"first": finite_number(g[0]), "last": finite_number(g[-1])}}


def update_section(run: Run) -> dict:
    tr = run.train
    if not tr.has("weight_update_ratio"):
        return {"title": "Weight Update Analysis", "lines": ["no weight updates recorded"], "data": {}}
    r = tr["weight_update_ratio"]
    lines = [f"update/weight norm ratio per step: first epoch {_f(r[0], '.3g')}, last {_f(r[-1], '.3g')}",
             "learning is happening (weights move every step)" if np.nanmin(r) > 1e-6
             else f"updates nearly stop (min ratio {_f(np.nanmin(r), '.2g')})"]
    if tr.has("dead_relu_fraction"):
        lines.append(f"dead ReLU units (worst layer, sampled batch): {_f(tr['dead_relu_fraction'][-1], '.0%')}")
    return {"title": "Weight Update Analysis", "lines": lines, "data": {"first": finite_number(r[0]), "last": finite_number(r[-1])}}


def data_section(run: Run) -> Optional[dict]:
    info = run.info
    if not info:
        return None
    lines = [f"{info.get('dataset')}: {info.get('train_size')} train / {info.get('val_size')} val images, "
             f"{info.get('num_classes')} classes"]
    mean, std = info.get("input_mean"), info.get("input_std")
    if isinstance(mean, list) and isinstance(std, list):
        lines.append(f"input batch: channel mean {[round(m, 3) for m in mean if isinstance(m, (int, float))]}, "
                     f"std {[round(s, 3) for s in std if isinstance(s, (int, float))]}")
    lines.append(f"train pipeline: {_oneline(info.get('train_transform'))}")
    lines.append(f"val pipeline: {_oneline(info.get('val_transform'))}")
    skipped = skipped_images(run)
    if skipped is not None and skipped["count"]:
        count, examples = skipped["count"], skipped["examples"]
        named = "; ".join(f"{e['path']} ({e['reason']})" for e in examples)
        more = f"; and {count - len(examples)} more" if count > len(examples) else ""
        of = f" of {skipped['of']}" if skipped["of"] else ""
        lines.append(f"skipped {count}{of} image files that cannot be used (data.skip_bad_images=true): {named}{more}")
    return {"title": "Data", "lines": lines, "data": {"skipped_images": skipped} if skipped is not None else {}}


def _oneline(text: Any) -> str:
    return " ".join(str(text).split()) if text is not None else "n/a"


def run_meta(run: Run) -> dict:
    return {
        "name": run.name,
        "path": str(run.path) if run.path is not None else None,
        "status": run.state,
        "error": (run.status or {}).get("error"),
        "choices": {g: run.cfg(f"{g}.name") for g in GROUPS if run.cfg(f"{g}.name") is not None},
        "overrides": run.overrides,
        "device": (run.info or {}).get("device"),
    }


def _valid(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("epochs"), list)
            and all(isinstance(r, list) and len(r) == 2 and all(isinstance(e, int) for e in r)
                    for r in entry["epochs"]))


def live_section(run: Run, final_ids: set[str]) -> Optional[dict]:
    """Live findings the final diagnosis does not repeat: cleared during training (with the epochs they
    held), or held to the end yet not found on the whole run. None when there are none."""
    record = read_live(run)
    if record is None:
        return None
    entries = [e for e in record["findings"] if _valid(e) and e["epochs"] and e["id"] not in final_ids]
    if not entries:
        return None
    lines, data = [], []
    for e in entries:
        held = epoch_ranges(e["epochs"])
        if e.get("active"):
            state = "held to the last epoch, but the diagnosis of the whole run does not repeat it"
        else:
            state = f"cleared by epoch {e['epochs'][-1][1] + 1}"
        stopped = "; it stopped the run" if e.get("stopped_run") else ""
        lines.append(f"{e['id']} ({e.get('severity', '?')}) fired live at {held}, {state}{stopped}: "
                     f"{e.get('message', '')}")
        data.append({"id": e["id"], "severity": e.get("severity"), "epochs": e["epochs"],
                     "state": "held" if e.get("active") else "cleared", "stopped_run": bool(e.get("stopped_run")),
                     "message": e.get("message")})
    return {"title": "Live findings that cleared", "lines": lines, "data": {"findings": data}}


def outcome_sections(run: Run, findings: list[Finding]) -> list[dict]:
    """What happened to the advice beyond this diagnosis: live findings that cleared during training
    (records.py reads them), and fixes verified by a sweep (`--verify`: verification.py)."""
    return [s for s in (live_section(run, {f.id for f in findings}), verified_section(run)) if s is not None]


# The per-epoch series the plots and epochs.csv draw (those the run recorded): the renderers get these arrays,
# never the Run.
TRAIN_CURVES = ("loss", "accuracy", "learning_rate", "mean_grad_norm", "min_grad_norm", "max_grad_norm",
                "grad_norm_first_layer", "grad_norm_last_layer", "weight_update", "weight_update_ratio",
                "clipped_fraction", "nonfinite_steps", "epoch_time_s")
VAL_CURVES = ("loss", "accuracy", "top5_accuracy")


def curves(run: Run) -> dict:
    """{"name", "train": {"epoch": ..., field: array}, "val": {...}}: plain arrays, NaN where an epoch lacks a value."""
    def split(cols, names) -> dict:
        return {"epoch": cols.epochs, **{n: cols[n] for n in names if cols.has(n)}}
    return {"name": run.name, "train": split(run.train, TRAIN_CURVES), "val": split(run.val, VAL_CURVES)}


def build(run: Run, findings: Optional[list[Finding]] = None) -> dict:
    """The whole report for one run, as plain data."""
    findings = diagnose(run) if findings is None else findings
    cause = causes.differential(run, findings)
    findings = causes.consistent(run, findings, cause)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: sections print n/a
        sections = [s for s in (lr_section(run), loss_section(run), accuracy_section(run), gradient_section(run),
                                update_section(run), data_section(run), per_class_section(run),
                                label_noise_section(run)) if s is not None]
    sections += outcome_sections(run, findings)
    report = {
        "run": run_meta(run),
        "summary": summary(run),
        "progress": progress(run),
        "sections": sections,
        "cause": cause,
        "findings": [f.to_dict() for f in findings],
        "not_checked": not_checked(run),  # checks silent for an unknown fact: said, so "no findings" is not health
        "per_class": per_class(run),  # None without a recorded confusion matrix (analysis/per_class.py)
        "warnings": list(run.warnings),
    }
    mark_replacements(run, report_recommendations(report))  # every fix runs on the run's own command line
    # JSON has no NaN or Infinity: a value that was not recorded or not computable is null ("unknown").
    return json_safe(report)
