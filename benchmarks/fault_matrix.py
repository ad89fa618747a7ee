"""The dose-response fault matrix: every knob a user turns, at several doses each way, each run diagnosed, and
the diagnosis' first fix appended to the run's own command line and rerun.

    python benchmarks/fault_matrix.py [--workers 2] [--limit N] [--only SUBSTR ...] [--list] [--estimate]
                                      [--cached-only] [--reveal] [--markdown docs/fault-matrix.md]
                                      [--json benchmarks/results/fault_matrix.json]

The cases (CASE_TABLE below, one line per knob) turn every numeric knob by x3, x10, x100, x1000 and the inverses
where the knob scales (the LR of every optimizer), set the others to moderate values (momentum, Adam's eps, weight
decay, label smoothing, clipping, batch size, epochs 1-3, model.width 1, 2, 4), switch the schedule and the
augmentation, and inject every `fault` option, on the small CNN with SGD, Adam and AdamW and on a narrow ResNet-18.
The data faults also come at several doses (DOSED_FAULTS: noisy labels at 10, 20 and 40%, class imbalance at 50
and 95%, duplicated files).

The healthy reference of each setup is trained with SEEDS; its final val accuracy's mean is the reference and
its run-to-run noise (NOISE below) the tolerance. A case's damage is the reference minus its final val accuracy.
It is broken when the damage exceeds the noise and MIN_DAMAGE (5 points), healthy when it is within the noise,
and "mild" in between (counted apart). Faults that leave the accuracy intact but make it untrustworthy (leakage,
unnormalized input, shared transforms, clipping before unscaling) or break the data itself (noisy labels,
validation images duplicated from training ones) must be flagged whatever their damage (SILENT_FAULTS).

For each broken case:
- flagged: a warning or critical finding;
- right knob: the primary cause's first recommendation (the first with overrides) touches the broken knob;
- fixed: the run's own command line with that recommendation (analysis.overrides.rerun: a group switch replaces
  the old option's keys) reaches the reference within its noise.
For each healthy case: false alarm = any warning or critical finding. Every recommendation of every report is
also composed with Hydra's compose API on the run's own command line: the matrix counts those that do not run.

A fixed third of the cases of every knob (by a hash of the name) is held out: the script prints their totals,
never their rows, unless --reveal (for after the tuning). Runs are trained in this process's worker pool through
the compose API (no subprocess per run), one torch thread each, and cached per override set in --cache, so a
rerun analyses in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

EPOCHS = 10  # the trainer's default: every healthy reference ends on its plateau (the script checks it)
SEEDS = (0, 1, 2, 3, 4)  # the healthy reference of each setup, replicated (5: a 3-seed 95% interval is t(2) = 4.3 sd wide)
MIN_DAMAGE = 0.05  # a case is broken when it ends at least 5 points below its reference (and beyond the noise)
BANDS = ((0.5, ">= 50 points"), (0.2, "20-50 points"), (MIN_DAMAGE, "5-20 points"))  # broken cases by damage
# Every run: digits at 16 px (the 8x8 images upscaled; the default 32 px costs 4x the compute for the same task).
BASE = ("data.image_size=16", f"trainer.epochs={EPOCHS}")
SETUPS = {  # name -> the overrides that make it; each has its own replicated healthy reference
    "sgd": ("optimizer=sgd",),
    "adam": ("optimizer=adam",),
    "adamw": ("optimizer=adamw",),
    "resnet": ("optimizer=sgd", "model=resnet18", "model.width=8"),  # a narrow ResNet-18
}
SCALE = (3, 10, 100, 1000)  # doses of a knob that scales, each way
# Seconds per epoch of one run on one thread (digits at 16 px, batch 128), measured on the 2-core VM with other
# work running: the run-time estimate. Smaller batches take more steps, and each step has a fixed cost.
EPOCH_S = {"small_cnn": 0.7, "resnet18": 1.5}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    setup: str  # a key of SETUPS
    change: tuple[str, ...]  # the overrides that break (or do not break) it, on top of the setup
    knob: str  # ground truth: the config key it turns ("optimizer.lr", "scheduler", "fault")
    fix_keys: tuple[str, ...] = ()  # keys whose change also counts as the right knob (epochs <-> batch size)
    silent: bool = False  # a fault that leaves accuracy intact: broken whatever its damage
    guarded: bool = False  # may not exist in this config yet: skipped (and said) when it does not compose
    held_out: bool = False

    @property
    def overrides(self) -> tuple[str, ...]:
        """The run's own command line."""
        return (*reference_overrides(self.setup), *self.change)


