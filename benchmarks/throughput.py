"""Training throughput in images per second on the `fake` dataset: small_cnn and resnet18, CPU and CUDA.

    python benchmarks/throughput.py [--epochs 4] [--threads 0] [--devices cpu cuda] [overrides...]
    python benchmarks/throughput.py --devices cuda trainer.amp=bf16

The real trainer (`train()`, diagnostics on, as users run it) on FakeData materialized in memory,
so the model is timed, not image decoding. Images per second is the trainer's own `samples_per_s`
(training steps of an epoch and the end-of-epoch read-out); the first epoch of each run is
warm-up. CUDA is measured when a GPU is present; its sizes are larger so that an epoch lasts long
enough to time. --threads 0 keeps torch's default (one thread per core): the figure a user gets on
an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics

from common import machine, set_threads, train_run, typed_config

MODELS = ("small_cnn", "resnet18")
# (images generated, batch size) per device and model: one warm-up and a few measured epochs in about a minute.
SIZES = {"cpu": {"small_cnn": (2560, 128), "resnet18": (640, 128)},
         "cuda": {"small_cnn": (51200, 512), "resnet18": (25600, 512)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is warm-up")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads on CPU (0: torch's default)")
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("overrides", nargs="*", default=[])
    args = ap.parse_args()
    if args.epochs < 2:
        raise SystemExit("error: --epochs must be >= 2 (the first is warm-up)")
    import torch

    threads = set_threads(args.threads or None)
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    if "cuda" in args.devices and "cuda" not in devices:
        print("no CUDA device here: CPU only")

    cases = []
    for device in devices:
        for model in args.models:
            size, batch = SIZES[device][model]
            overrides = [f"model={model}", "data=fake", f"data.size={size}", f"data.batch_size={batch}",
                         f"trainer.device={device}", f"trainer.epochs={args.epochs}", "scheduler=constant",
                         *args.overrides]
            typed_config(overrides)  # every bad override fails here, before the first run
            cases.append((device, model, batch, overrides))
    rows = []
    for device, model, batch, overrides in cases:
        run = train_run(overrides)
        rates = [r["samples_per_s"] for r in run["records"]][1:]
        rows.append((model, device, batch, rates))
        print(f"{model} on {device}: " + ", ".join(f"{x:.0f}" for x in rates) + " img/s", flush=True)

    print(f"\nmachine: {machine()}")
    print(f"threads: {threads} (CPU); extra overrides: {' '.join(args.overrides) or 'none'}")
    print("| model | device | batch | img/s (median) | mean ± sd (n epochs) |")
    print("|---|---|---|---|---|")
    for model, device, batch, rates in rows:
        sd = statistics.stdev(rates) if len(rates) > 1 else 0.0
        print(f"| {model} | {device} | {batch} | {statistics.median(rates):.0f} | "
              f"{statistics.mean(rates):.0f} ± {sd:.0f} ({len(rates)}) |")


if __name__ == "__main__":
    main()
