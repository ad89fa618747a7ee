"""The time half of the GPU target: how long `experiment=cifar100_resnet18_fast` takes on this machine.

    python benchmarks/time_to_target.py [--epochs 4] [--budget-s 300] [--size 60000] [overrides...]

The target (docs/scale.md): 77 % top-1 on CIFAR-100 with ResNet-18 within 5 minutes on one H100.
Accuracy needs the real dataset; time does not. This runs the preset, unchanged but for its data,
on FakeData of CIFAR-100's shapes (50,000 train and 10,000 validation images of 3x32x32, 100
classes: the GPU fast path holds them on the device as it would CIFAR-100) for a few epochs, then
projects the whole run from what it measured:

    set-up without the dataset + first two epochs + (epochs - 2) x steady epoch period + the end

The first two epochs carry the one-off costs: cuDNN autotuning, and with trainer.compile=true the
compilation of the training graph (epoch 1) and of the validation graphs (first validation, which
ends inside epoch 2's span). The steady period runs from one epoch's read-out to the next
(validation, checkpoint, files, the next epoch's training); the end is the last validation. It
prints the projected time of the preset's epochs and how many epochs fit the budget. Generating
FakeData is left out (CIFAR-100 loads from its pickles in a second or two). On CPU it runs too,
but only as a check of the script: pass a small --size and trainer.device=cpu.
"""

from __future__ import annotations

import argparse
import statistics

from common import machine, train_run, typed_config

PRESET = "experiment=cifar100_resnet18_fast"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5, help="epochs measured (>= 4: two first, two steady)")
    ap.add_argument("--budget-s", type=float, default=300.0, help="the time budget, seconds")
    ap.add_argument("--size", type=int, default=60000, help="fake images, train + validation (1/6 validation)")
    ap.add_argument("overrides", nargs="*", default=[], help="more overrides (trainer.compile=true, ...)")
    args = ap.parse_args()
    if args.epochs < 4:
        raise SystemExit("error: --epochs must be >= 4 (the first two epochs, then at least two steady periods)")
    if args.size < 12:
        raise SystemExit("error: --size must be >= 12")

    preset_epochs = typed_config([PRESET, *args.overrides]).trainer.epochs
    overrides = [PRESET, "data=fake", f"data.size={args.size}", "data.val_fraction=0.16667",
                 "data.num_classes=100", *args.overrides, f"trainer.epochs={args.epochs}"]
    cfg = typed_config(overrides)  # every bad override fails here, in one line
    run = train_run(overrides, log_level=40)  # fake data has nothing to learn: no live findings

    ends, started = run["epoch_ends"], run["started"]
    periods = [b - a for a, b in zip(ends[1:], ends[2:])]
    steady = statistics.median(periods)
    # Everything up to epoch 2's read-out, without making the fake images: set-up and the one-off costs.
    head = ends[1] - started - run["data_s"]
    tail = run["wall_s"] - (ends[-1] - started)  # the last validation, checkpoint and files
    projected = head + (preset_epochs - 2) * steady + tail
    fit = 2 + int(max(0.0, args.budget_s - head - tail) // steady)

    records = run["records"]
    print(f"{PRESET} on fake CIFAR-100-shaped data ({args.size} images), {args.epochs} epochs measured")
    print(f"machine: {machine()}")
    info = run["run_info"]
    print(f"device: {info['device']}, amp {info['amp']}, compile {cfg.trainer.compile}, loader {info['loader']}, "
          f"batch {cfg.data.batch_size}, {info['steps_per_epoch']} steps per epoch")
    print(f"making the fake images (left out): {run['data_s']:.1f} s")
    print(f"set-up + first two epochs: {head:.1f} s")
    print(f"steady epoch period: median {steady:.2f} s over {len(periods)} "
          f"(train {statistics.median(r['epoch_time_s'] for r in records[1:]):.2f} s, "
          f"{statistics.median(r['samples_per_s'] for r in records[1:]):.0f} img/s)")
    print(f"projected for the preset's {preset_epochs} epochs: {projected:.0f} s "
          f"({'within' if projected <= args.budget_s else 'over'} the {args.budget_s:.0f} s budget)")
    print(f"epochs that fit {args.budget_s:.0f} s: {fit}")


if __name__ == "__main__":
    main()