def reference_overrides(setup: str, seed: Optional[int] = None) -> tuple[str, ...]:
    """The command line of a setup's healthy reference (one seed of it)."""
    return (*BASE, *SETUPS[setup], *([f"trainer.seed={seed}"] if seed is not None else []))


# ───────────────────────────── the case table ─────────────────────────────

def _defaults() -> dict:
    """Schema defaults (trainer/config.py) of the knobs the table scales."""
    from trainer import config as c

    def fields(cls):
        return {f.name: f.default for f in dataclasses.fields(cls)}

    return {"sgd": fields(c.SGDConf), "adam": fields(c.AdamConf), "adamw": fields(c.AdamWConf),
            "resnet": fields(c.SGDConf), "regularization": fields(c.RegularizationConf), "data": fields(c.DataConf)}


def scaled(key: str, default_of: Callable[[str], float], factors: Iterable[float] = SCALE, both: bool = True):
    """Doses x f (and / f) of a knob from its default: [(label, overrides, setup -> value)]."""
    out = []
    for f in factors:
        out.append((f"x{f:g}", lambda s, f=f: [f"{key}={default_of(s) * f:g}"]))
        if both:
            out.append((f"/{f:g}", lambda s, f=f: [f"{key}={default_of(s) / f:g}"]))
    return out


def values(key: str, *vals, extra: tuple[str, ...] = ()):
    return [(f"{v:g}" if isinstance(v, float) else str(v), lambda s, v=v: [f"{key}={v}", *extra]) for v in vals]


def options(*choices: tuple[str, list[str]]):
    return [(label, lambda s, ovs=ovs: list(ovs)) for label, ovs in choices]


# The faults of conf/fault/ and what each needs to show (clipping before unscaling needs fp16 and a clip).
FAULT_NEEDS = {"clip_before_unscale": ["trainer.amp=fp16", "trainer.device=cpu", "regularization.grad_clip=1.0"],
               "shared_transforms": ["augmentation=basic"]}
# Faults to flag whatever their damage: what they break is trust in the numbers (leakage, a pipeline bug), or the
# data itself (wrong labels, validation images that are copies of training ones), not (only) the accuracy.
SILENT_FAULTS = ("clip_before_unscale", "shared_transforms", "train_val_overlap", "unnormalized_input",
                 "noisy_labels", "duplicated_images")
# The data faults given at several doses (each its own line); a case whose command the config does not know is
# skipped, and the script says so.
DOSED_FAULTS = (
    ("noisy_labels 10%", ["fault=noisy_labels", "fault.fraction=0.1"]),
    ("noisy_labels 20%", ["fault=noisy_labels", "fault.fraction=0.2"]),
    ("noisy_labels 40%", ["fault=noisy_labels", "fault.fraction=0.4"]),
    ("class_imbalance 50%", ["fault=class_imbalance", "fault.fraction=0.5"]),
    ("class_imbalance 95%", ["fault=class_imbalance", "fault.fraction=0.95"]),
    ("duplicated files", ["fault=duplicated_images"]),
)


