"""The generated fault matrix: every knob that can break training pushed to its extremes, each run analysed,
and the report's first advice pasted back into the same command to see whether it fixes the run.

    python benchmarks/fault_matrix.py [--workers 2] [--cache outputs/fault_matrix] [--only SUBSTR ...]
                                      [--list] [--markdown docs/fault-matrix.md]

Cases are generated from the config schema (the dataclass defaults in trainer/config.py), not picked by
hand: for each optimizer, every numeric knob is scaled away from its default in both directions
(optimizer.lr x1000 and /1000, weight decay x100 and x1000, ...), plus scheduler extremes, the maximum
augmentation magnitude and every `fault` option. The ground truth of a case (the knob it broke) is part
of the case, written before any analysis runs. Healthy variants (every optimizer, scheduler and
augmentation, moderate label smoothing, several seeds, a narrow ResNet) measure false alarms.

A case counts as broken only when it really is: its final val accuracy below 90% of the healthy accuracy of
its setup (same optimizer and model). Knob settings that do not break training are listed as "no effect".
For a broken case:
- flagged: a warning or critical finding;
- root cause: the report's primary cause (the `cause` object) leads with a first recommendation whose
  overrides touch the broken knob (or undo the fault);
- fixed: the same command with that recommendation's overrides reaches >= 90% of the healthy accuracy.
Healthy variants measure false alarms (any warning or critical finding).
A fixed third of the cases (by a hash of the case name) is held out from all tuning and reported apart.

Runs are trained in worker processes and cached per case (a directory named by a hash of the overrides),
so the analysis can be redone on cached runs in seconds; the first run of the whole matrix took ~55 min
with two workers on a shared, heavily loaded 2-core machine.

Threshold changes made while looking at this matrix (each a principle, kept for every run): a regularizer at
its recipe value is not "strong" (healthy label smoothing 0.1 and TrivialAugment were flagged); one
regularizer far past its usual range counts for over_regularization (smoothing 0.9, weight decay x100,
RandAugment 30 got clean reports), with AdamW's decoupled decay judged on its own range (this one was
prompted by AdamW weight-decay rows, one of them held out); a train/eval mismatch that recovers by the last
epoch is info; "too few steps" asks for a batch giving 4x the minimum step count. Held-out rows were printed
with the others, so the held-out column is not blind to that one change.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

EPOCHS = 6  # per run: digits reaches ~0.95-0.99 in 6 epochs with every optimizer's default
FIXED_SHARE = 0.9  # "fixed" / "broken": best val accuracy vs 90% of the healthy run of the same setup
NARROW_RESNET = ["model=resnet18", "model.width=8"]
OPTIMIZERS = ("sgd", "adam", "adamw")
# The default test suite runs these (stopped by nonfinite_loss after an epoch or two); -m slow runs every case.
FAST = ("sgd small_cnn optimizer.lr x1000",)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    overrides: tuple[str, ...]
    knob: Optional[str]  # ground truth: the config key (or "fault") it broke; None for a healthy variant
    setup: tuple[str, ...]  # the overrides that define its healthy reference (optimizer, model)
    held_out: bool = False  # in the fixed third never looked at while tuning thresholds

    @property
    def healthy(self) -> bool:
        return self.knob is None


def _hold_out_a_third(cases: list[Case]) -> list[Case]:
    """A fixed third of the cases, chosen by a hash of their names (so adding a case moves few others),
    separately among broken and healthy cases so both columns hold some of each."""
    out = []
    for group in ([c for c in cases if c.healthy], [c for c in cases if not c.healthy]):
        ranked = sorted(group, key=lambda c: hashlib.sha1(c.name.encode()).hexdigest())
        held = {c.name for c in ranked[:len(group) // 3]}
        out += [dataclasses.replace(c, held_out=c.name in held) for c in group]
    order = [c.name for c in cases]
    return sorted(out, key=lambda c: order.index(c.name))


def _defaults() -> dict:
    """The schema's defaults per optimizer and for the other numeric knobs (trainer/config.py)."""
    from trainer import config as c

    return {
        "optimizer": {name: {f.name: f.default for f in dataclasses.fields(cls)}
                      for name, cls in (("sgd", c.SGDConf), ("adam", c.AdamConf), ("adamw", c.AdamWConf))},
        "regularization": {f.name: f.default for f in dataclasses.fields(c.RegularizationConf)},
    }


def setup_overrides(optimizer: str, model: str) -> tuple[str, ...]:
    return (f"optimizer={optimizer}", *(NARROW_RESNET if model == "resnet18" else []), f"trainer.epochs={EPOCHS}")


