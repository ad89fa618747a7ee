"""Epoch time with diagnostics on versus off, and where the difference goes, in one process.

    python benchmarks/diagnostics_overhead.py [--runs 3] [--pairs 8] [--threads 1] [overrides...]
    python benchmarks/diagnostics_overhead.py model=resnet18 model.width=16 data=fake data.size=1280

1. End to end. Each run is the real trainer (`train()`); after one warm-up epoch its epochs come in
   pairs, one with diagnostics on and one off, in ABBA order (on off, off on, ...): the benchmark
   switches the Collector's `enabled` (and its activation probe) at each epoch start, which is
   exactly what diagnostics.enabled=false selects for a whole run. Adjacent epochs share the
   machine's state of the moment, so the drift that made separate on and off runs differ by ±8 %
   on a shared 2-core machine cancels within each pair. Each pair gives a ratio on/off of its epoch
   times (the region of epoch_time_s, by wall clock and by CPU time of this process); reported:
   median and geometric mean of all ratios, with a 95 % t-interval on log ratios.
2. Per step, in the same epochs: each diagnostics call the loop makes (the Collector methods, the
   activation probe and its hooks, the end-of-epoch read-out, the JSONL write) is timed in both
   kinds of epoch. Cost per step = (time in those calls, on) - (time in them, off), per-epoch parts
   amortized over the epoch's steps; divided by the step time with diagnostics off it gives the
   overhead below part 1's noise floor (the rest of the step is the same code either way). Times
   are CPU time on CPU (what other processes take is left out); on CUDA, wall time between
   synchronizations around each call, which measures the kernels but perturbs overlap: there
   part 1 is the figure that counts.

3. Validation, which the epoch time leaves out: `evaluate()` with its confusion matrix and the per-image
   predicted probabilities (trainer/val_predictions.py, for confident learning) on and off, in
   alternating passes over the run's validation set (a fresh model; the cost does not depend on the
   weights), as a ratio of pass times and as a share of a training epoch's time.

Threads are pinned (--threads, default 1): torch's default of one thread per core is unstable as
soon as anything else runs on a small machine (see common.set_threads).
Targets (CPU): ratio <= 1.02 (trainer issue), <= 1.01 (scale-out issue).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import defaultdict

from common import clocks_for, machine, mean_ci, ratio_summary, set_threads, train_run

PER_STEP = ("on_loss", "grad_norm", "before_update", "after_update")
PER_EPOCH = ("end_epoch", "probe.attach", "probe.hooks", "probe.detach")  # once per epoch, inside epoch_time_s
OUTSIDE = ("start_epoch", "jsonl.write")  # per epoch, between epochs: in wall time, not in epoch_time_s
CALLS = PER_STEP + PER_EPOCH + OUTSIDE


def diagnostics_on(epoch: int) -> bool:
    """Epoch 1 (warm-up) on; then pairs (2, 3), (4, 5), ... alternately (on, off) and (off, on)."""
    if epoch < 2:
        return True
    pair, second = divmod(epoch - 2, 2)
    return (pair % 2 == 0) != bool(second)


class Instrument:
    """Times the diagnostics calls at class level (the trainer's own objects) and switches them per epoch."""

    def __init__(self, clock, sync=None):
        self.clock = clock
        self.sync = sync or (lambda: None)
        self.total: dict[str, float] = defaultdict(float)
        self.marks: list[dict[str, float]] = []  # a copy of `total` at each epoch start
        self.enabled: list[bool] = []  # per epoch
        self._undo: list = []

    def _timed(self, key: str, fn):
        def timed(*args, **kwargs):
            self.sync()
            t0 = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                self.total[key] += self.clock() - t0
        return timed

    def _patch(self, owner, name: str, replacement) -> None:
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    @contextlib.contextmanager
    def __call__(self):
        from trainer.diagnostics import ActivationProbe, Collector
        from rundir.files import JsonlWriter

        for name in PER_STEP + ("end_epoch",):
            self._patch(Collector, name, self._timed(name, getattr(Collector, name)))
        timed_start = self._timed("start_epoch", Collector.start_epoch)
        calls = {"n": 0}

        def start_epoch(collector):
            calls["n"] += 1
            if calls["n"] == 1:  # Collector.__init__: remember the probe, switch nothing
                return timed_start(collector)
            if not hasattr(collector, "_bench_probe"):
                collector._bench_probe = collector.probe
            on = diagnostics_on(calls["n"] - 1)
            collector.enabled = on
            collector.probe = collector._bench_probe if on else None
            self.marks.append(dict(self.total))
            self.enabled.append(on)
            return timed_start(collector)

        self._patch(Collector, "start_epoch", start_epoch)
        self._patch(ActivationProbe, "attach", self._timed("probe.attach", ActivationProbe.attach))
        self._patch(ActivationProbe, "detach", self._timed("probe.detach", ActivationProbe.detach))
        make_hook = ActivationProbe._hook
        self._patch(ActivationProbe, "_hook", lambda probe, name: self._timed("probe.hooks", make_hook(probe, name)))
        self._patch(JsonlWriter, "write", self._timed("jsonl.write", JsonlWriter.write))
        try:
            yield self
        finally:
            for owner, name, original in reversed(self._undo):
                setattr(owner, name, original)
            self._undo.clear()
            self.marks.append(dict(self.total))

    def epochs(self) -> list[dict[str, float]]:
        """Seconds per call name in each epoch (from its start to the next epoch's start)."""
        return [{k: b.get(k, 0.0) - a.get(k, 0.0) for k in CALLS} for a, b in zip(self.marks, self.marks[1:])]


def one_run(overrides: list[str], cuda: bool) -> list[dict]:
    """Train once with diagnostics switched per epoch; one dict per epoch after the warm-up."""
    import torch

    inst = Instrument(time.perf_counter, torch.cuda.synchronize) if cuda else Instrument(time.process_time)
    with inst():
        run = train_run(overrides)
    per_epoch = inst.epochs()
    assert len(per_epoch) == len(run["records"]) == len(inst.enabled), "one timing per epoch"
    return [{"on": on, "wall": wall, "cpu": cpu, "steps": rec["num_batches"],
             "calls": {k: v / rec["num_batches"] for k, v in calls.items()}}
            for on, wall, cpu, rec, calls in zip(inst.enabled, run["epoch_wall"], run["epoch_cpu"],
                                                 run["records"], per_epoch)][1:]


def validation_cost(overrides: list[str], passes: int) -> tuple[list[float], float]:
    """Ratios (confusion matrix and predictions on / off) of alternating validation passes, and the mean pass
    time with them off (s)."""
    import contextlib

    import torch
    from torch import nn

    import tempfile
    from pathlib import Path

    from common import compose
    from trainer.config import validate
    from trainer.data import build_datasets, build_loaders, val_indices
    from trainer.diagnostics import evaluate
    from trainer.models import build_model
    from trainer.val_predictions import ValPredictions

    cfg = validate(compose(overrides, Path(tempfile.gettempdir()) / "unused"))
    data = build_datasets(cfg.data, cfg.augmentation, cfg.trainer.seed)
    _, val_loader = build_loaders(data, cfg.data, seed=cfg.trainer.seed, pin_memory=False)
    model, cpu = build_model(cfg.model), torch.device("cpu")
    predictions = ValPredictions(val_indices(val_loader), len(data.val), cfg.data.num_classes, cpu)
    run = lambda on: evaluate(model, val_loader, cpu, nn.CrossEntropyLoss(), contextlib.nullcontext,  # noqa: E731
                              cfg.data.num_classes, confusion=on, predictions=predictions if on else None)
    run(True)  # warm-up
    times: dict[bool, list[float]] = {True: [], False: []}
    for k in range(2 * passes):
        on = (k % 4) in (0, 3)  # ABBA
        t = time.process_time()
        run(on)
        times[on].append(time.process_time() - t)
    return [a / b for a, b in zip(times[True], times[False])], statistics.mean(times[False])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="trainer runs")
    ap.add_argument("--pairs", type=int, default=8, help="on/off epoch pairs per run (epochs = 1 + 2 x pairs)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("overrides", nargs="*", default=[])
    args = ap.parse_args()
    if args.runs < 1 or args.pairs < 1:
        raise SystemExit("error: --runs and --pairs must be >= 1")
    threads = set_threads(args.threads or None)
    base = [f"trainer.epochs={1 + 2 * args.pairs}", "scheduler=constant", *args.overrides]
    clocks = clocks_for(base)
    cuda = clocks == ("wall",)

    epochs: list[dict] = []
    ratios: dict[str, list[float]] = {c: [] for c in clocks}
    for r in range(args.runs):
        run = one_run(base, cuda)
        epochs += run
        for a, b in zip(run[0::2], run[1::2]):
            on, off = (a, b) if a["on"] else (b, a)
            assert on["on"] and not off["on"]
            for c in clocks:
                ratios[c].append(on[c] / off[c])
        print(f"run {r + 1}: " + "  ".join(f"{c} ratio median {statistics.median(ratios[c][-args.pairs:]):.4f}"
                                            for c in clocks), flush=True)

    on = [e for e in epochs if e["on"]]
    off = [e for e in epochs if not e["on"]]
    print(f"\nmachine: {machine()}")
    print(f"config : {' '.join(base)}  (threads {threads}, {args.runs} runs x {args.pairs} pairs)")
    print("\n1. end to end: epoch time, diagnostics on / off in adjacent epochs")
    for c in clocks:
        print(f"   {c:<4}  on {statistics.median(e[c] for e in on):.4f} s, off {statistics.median(e[c] for e in off):.4f} s;"
              f" ratio {ratio_summary(ratios[c])}")
    print("   target <= 1.02 (trainer issue), <= 1.01 (scale-out issue)")

    unit = "wall time between synchronizations" if cuda else "CPU time"
    print(f"\n2. per step: diagnostics calls timed in the same epochs ({unit}; ms per step, mean and 95% CI)")
    step_off = statistics.mean(e["wall" if cuda else "cpu"] / e["steps"] for e in off) * 1e3
    print(f"   step with diagnostics off: {step_off:.3f} ms (its own loss and accuracy sums included)")
    print(f"   {'call':<16}{'on':>10}{'off':>10}{'on-off':>10}{'% of step':>12}")
    for key in CALLS:
        a = [e["calls"][key] * 1e3 for e in on]
        b = [e["calls"][key] * 1e3 for e in off]
        m, half = mean_ci(a)
        m_off, half_off = mean_ci(b)
        diff = m - m_off
        print(f"   {key:<16}{m:>10.4f}{m_off:>10.4f}{diff:>10.4f}{100 * diff / step_off:>11.2f}%"
              f"  ± {100 * (half ** 2 + half_off ** 2) ** 0.5 / step_off:.2f}")
    total_on = [sum(e["calls"][k] for k in PER_STEP + PER_EPOCH) * 1e3 for e in on]
    total_off = [sum(e["calls"][k] for k in PER_STEP + PER_EPOCH) * 1e3 for e in off]
    (m_on, h_on), (m_off, h_off) = mean_ci(total_on), mean_ci(total_off)
    share, half = (m_on - m_off) / step_off, (h_on ** 2 + h_off ** 2) ** 0.5 / step_off
    print(f"   {'total':<16}{m_on:>10.4f}{m_off:>10.4f}{m_on - m_off:>10.4f}{100 * share:>11.2f}%  ± {100 * half:.2f}"
          f"   -> estimated ratio {1 + share:.4f} [{1 + share - half:.4f}, {1 + share + half:.4f}]")
    print(f"   (total: the calls inside epoch_time_s; {' and '.join(OUTSIDE)} run between epochs, in wall time only)")

    if not cuda:
        val_ratios, val_off = validation_cost(base, 4 * args.pairs)
        epoch_cpu = statistics.median(e["cpu"] for e in off)
        m = statistics.geometric_mean(val_ratios)
        print(f"\n3. validation: evaluate() with the confusion matrix and the per-image probabilities on / off, "
              f"alternating passes (CPU time)")
        print(f"   pass with it off {val_off * 1e3:.2f} ms; ratio {ratio_summary(val_ratios)}")
        print(f"   its cost: {(m - 1) * val_off * 1e3:+.3f} ms a pass = {100 * (m - 1) * val_off / epoch_cpu:+.3f}% "
              f"of a training epoch ({epoch_cpu:.3f} s)")


if __name__ == "__main__":
    main()