def case_table() -> list[tuple[str, tuple[str, ...], list, dict]]:
    """(knob, setups, doses, options) per line: add a line to add a knob; a dose is (label, setup -> overrides)."""
    d = _defaults()
    lr = lambda s: d[s]["lr"]  # noqa: E731
    wd = lambda s: d["regularization"]["weight_decay"]  # noqa: E731
    faults = sorted(p.stem for p in (ROOT / "conf" / "fault").glob("*.yaml")
                    if p.stem != "none" and p.stem not in {ovs[0].split("=")[1] for _, ovs in DOSED_FAULTS})
    return [
        ("optimizer.lr", ("sgd", "adam", "adamw"), scaled("optimizer.lr", lr), {}),
        ("optimizer.lr", ("resnet",), scaled("optimizer.lr", lr, (10, 100)), {}),
        ("optimizer.momentum", ("sgd",), values("optimizer.momentum", 0.5, 0.99, 0.999) +
         values("optimizer.momentum", 0.0, extra=("optimizer.nesterov=false",)), {}),
        ("optimizer.eps", ("adam",), values("optimizer.eps", 1e-4, 1e-2, 1.0), {}),
        ("regularization.weight_decay", ("sgd", "adam", "adamw"), scaled("regularization.weight_decay", wd, (3, 10, 100),
                                                                         both=False)
         + values("regularization.weight_decay", 0.0), {}),
        ("regularization.weight_decay", ("resnet",), scaled("regularization.weight_decay", wd, (10, 100), both=False), {}),
        ("regularization.label_smoothing", ("sgd", "adam"), values("regularization.label_smoothing", 0.1, 0.3, 0.5, 0.7),
         {}),
        ("regularization.grad_clip", ("sgd", "adam"), values("regularization.grad_clip", 0.01, 0.1, 1.0), {}),
        ("data.batch_size", ("sgd",), values("data.batch_size", 32, 512, 1438),
         {"fix_keys": ("trainer.epochs",)}),
        ("trainer.epochs", ("sgd", "adam"), values("trainer.epochs", 1, 2, 3), {"fix_keys": ("data.batch_size",)}),
        ("model.width", ("sgd",), values("model.width", 1, 2, 4), {"fix_keys": ("model",)}),
        ("model.width", ("resnet",), values("model.width", 1, 2), {"fix_keys": ("model",)}),
        ("scheduler", ("sgd",), options(
            ("step every epoch", ["scheduler=step", "scheduler.step_size=1"]),
            ("step every epoch gamma 0.01", ["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.01"]),
            ("step every 3 epochs", ["scheduler=step", "scheduler.step_size=3"]),
            ("plateau", ["scheduler=plateau"]),
            ("plateau patience 0 threshold 0.5", ["scheduler=plateau", "scheduler.patience=0", "scheduler.threshold=0.5"]),
            ("onecycle", ["scheduler=onecycle"]),
            ("onecycle div_factor 1e4", ["scheduler=onecycle", "scheduler.div_factor=10000"]),
            ("constant", ["scheduler=constant"]),
            ("cosine warmup 5 epochs", ["scheduler.warmup_epochs=5"])), {}),
        ("augmentation", ("sgd",), options(
            ("basic", ["augmentation=basic"]), ("randaugment", ["augmentation=randaugment"]),
            ("randaugment magnitude 20", ["augmentation=randaugment", "augmentation.magnitude=20"]),
            ("trivialaugment", ["augmentation=trivialaugment"])), {}),
        ("fault", ("sgd",), options(*((f, [f"fault={f}", *FAULT_NEEDS.get(f, [])]) for f in faults)), {}),
        ("fault", ("sgd",), options(*DOSED_FAULTS), {"guarded": True}),
    ]


def generate_cases() -> list[Case]:
    cases = []
    for knob, setups, doses, opts in case_table():
        for setup in setups:
            for label, make in doses:
                change = tuple(make(setup))
                silent = knob == "fault" and any(f"fault={f}" in change for f in SILENT_FAULTS)
                cases.append(Case(f"{setup} {knob} {label}", setup, change, knob, silent=silent, **opts))
    return hold_out_a_third(cases)


def hold_out_a_third(cases: list[Case]) -> list[Case]:
    """A fixed third of every knob's cases, chosen by a hash of their names (adding a case moves few others)."""
    held = set()
    for knob in dict.fromkeys(c.knob for c in cases):
        group = sorted((c for c in cases if c.knob == knob), key=lambda c: hashlib.sha1(c.name.encode()).hexdigest())
        held |= {c.name for c in group[:round(len(group) / 3)]}
    return [dataclasses.replace(c, held_out=c.name in held) for c in cases]