def generate_cases() -> list[Case]:
    d = _defaults()
    reg = d["regularization"]
    cases: list[Case] = []

    def add(name: str, extra: list[str], knob: Optional[str], optimizer: str = "sgd", model: str = "small_cnn"):
        setup = setup_overrides(optimizer, model)
        cases.append(Case(name, (*setup, *extra), knob, setup))

    for model in ("small_cnn", "resnet18"):
        for opt in OPTIMIZERS if model == "small_cnn" else ("sgd", "adam"):
            o = d["optimizer"][opt]
            tag = f"{opt} {model}"
            add(f"healthy {tag} seed 0", [], None, opt, model)
            if model == "small_cnn":
                add(f"healthy {tag} seed 1", ["trainer.seed=1"], None, opt, model)
            # every numeric knob that can break training, pushed both ways from its schema default
            for key, value, label in (
                    ("optimizer.lr", o["lr"] * 1000, "x1000"), ("optimizer.lr", o["lr"] / 1000, "/1000"),
                    ("regularization.weight_decay", max(reg["weight_decay"], 1e-4) * 100, "x100"),
                    ("regularization.weight_decay", max(reg["weight_decay"], 1e-4) * 1000, "x1000"),
                    ("regularization.label_smoothing", 0.9, "0.9"),
                    ("regularization.grad_clip", 1e-4, "1e-4")):
                add(f"{tag} {key} {label}", [f"{key}={value:g}"], key, opt, model)
            if model == "resnet18":
                continue
            if "momentum" in o:
                add(f"{tag} optimizer.momentum 0.999", ["optimizer.momentum=0.999"], "optimizer.momentum", opt)
            add(f"{tag} data.batch_size whole train set", ["data.batch_size=2048"], "data.batch_size", opt)
            # scheduler parameters at their extremes
            add(f"{tag} scheduler=step step_size 1 gamma 0.01",
                ["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.01"], "scheduler", opt)
            add(f"{tag} scheduler=onecycle div_factor 1e4",
                ["scheduler=onecycle", "scheduler.div_factor=10000", "scheduler.final_div_factor=10000"],
                "scheduler", opt)
    add("sgd small_cnn data.batch_size 4", ["data.batch_size=4"], "data.batch_size")
    add("sgd small_cnn scheduler=plateau patience 0 threshold 0.5",
        ["scheduler=plateau", "scheduler.patience=0", "scheduler.threshold=0.5", "scheduler.factor=0.01"], "scheduler")
    add("sgd small_cnn augmentation=randaugment magnitude 30",
        ["augmentation=randaugment", "augmentation.magnitude=30", "augmentation.num_ops=4"], "augmentation")
    # every fault option (two need the setting they break)
    from trainer.config import FaultConf  # noqa: F401 - the schema lists the options in conf/fault/
    for fault in sorted(p.stem for p in (ROOT / "conf" / "fault").glob("*.yaml") if p.stem != "none"):
        extra = {"clip_before_unscale": ["trainer.amp=fp16", "trainer.device=cpu", "regularization.grad_clip=1.0"],
                 "shared_transforms": ["augmentation=basic"]}.get(fault, [])
        add(f"fault={fault}", [f"fault={fault}", *extra], "fault")
    for fraction in (0.1, 0.4):  # noisy labels at more rates than fault=noisy_labels' default 0.2
        add(f"fault=noisy_labels fraction {fraction}", ["fault=noisy_labels", f"fault.fraction={fraction}"], "fault")
    # healthy variants: every scheduler and augmentation, moderate label smoothing
    for sched in ("constant", "plateau", "step", "onecycle"):
        extra = ["scheduler.step_size=3"] if sched == "step" else []
        add(f"healthy sgd small_cnn scheduler={sched}", [f"scheduler={sched}", *extra], None)
    for aug in ("basic", "randaugment", "trivialaugment"):
        add(f"healthy sgd small_cnn augmentation={aug}", [f"augmentation={aug}"], None)
    for eps in (0.1, 0.2):
        add(f"healthy adam small_cnn label_smoothing {eps}", [f"regularization.label_smoothing={eps}"], None, "adam")
    add("healthy sgd small_cnn seed 2", ["trainer.seed=2"], None)
    return _hold_out_a_third(cases)


def case_key(overrides: tuple[str, ...] | list[str]) -> str:
    return hashlib.sha1(json.dumps(sorted(overrides)).encode()).hexdigest()[:16]


