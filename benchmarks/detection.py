"""Fault injection: does the analysis catch each planted bug with its expected finding? (The wider, generated
measure is benchmarks/fault_matrix.py, docs/fault-matrix.md.)

    python benchmarks/detection.py [--seeds 3] [--only NAME ...]

Each case trains for real on digits (a few epochs, in this process) with a fault config or an
extreme setting, analyses the run, and checks that the expected finding id fired. The healthy
default must fire no warning or critical finding.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import machine

# name -> (overrides, expected finding id or None for "no warning or critical", fast enough for the default suite)
CASES: dict[str, tuple[list[str], str | None, bool]] = {
    "healthy default": ([], None, False),  # 10 epochs: the slow suite (the fault matrix also has healthy runs)
    "fault=shared_transforms": (["fault=shared_transforms", "augmentation=basic", "trainer.epochs=2"],
                                "transforms_not_separated", False),
    "fault=clip_before_unscale": (["fault=clip_before_unscale", "trainer.amp=fp16", "trainer.device=cpu",
                                   "regularization.grad_clip=1.0", "trainer.epochs=1"], "amp_scaled_gradients", False),
    "fault=shuffled_labels": (["fault=shuffled_labels", "trainer.epochs=3"], "accuracy_at_chance", False),
    "fault=unnormalized_input": (["fault=unnormalized_input", "trainer.epochs=1"], "input_not_normalized", True),
    "fault=train_val_overlap": (["fault=train_val_overlap", "trainer.epochs=1"], "train_val_overlap", True),
    "fault=dead_relu": (["fault=dead_relu", "trainer.epochs=2"], "dead_relu", True),
    "fault=noisy_labels (40 %)": (["fault=noisy_labels", "fault.fraction=0.4", "trainer.epochs=10"],
                                  "label_noise_suspected", False),
    "LR far too high (optimizer.lr=1e5)": (["optimizer.lr=1e5", "scheduler=constant", "trainer.epochs=2"],
                                           "nonfinite_loss", True),
    "hair-trigger plateau (patience 0, threshold 0.5)": (["scheduler=plateau", "scheduler.patience=0",
                                                          "scheduler.threshold=0.5", "trainer.epochs=12"],
                                                         "lr_reduced_early", False),
    "clip far below the norm (grad_clip=0.01)": (["regularization.grad_clip=0.01", "trainer.epochs=2"],
                                                 "clipping_saturated", True),
    "labels beyond num_classes (data.num_classes=5)": (["data.num_classes=5", "trainer.epochs=1"],
                                                      "label_out_of_range", True),
    "heavy regularization (smoothing 0.4, wd 0.05, RandAugment 20)": (
        ["regularization.label_smoothing=0.4", "regularization.weight_decay=0.05", "augmentation=randaugment",
         "augmentation.magnitude=20", "trainer.epochs=8"], "over_regularization", False),
    "LR far too low (optimizer.lr=1e-5)": (["optimizer.lr=1e-5", "trainer.epochs=10"], "loss_plateau_early", False),
}


def run_case(overrides: list[str], seed: int) -> list[dict]:
    """Train in this process and analyse the run; returns the findings as dicts."""
    import logging

    from common import compose, trainer_log_level

    from analysis import run_report
    from rundir.read import load_run
    from trainer.config import validate
    from trainer.errors import StopRun, UserError
    from trainer.loop import train

    with tempfile.TemporaryDirectory() as tmp, trainer_log_level(logging.ERROR):
        diag = Path(tmp) / "diagnostics"
        try:
            train(validate(compose([*overrides, f"trainer.seed={seed}"], diag)), Path(tmp))
        except (UserError, StopRun):
            pass  # a run that fails or is stopped still leaves its files to analyse
        return run_report.build(load_run(tmp))["findings"]


def caught(findings: list[dict], expected: str | None) -> bool:
    if expected is None:
        return not any(f["severity"] in ("warning", "critical") for f in findings)
    return any(f["id"] == expected for f in findings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    rows = []
    for name, (overrides, expected, _fast) in CASES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        hits = 0
        for seed in range(args.seeds):
            findings = run_case(overrides, seed)
            ok = caught(findings, expected)
            hits += ok
            if args.verbose or not ok:
                print(f"  {name} seed {seed}: {'caught' if ok else 'MISSED'}: "
                      + json.dumps([(f['id'], f['severity']) for f in findings]), file=sys.stderr, flush=True)
        rows.append((name, expected or "no warning/critical", args.seeds, hits))
        print(f"{name}: {hits}/{args.seeds}", file=sys.stderr, flush=True)
    print(f"\nmachine: {machine()}\n")
    print("| case | expected finding | runs | caught |\n|---|---|---|---|")
    for name, expected, n, hits in rows:
        print(f"| {name} | `{expected}` | {n} | {hits} |")


if __name__ == "__main__":
    main()