def composes(overrides: Iterable[str]) -> Optional[str]:
    """None when the command line composes with Hydra's compose API and validates, else the one-line reason."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from common import compose
    from trainer.config import validate
    from trainer.errors import UserError
    from trainer.hydra_errors import one_line

    try:
        validate(compose(list(overrides), Path("/tmp/unused")))
    except UserError as e:
        return str(e)
    except (HydraException, OmegaConfBaseException) as e:
        return one_line(e)
    return None


def known_cases(cases: list[Case]) -> tuple[list[Case], list[tuple[Case, str]]]:
    """The cases this config can run, and the guarded ones it cannot yet (with why). An unguarded case that does
    not compose is a mistake in the table: it stops the script."""
    ok, skipped = [], []
    for c in cases:
        why = composes(c.overrides)
        if why is None:
            ok.append(c)
        elif c.guarded:
            skipped.append((c, why))
        else:
            raise SystemExit(f"error: case {c.name!r} does not compose: {why}")
    return ok, skipped


# ───────────────────────────── training ─────────────────────────────

def case_key(overrides: Iterable[str]) -> str:
    return hashlib.sha1(json.dumps(sorted(overrides)).encode()).hexdigest()[:16]


def train_cached(overrides: tuple[str, ...], cache: Path) -> Path:
    """Train once per distinct override set (in this process); later calls reuse the run directory. The run's
    command line goes into .hydra/overrides.yaml, as Hydra writes it, so the analysis sees it."""
    run_dir = cache / case_key(overrides)
    done = run_dir / "overrides.json"
    if done.exists():
        return run_dir
    import logging
    import shutil

    import torch
    import yaml

    from common import compose, trainer_log_level
    from rundir.format import HYDRA_DIR, HYDRA_OVERRIDES
    from trainer.config import validate
    from trainer.errors import StopRun, UserError
    from trainer.loop import train

    torch.set_num_threads(1)
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / HYDRA_DIR).mkdir(parents=True)
    (run_dir / HYDRA_DIR / HYDRA_OVERRIDES).write_text(yaml.safe_dump(list(overrides)))
    with trainer_log_level(logging.ERROR):
        try:
            train(validate(compose(list(overrides), run_dir / "diagnostics")), run_dir)
        except (UserError, StopRun):
            pass  # a run that fails or is stopped still leaves its files to analyse
    done.write_text(json.dumps(list(overrides)))
    return run_dir


def trained(overrides: Iterable[str], cache: Path) -> bool:
    return (cache / case_key(overrides) / "overrides.json").exists()


def run_time_s(overrides: Iterable[str]) -> float:
    """Estimated seconds of one run (EPOCH_S, scaled by epochs and by the step count of small batches)."""
    ovs = dict(o.split("=", 1) for o in overrides if "=" in o)
    epochs = int(ovs.get("trainer.epochs", EPOCHS))
    batch = int(ovs.get("data.batch_size", 128))
    steps_factor = max(1.0, (128 / batch) ** 0.5)
    return EPOCH_S["resnet18" if ovs.get("model") == "resnet18" else "small_cnn"] * epochs * steps_factor


def run_all(jobs: list[tuple[str, ...]], cache: Path, workers: int) -> None:
    todo = [j for j in dict.fromkeys(jobs) if not trained(j, cache)]
    if not todo:
        return
    est = sum(run_time_s(j) for j in todo) / max(1, workers)
    print(f"training {len(todo)} runs with {workers} workers (estimate {est / 60:.0f} min)", file=sys.stderr, flush=True)
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(train_cached, j, cache): j for j in todo}
        for i, fut in enumerate(as_completed(futures), 1):
            fut.result()
            print(f"  {i}/{len(todo)} ({time.time() - t0:.0f} s): {' '.join(futures[fut][len(BASE):])}",
                  file=sys.stderr, flush=True)


# ───────────────────────────── analysis ─────────────────────────────

def analyse(run_dir: Path) -> tuple[dict, object]:
    from analysis import run_report
    from rundir.read import load_run

    run = load_run(run_dir)
    return run_report.build(run), run


def final_accuracy(report: dict) -> float:
    """Where the run ends, as a user keeps it: its final val accuracy (0 for a run that recorded none)."""
    acc = report["summary"].get("final_val_accuracy")
    return float(acc) if acc is not None else 0.0


def first_advice(report: dict) -> list[str]:
    """The overrides of the primary cause's first recommendation that has any (else the first warning's)."""
    recs = ((report.get("cause") or {}).get("primary") or {}).get("recommendations") or []
    if not recs:
        recs = next((f["recommendations"] for f in report["findings"]
                     if f["severity"] in ("warning", "critical") and f["recommendations"]), [])
    return next((list(r["overrides"]) for r in recs if r.get("overrides")), [])


def touches(advice: list[str], case: Case) -> bool:
    """Does the advice change the broken knob (or a key declared equivalent)? A group knob counts any key of it."""
    from analysis.sweep import split_override

    keys = [split_override(a)[0] for a in advice]
    if case.knob == "fault":
        return "fault=none" in advice
    return any(k == want or k.startswith(want + ".") for k in keys for want in (case.knob, *case.fix_keys))


@dataclasses.dataclass
class Reference:
    accuracies: list[float]
    noise: float  # half-width of a 95% prediction interval for one more run (at least the binomial noise)
    converged: bool  # every seed ends on its plateau: its last 3 epochs within the noise of its best

    @property
    def mean(self) -> float:
        return statistics.mean(self.accuracies)


def reference(finals: list[float], curves: list[list[float]], val_size: int) -> Reference:
    """The healthy reference of a setup from its seeds. Noise: a new run of the same setup lands within
    t(0.975, n-1) * sd * sqrt(1 + 1/n) of the seeds' mean 95% of the time; the binomial noise of one val
    accuracy (1.96 sqrt(p(1-p)/n_val) sqrt(1 + 1/n)) is its floor, so three lucky seeds cannot make it 0."""
    from scipy import stats

    accs = list(finals)
    n, m = len(accs), statistics.mean(accs)
    spread = stats.t.ppf(0.975, n - 1) * statistics.stdev(accs) * math.sqrt(1 + 1 / n) if n > 1 else 0.0
    floor = 1.96 * math.sqrt(max(m * (1 - m), 1e-4) / max(val_size, 1)) * math.sqrt(1 + 1 / n)
    noise = max(spread, floor)
    converged = bool(all(len(v) >= 3 and max(v[-3:]) - min(v[-3:]) <= noise and v[-1] >= max(v) - noise for v in curves))
    return Reference(accs, noise, converged)


def classify(damage: float, noise: float, silent: bool = False) -> str:
    """broken: below the reference by more than the noise and by at least MIN_DAMAGE; healthy: within the noise
    (or above the reference); mild: in between. A silent fault is broken whatever its damage."""
    if silent:
        return "silent fault"
    if damage > noise and damage >= MIN_DAMAGE:
        return "broken"
    return "healthy" if damage <= noise else "mild"


def band(damage: float) -> str:
    return next(label for low, label in BANDS if damage >= low)


def alarms(report: dict) -> list[str]:
    return [f["id"] for f in report["findings"] if f["severity"] in ("warning", "critical")]


def uncomposable(report: dict, run) -> list[str]:
    """Recommendations of this report whose rerun on the run's own command line does not compose."""
    from analysis.overrides import report_recommendations, rerun

    bad = []
    for fix in dict.fromkeys(tuple(r["overrides"]) for r in report_recommendations(report) if r.get("overrides")):
        why = composes(rerun(run, fix))
        if why is not None:
            bad.append(f"{' '.join(fix)}: {why}")
    return bad