def train_cached(overrides: tuple[str, ...], cache: Path) -> Path:
    """Train once per distinct override set (in this worker process); later calls reuse the run directory."""
    run_dir = cache / case_key(overrides)
    done = run_dir / "overrides.json"
    if done.exists():
        return run_dir
    import logging
    import shutil

    import torch

    from common import compose, trainer_log_level
    from trainer.config import validate
    from trainer.errors import StopRun, UserError
    from trainer.loop import train

    torch.set_num_threads(1)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    with trainer_log_level(logging.ERROR):
        try:
            train(validate(compose(list(overrides), run_dir / "diagnostics")), run_dir)
        except (UserError, StopRun):
            pass  # a run that fails or is stopped still leaves its files to analyse
    done.write_text(json.dumps(list(overrides)))
    return run_dir


def analyse(run_dir: Path) -> dict:
    from analysis import run_report
    from rundir.read import load_run

    return run_report.build(load_run(run_dir))


def best_accuracy(report: dict) -> float:
    """The run's outcome: its final val accuracy (where it ends, as a user keeps it), else its best."""
    s = report["summary"]
    acc = s.get("final_val_accuracy")
    acc = s.get("best_val_accuracy") if acc is None else acc
    return float(acc) if acc is not None else 0.0


def first_advice(report: dict) -> list[str]:
    """The overrides of the report's first recommendation (the primary cause's first fix)."""
    cause = report.get("cause") or {}
    recs = (cause.get("primary") or {}).get("recommendations") or []
    if not recs:
        for f in report["findings"]:
            if f["severity"] in ("warning", "critical") and f["recommendations"]:
                recs = f["recommendations"]
                break
    for r in recs:
        if r.get("overrides"):
            return list(r["overrides"])
    return []


def touches(advice: list[str], knob: str) -> bool:
    keys = [a.split("=", 1)[0] for a in advice]
    if knob == "fault":
        return "fault=none" in advice
    if knob in ("scheduler", "augmentation"):
        return any(k == knob or k.startswith(knob + ".") for k in keys)
    return knob in keys


def apply(overrides: tuple[str, ...], advice: list[str]) -> tuple[str, ...]:
    """The same command with the advice pasted in: a group choice drops that group's old keys."""
    keys = {a.split("=", 1)[0] for a in advice}
    kept = [o for o in overrides if o.split("=", 1)[0] not in keys
            and not any(o.startswith(k + ".") for k in keys if "." not in k)]
    return (*kept, *advice)


def run_all(jobs: list[tuple[str, ...]], cache: Path, workers: int) -> None:
    todo = [j for j in dict.fromkeys(jobs) if not (cache / case_key(j) / "overrides.json").exists()]
    if not todo:
        return
    print(f"training {len(todo)} runs with {workers} workers", file=sys.stderr, flush=True)
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(train_cached, j, cache): j for j in todo}
        for i, fut in enumerate(as_completed(futures), 1):
            fut.result()
            print(f"  {i}/{len(todo)} done ({time.time() - t0:.0f} s): {' '.join(futures[fut])}",
                  file=sys.stderr, flush=True)


def evaluate(cases: list[Case], cache: Path, workers: int, fix: bool = True, train: bool = True) -> list[dict]:
    """Train (cached), analyse, and for flagged broken cases train the first advice; one row per case.
    train=False uses only runs already in the cache (a fix run not trained yet is "not measured")."""
    setups = sorted({c.setup for c in cases})
    if train:
        run_all([*setups, *(c.overrides for c in cases)], cache, workers)
    healthy = {s: best_accuracy(analyse(cache / case_key(s))) for s in setups}
    rows, fixes = [], []
    for c in cases:
        report = analyse(cache / case_key(c.overrides))
        alarms = [(f["id"], f["severity"]) for f in report["findings"] if f["severity"] in ("warning", "critical")]
        acc, ref = best_accuracy(report), healthy[c.setup]
        primary = ((report.get("cause") or {}).get("primary") or {}).get("id")
        advice = first_advice(report)
        row = {"case": c.name, "knob": c.knob, "held_out": c.held_out, "accuracy": acc, "healthy_accuracy": ref,
               "alarms": alarms, "primary": primary, "advice": advice, "overrides": list(c.overrides)}
        if c.healthy:
            row["kind"] = "healthy"
        elif acc >= FIXED_SHARE * ref and not alarms_required(c):
            row["kind"] = "no effect"
        else:
            row["kind"] = "broken"
            row["flagged"] = bool(alarms)
            row["root_cause"] = bool(alarms) and primary is not None and touches(advice, c.knob)
            if advice:
                fixes.append((row, apply(c.overrides, advice)))
        rows.append(row)
    if fix:
        if train:
            run_all([f for _, f in fixes], cache, workers)
        for row, fixed in fixes:
            if (cache / case_key(fixed) / "overrides.json").exists():
                row["fixed_accuracy"] = best_accuracy(analyse(cache / case_key(fixed)))
    for row in rows:
        if row["kind"] == "broken":
            measured = "fixed_accuracy" in row or not row["advice"]
            row["fixed"] = (row.get("fixed_accuracy", 0.0) >= FIXED_SHARE * row["healthy_accuracy"]) if measured else None
    return rows


