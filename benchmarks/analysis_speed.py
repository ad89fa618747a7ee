"""Wall time of `python -m analysis` on synthetic runs and sweeps, as a user runs it (a fresh process).

    python benchmarks/analysis_speed.py [--repeats 3] [--sweep-sizes 250 500 1000 10000] [--epochs 100]

1. One run of 200 epochs (target: <= 0.25 s on 2 cores).
2. Sweeps of N runs x 100 epochs each, report files written (targets on 2 cores: <= 2 s for 1,000 runs and
   <= 10 s for 10,000, growing linearly with N: the per-run time is printed for each N side by side). Each
   sweep is analysed twice into a fresh report directory: the first analysis analyses every job, the second
   finds them in the report directory's job cache (analysis/job_cache.py) and analyses none. The
   10,000-run sweep takes about 2 GB of temporary files.
3. The sweep report's statistics alone (sweep_report.build on jobs already analysed: observations, tests,
   per-axis explanations, recommendation checks, variance shares, curves per value), for 1,000 and
   10,000 runs side by side: they must stay linear in the runs.
Records have the fields and size of a ResNet-18 run (21 layer gradient norms, 17 ReLU layers).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, machine, spread

LAYERS = ["stem.conv"] + [f"stages.{i}.conv{j}" for i in range(8) for j in (1, 2)] + \
    [f"stages.{i}.shortcut.0" for i in (2, 4, 6)] + ["fc"]
RELUS = ["stem.relu"] + [f"stages.{i}.relu{j}" for i in range(8) for j in (1, 2)]


def write_run(d: Path, epochs: int, seed: int, overrides: list[str]) -> None:
    rng = np.random.default_rng(seed)
    (d / "diagnostics").mkdir(parents=True)
    (d / ".hydra").mkdir()
    t = np.arange(1, epochs + 1)
    loss = 0.3 + 4.3 * np.exp(-t / (epochs / 4)) + rng.normal(0, 0.02, epochs)
    acc = np.clip(0.75 - 0.7 * np.exp(-t / (epochs / 5)) + rng.normal(0, 0.01, epochs), 0, 1)
    lr = np.where(t < epochs // 2, 0.1, 0.01)
    with open(d / "diagnostics" / "train_diagnostics.jsonl", "w") as f:
        for i in range(epochs):
            layers = {n: float(rng.uniform(0.05, 1.0)) for n in LAYERS}
            f.write(json.dumps({
                "epoch": i + 1, "loss": loss[i], "accuracy": acc[i] + 0.05, "num_batches": 97, "num_samples": 49664,
                "nonfinite_steps": 0, "mean_grad_norm": 1.2, "min_grad_norm": 0.4, "max_grad_norm": 3.1,
                "grad_norm_std": 0.3, "nonfinite_grad_steps": 0, "clipped_fraction": 0.1, "weight_update": 0.05,
                "weight_update_ratio": 1e-3, "loss_step_std": 0.1, "grad_norm_first_layer": layers["stem.conv"],
                "grad_norm_last_layer": layers["fc"], "layer_grad_norms": layers, "dead_relu_fraction": 0.01,
                "relu_zero_fraction": 0.5, "dead_relu_layers": {n: 0.0 for n in RELUS},
                "learning_rate": lr[i], "learning_rate_end": lr[i], "epoch_time_s": 9.5, "samples_per_s": 5200.0,
            }) + "\n")
    with open(d / "diagnostics" / "val_diagnostics.jsonl", "w") as f:
        for i in range(epochs):
            f.write(json.dumps({"epoch": i + 1, "loss": loss[i] + 0.2, "nll": loss[i] + 0.1, "accuracy": acc[i],
                                "num_samples": 10000, "top5_accuracy": min(1.0, acc[i] + 0.2),
                                "val_time_s": 1.1}) + "\n")
    config = {"data": {"name": "cifar100", "num_classes": 100, "batch_size": 512}, "trainer": {"epochs": epochs},
              "optimizer": {"name": "sgd", "lr": 0.1}, "scheduler": {"name": "plateau", "patience": 3},
              "regularization": {"label_smoothing": 0.1, "weight_decay": 5e-4, "grad_clip": 1.0},
              "augmentation": {"name": "randaugment", "magnitude": 11}}
    info = {"dataset": "cifar100", "num_classes": 100, "train_size": 50000, "val_size": 10000,
            "class_counts": [500] * 100, "label_range": [0, 99], "train_val_overlap": 0, "transforms_shared": False,
            "val_transform_deterministic": True, "input_mean": [0.0, 0.0, 0.0], "input_std": [1.0, 1.0, 1.0],
            "config": config}
    (d / "diagnostics" / "run_info.json").write_text(json.dumps(info))
    (d / "diagnostics" / "status.json").write_text(json.dumps({"status": "completed", "epoch": epochs,
                                                               "epochs": epochs}))
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))


def write_sweep(d: Path, runs: int, epochs: int) -> None:
    patience = [3, 5, 10, 20]
    smoothing = [0.0, 0.05, 0.1, 0.2]
    seeds = math.ceil(runs / 16)
    task = [f"scheduler.patience={','.join(map(str, patience))}",
            f"regularization.label_smoothing={','.join(map(str, smoothing))}",
            f"trainer.seed={','.join(map(str, range(seeds)))}"]
    d.mkdir(parents=True)
    (d / "multirun.yaml").write_text("hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins.basic_sweeper."
                                     "BasicSweeper\n  overrides:\n    task:\n" + "".join(f"    - {t}\n" for t in task))
    n = 0
    for p in patience:
        for s in smoothing:
            for seed in range(seeds):
                if n >= runs:
                    return
                write_run(d / str(n), epochs, n, [f"scheduler.patience={p}", f"regularization.label_smoothing={s}",
                                                   f"trainer.seed={seed}"])
                n += 1


def analysed_sweep(runs: int, epochs: int):
    """A Sweep whose jobs are already analysed (synthetic rows as analyze_job makes them, no files): what
    sweep_report.build adds on top of reading the jobs."""
    from analysis.findings import Finding, Recommendation
    from analysis.sweep import Job, Sweep

    rng = np.random.default_rng(0)
    patience, smoothing = [3, 5, 10, 20], [0.0, 0.05, 0.1, 0.2]
    seeds = math.ceil(runs / 16)
    jobs = []
    epoch_list = list(range(1, epochs + 1))
    for n in range(runs):
        p, s, seed = patience[n // (4 * seeds) % 4], smoothing[n // seeds % 4], n % seeds
        acc = np.clip(0.75 - 0.7 * np.exp(-np.arange(1, epochs + 1) / 20) + rng.normal(0, 0.01, epochs), 0, 1)
        best = float(acc.max())
        cut = [epochs // 2] if p < 10 else []
        findings = [Finding("lr_reduced_early", "warning", "m", recommendations=[
            Recommendation("raise patience", [f"scheduler.patience={p * 2}"])])] if p == 3 else []
        jobs.append(Job(n, Path(str(n)), {"scheduler.patience": p, "regularization.label_smoothing": s,
                                          "trainer.seed": seed}, "completed", None,
                        {"best_val_accuracy": best, "final_val_accuracy": float(acc[-1]),
                         "best_epoch": int(acc.argmax()) + 1, "epochs": epochs, "final_train_loss": 0.5,
                         "lr_cuts": len(cut)}, findings,
                        {"val_epochs": epoch_list, "val_accuracy": acc.tolist(), "train_epochs": epoch_list,
                         "learning_rate": [0.1] * epochs},
                        [], None, {"lr_cut_epochs": cut, "lr_constant": not cut, "val_size": 10000,
                                   "val_drawdown": float(np.max(np.maximum.accumulate(acc) - acc)),
                                   "fields": {"mean_grad_norm": float(rng.uniform(1, 2)),
                                              "weight_update_ratio": 1e-3, "train_val_gap": 0.05},
                                   "fingerprint": f"{n:024x}", "primary_cause": None,
                                   "choices": {"scheduler": "plateau"}}))
    axes = {"scheduler.patience": patience, "regularization.label_smoothing": smoothing,
            "trainer.seed": list(range(seeds))}
    return Sweep(Path("bench"), None, axes, {}, [], runs, jobs=jobs, runs_given=True)


def statistics_cost(sizes: list[int], epochs: int, repeats: int) -> None:
    from analysis import sweep_report

    per_run = {}
    for n in sizes:
        sweep = analysed_sweep(n, epochs)
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sweep_report.build(sweep)
            t.append(time.perf_counter() - t0)
        per_run[n] = min(t) / n
        print(f"sweep report statistics, {n} runs x {epochs} epochs (jobs already analysed): {spread(t)} s, "
              f"per run {1000 * per_run[n]:.3f} ms", flush=True)
    if len(per_run) > 1:
        base = per_run[min(per_run)]
        print("statistics per-run time relative to the smallest (1.0 = linear): "
              + ", ".join(f"{n}: {per_run[n] / base:.2f}" for n in sorted(per_run)))


def timed(args: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "analysis", *args], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sweep-sizes", type=int, nargs="*", default=[250, 500, 1000, 10000])
    ap.add_argument("--statistics-sizes", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--epochs", type=int, default=100)
    args = ap.parse_args()
    statistics_cost(args.statistics_sizes, args.epochs, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_run(tmp / "run200", 200, 0, [])
        t = timed([str(tmp / "run200"), "--format", "json"], args.repeats)
        print(f"one run, 200 epochs: {spread(t)} s   (target <= 0.25)", flush=True)
        per_run = {}
        for n in args.sweep_sizes:
            write_sweep(tmp / f"sweep{n}", n, args.epochs)
            cold, cached = [], []
            for i in range(args.repeats):  # a fresh report directory: every job analysed; then its cache read
                out = tmp / f"out{n}-{i}"
                cold += timed([str(tmp / f"sweep{n}"), "--out", str(out)], 1)
                cached += timed([str(tmp / f"sweep{n}"), "--out", str(out)], 1)
                shutil.rmtree(out)
            per_run[n] = [x / n for x in cold]
            print(f"sweep of {n} runs x {args.epochs} epochs: first analysis {spread(cold)} s "
                  f"(per run {1000 * min(cold) / n:.2f} ms); again, jobs unchanged (job cache) {spread(cached)} s",
                  flush=True)
            shutil.rmtree(tmp / f"sweep{n}")
        sizes = sorted(per_run)
        if len(sizes) > 1:
            base = min(per_run[sizes[0]])
            print("per-run time relative to the smallest sweep (1.0 = linear): "
                  + ", ".join(f"{n}: {min(per_run[n]) / base:.2f}" for n in sizes))
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