def evaluate(cases: list[Case], cache: Path, workers: int, fix: bool = True, train: bool = True) -> tuple[dict, list[dict]]:
    """Train (cached), analyse, and rerun each broken case with its first advice; (references, one row per case).
    train=False uses only runs already in the cache (a fix not trained yet is "not measured")."""
    from analysis.overrides import rerun
    from rundir.read import load_run

    setups = sorted({c.setup for c in cases})
    seeds = {s: [reference_overrides(s, seed) for seed in SEEDS] for s in setups}
    if train:
        run_all([j for s in setups for j in seeds[s]] + [c.overrides for c in cases], cache, workers)
    refs = {}
    for s in setups:
        runs = [load_run(cache / case_key(j)) for j in seeds[s]]
        curves = [[float(a) for a in run.val["accuracy"]] for run in runs]
        refs[s] = reference([v[-1] if v else 0.0 for v in curves], curves, (runs[0].info or {}).get("val_size") or 0)
    rows, fixes = [], []
    for c in cases:
        report, run = analyse(cache / case_key(c.overrides))
        ref = refs[c.setup]
        acc = final_accuracy(report)
        damage = ref.mean - acc
        advice = first_advice(report)
        row = {"case": c.name, "setup": c.setup, "knob": c.knob, "held_out": c.held_out, "overrides": list(c.change),
               "accuracy": acc, "reference": ref.mean, "noise": ref.noise, "damage": damage,
               "kind": classify(damage, ref.noise, c.silent), "alarms": alarms(report),
               "primary": ((report.get("cause") or {}).get("primary") or {}).get("id"), "advice": advice,
               "uncomposable": uncomposable(report, run)}
        if row["kind"] in ("broken", "silent fault"):
            row["band"] = band(damage) if row["kind"] == "broken" else "silent fault"
            row["flagged"] = bool(row["alarms"])
            row["right_knob"] = bool(row["alarms"]) and touches(advice, c)
            if advice:
                row["rerun"] = rerun(run, advice)
                fixes.append(row)
            else:
                row["fixed"] = False
        rows.append(row)
    if fix:
        if train:
            run_all([tuple(r["rerun"]) for r in fixes], cache, workers)
        for r in fixes:
            if trained(r["rerun"], cache):
                fixed_report, _ = analyse(cache / case_key(r["rerun"]))
                r["fixed_accuracy"] = final_accuracy(fixed_report)
                r["fixed"] = bool(r["fixed_accuracy"] >= r["reference"] - r["noise"])
    for r in rows:
        if r["kind"] in ("broken", "silent fault"):
            r.setdefault("fixed", None)  # None: the fix was not trained (--no-fix, --cached-only)
    return refs, rows