def alarms_required(case: Case) -> bool:
    """Faults that leave accuracy intact but make it untrustworthy (leakage, shared transforms, an unscaled
    clip, unnormalized input) are broken whatever the accuracy: the report must flag them."""
    return case.knob == "fault"


def table(rows: list[dict]) -> str:
    def column(sel: list[dict]) -> list[str]:
        broken = [r for r in sel if r["kind"] == "broken"]
        healthy = [r for r in sel if r["kind"] == "healthy"]
        n = len(broken)

        def pct(k):
            known = [r for r in broken if r[k] is not None]
            hits = sum(bool(r[k]) for r in known)
            text = f"{hits}/{len(known)} ({100 * hits / len(known):.0f}%)" if known else "-"
            return text + (f", {n - len(known)} not measured" if len(known) < n else "")

        return [str(len(sel)), str(n), pct("flagged"), pct("root_cause"), pct("fixed"),
                f"{sum(bool(r['alarms']) for r in healthy)}/{len(healthy)}",
                str(sum(r["kind"] == "no effect" for r in sel))]

    tuned = [r for r in rows if not r["held_out"]]
    held = [r for r in rows if r["held_out"]]
    labels = ["cases", "broken runs", "flagged", "root cause", "fixed", "false alarms (healthy runs)",
              "no effect (knob did not break training)"]
    out = ["| | tuned | held out | all |", "|---|---|---|---|"]
    for label, a, b, c in zip(labels, column(tuned), column(held), column(rows)):
        out.append(f"| {label} | {a} | {b} | {c} |")
    return "\n".join(out)


def details(rows: list[dict]) -> str:
    out = ["| case | set | knob | kind | best acc (healthy) | flagged | primary cause | first advice | fixed acc |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        alarms = ", ".join(f"{i}" for i, _ in r["alarms"]) or "-"
        fixed = f"{r['fixed_accuracy']:.3f}" if "fixed_accuracy" in r else ("not measured" if r.get("fixed", 1) is None
                                                                         else "-")
        out.append(f"| {r['case']} | {'held out' if r['held_out'] else 'tuned'} | {r['knob'] or '-'} | {r['kind']} | "
                   f"{r['accuracy']:.3f} ({r['healthy_accuracy']:.3f}) | {alarms} | {r['primary'] or '-'} | "
                   f"`{' '.join(r['advice']) or '-'}` | {fixed} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--cache", type=Path, default=ROOT / "outputs" / "fault_matrix")
    ap.add_argument("--only", nargs="*", default=None, help="cases whose name contains one of these")
    ap.add_argument("--list", action="store_true", help="print the generated cases and exit")
    ap.add_argument("--no-fix", action="store_true", help="skip training the recommended fixes")
    ap.add_argument("--cached-only", action="store_true", help="analyse only the cases already trained (no training)")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    args = ap.parse_args()
    cases = [c for c in generate_cases() if not args.only or any(o in c.name for o in args.only)]
    if args.cached_only:
        def trained(overrides):
            return (args.cache / case_key(overrides) / "overrides.json").exists()
        missing = [c.name for c in cases if not (trained(c.overrides) and trained(c.setup))]
        cases = [c for c in cases if trained(c.overrides) and trained(c.setup)]
        if missing:
            print(f"not trained yet, left out: {', '.join(missing)}", file=sys.stderr)
    if args.list:
        for c in cases:
            print(f"{'held out' if c.held_out else 'tuned   '}  {c.knob or 'healthy':32s} {c.name}: {' '.join(c.overrides)}")
        return
    from common import machine

    rows = evaluate(cases, args.cache, args.workers, fix=not args.no_fix, train=not args.cached_only)
    text = (f"Measured with `python benchmarks/fault_matrix.py` ({len(cases)} generated cases, digits, "
            f"{EPOCHS} epochs each) on {machine()}.\n\n{table(rows)}\n\n{details(rows)}\n")
    print(text)
    (args.cache / "rows.json").write_text(json.dumps(rows, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("# Fault matrix\n\n" + __doc__.split("\n\n", 2)[2].strip() + "\n\n" + text)


if __name__ == "__main__":
    main()