# ───────────────────────────── tables ─────────────────────────────

def _ratio(rows: list[dict], key: str) -> str:
    known = [r for r in rows if r.get(key) is not None]
    if not known:
        return "-"
    hits = sum(bool(r[key]) for r in known)
    text = f"{hits}/{len(known)}"
    return text + (f" ({len(rows) - len(known)} not measured)" if len(known) < len(rows) else "")


def totals(rows: list[dict]) -> list[tuple[str, str]]:
    """The measures of one column: per damage band flagged / right knob / fixed, then false alarms."""
    out = [("cases", str(len(rows)))]
    for label in [b for _, b in BANDS] + ["silent fault"]:
        sel = [r for r in rows if r.get("band") == label]
        out.append((f"{label}: cases", str(len(sel))))
        for key, name in (("flagged", "flagged"), ("right_knob", "right knob"), ("fixed", "fixed")):
            out.append((f"{label}: {name}", _ratio(sel, key)))
    healthy = [r for r in rows if r["kind"] == "healthy"]
    out.append(("within noise: false alarms", f"{sum(bool(r['alarms']) for r in healthy)}/{len(healthy)}"))
    out.append(("mild (beyond noise, < 5 points): cases", str(sum(r["kind"] == "mild" for r in rows))))
    out.append(("recommendations that do not run on the run's command line",
                str(sum(len(r["uncomposable"]) for r in rows))))
    return out


def totals_table(rows: list[dict]) -> str:
    cols = [("tuned", [r for r in rows if not r["held_out"]]), ("held out", [r for r in rows if r["held_out"]]),
            ("all", rows)]
    computed = [totals(sel) for _, sel in cols]
    out = ["| measure | " + " | ".join(name for name, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for i, (label, _) in enumerate(computed[0]):
        out.append(f"| {label} | " + " | ".join(c[i][1] for c in computed) + " |")
    return "\n".join(out)


def references_table(refs: dict) -> str:
    out = ["| setup | overrides | final val accuracy per seed | mean | noise (95% PI) | converged |", "|---|---|---|---|---|---|"]
    for s, ref in refs.items():
        out.append(f"| {s} | `{' '.join(reference_overrides(s))}` | {', '.join(f'{a:.3f}' for a in ref.accuracies)} | "
                   f"{ref.mean:.3f} | {ref.noise:.3f} | {'yes' if ref.converged else 'NO'} |")
    return "\n".join(out)


def rows_table(rows: list[dict]) -> str:
    out = ["| case | final acc (reference) | damage (points) | kind | warnings | primary cause | first advice | fixed acc |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fixed = f"{r['fixed_accuracy']:.3f}" if "fixed_accuracy" in r else "-"
        out.append(f"| {r['case']} | {r['accuracy']:.3f} ({r['reference']:.3f}) | {100 * r['damage']:+.1f} | "
                   f"{r.get('band', r['kind'])} | {', '.join(r['alarms']) or '-'} | {r['primary'] or '-'} | "
                   f"`{' '.join(r['advice']) or '-'}` | {fixed} |")
    return "\n".join(out)


def report_text(refs: dict, rows: list[dict], skipped: list[tuple[Case, str]], reveal: bool, machine: str,
                wall_s: Optional[float]) -> str:
    shown = rows if reveal else [r for r in rows if not r["held_out"]]
    held = sum(r["held_out"] for r in rows)
    parts = [f"Measured with `python benchmarks/fault_matrix.py` ({len(rows)} cases, digits at 16 px, {EPOCHS} epochs, "
             f"{len(SEEDS)} seeds per reference) on {machine}" + (f"; {wall_s / 60:.0f} min wall" if wall_s else "") + ".",
             "Healthy references:", references_table(refs), "Detection by damage band:", totals_table(rows)]
    if skipped:
        parts.append("Skipped (this config does not know them yet): " +
                     "; ".join(f"{c.name} (`{' '.join(c.change)}`)" for c, _ in skipped))
    parts.append(f"Cases ({'all' if reveal else f'tuned only; the {held} held-out rows stay blind'}):")
    parts.append(rows_table(shown))
    return "\n\n".join(parts) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="training processes (default 2)")
    ap.add_argument("--cache", type=Path, default=ROOT / "outputs" / "fault_matrix")
    ap.add_argument("--only", nargs="*", default=None, help="cases whose name contains one of these")
    ap.add_argument("--limit", type=int, default=None, help="the first N cases only (a quick end-to-end check)")
    ap.add_argument("--list", action="store_true", help="print the cases (held-out names hidden) and exit")
    ap.add_argument("--estimate", action="store_true", help="print the estimated run time and exit")
    ap.add_argument("--no-fix", action="store_true", help="skip training the recommended fixes")
    ap.add_argument("--cached-only", action="store_true", help="analyse the cases already trained (no training)")
    ap.add_argument("--reveal", action="store_true", help="print the held-out rows too (after the tuning)")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here (held-out rows only with --reveal)")
    args = ap.parse_args()
    cases, skipped = known_cases(generate_cases())
    for c, why in skipped:
        print(f"skipped {c.name}: this config does not know it yet ({why})", file=sys.stderr)
    cases = [c for c in cases if not args.only or any(o in c.name for o in args.only)][:args.limit]
    if args.cached_only:
        missing = [c for c in cases if not trained(c.overrides, args.cache)]
        cases = [c for c in cases if c not in missing]
        if missing:
            print(f"not trained yet, left out: {len(missing)} cases", file=sys.stderr)
    if args.list:
        for c in cases:
            print("held out (blind)" if c.held_out and not args.reveal else f"{c.name}: {' '.join(c.change)}")
        return
    setups = sorted({c.setup for c in cases})
    jobs = [reference_overrides(s, seed) for s in setups for seed in SEEDS] + [c.overrides for c in cases]
    todo = [j for j in dict.fromkeys(jobs) if not trained(j, args.cache)]
    est = sum(run_time_s(j) for j in todo) * (1 + 0.6 * (not args.no_fix))  # about 60% of cases broken, each rerun
    print(f"{len(cases)} cases, {len(todo)} runs to train, then the fixes: about {est / args.workers / 60:.0f} min "
          f"with {args.workers} workers on free cores (EPOCH_S; a loaded machine takes longer)", file=sys.stderr)
    if args.estimate:
        return
    from common import machine, set_threads

    set_threads(1)  # as in every worker (train_cached): the machine line names the threads each run had
    t0 = time.time()
    refs, rows = evaluate(cases, args.cache, args.workers, fix=not args.no_fix, train=not args.cached_only)
    text = report_text(refs, rows, skipped, args.reveal, machine(), time.time() - t0 if todo else None)
    print(text)
    for r in refs.values():
        if not r.converged:
            print("warning: a healthy reference did not converge in EPOCHS (its last epochs still move)", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        shown = rows if args.reveal else [r for r in rows if not r["held_out"]]
        args.json.write_text(json.dumps({
            "machine": machine(), "epochs": EPOCHS, "seeds": list(SEEDS), "base": list(BASE),
            "references": {s: dataclasses.asdict(r) | {"mean": r.mean} for s, r in refs.items()},
            "totals": {name: dict(totals(sel)) for name, sel in (
                ("tuned", [r for r in rows if not r["held_out"]]), ("held out", [r for r in rows if r["held_out"]]),
                ("all", rows))},
            "skipped": [c.name for c, _ in skipped], "rows": shown}, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("# Fault matrix\n\n" + __doc__.split("\n\n", 2)[2].strip() + "\n\n" + text)


if __name__ == "__main__":
    main()
