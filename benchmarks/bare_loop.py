"""The trainer versus a bare hand-written PyTorch loop: same model, data, batch size, optimizer, steps.

    python benchmarks/bare_loop.py [--runs 3] [--epochs 9] [--threads 1] [overrides...]
    python benchmarks/bare_loop.py diagnostics.enabled=false      # the loop alone, without diagnostics
    python benchmarks/bare_loop.py model=resnet18 model.width=16 data=fake data.size=1280

The bare loop (BareLoop below) is what one writes by hand: a plain shuffled DataLoader over the
trainer's own training dataset (same images, same transforms), a second instance of the same model
class, torch.optim.SGD with the same settings, CrossEntropyLoss, a device-side loss sum read once
per epoch; no diagnostics, no checkpoints, no files.

Interleaved by epoch, in one process: while the trainer runs (`train()`, as users run it), the
benchmark runs one bare epoch before each trainer epoch and one after the last, and compares each
trainer epoch with the mean of the bare epochs on either side of it, so that drift of the machine's
speed, which made separate runs differ by ±8 % on a shared 2-core machine, cancels. Epoch time is
the training steps of one epoch: for the trainer the region of epoch_time_s (first batch to the
end-of-epoch read-out). The first epoch of each run is warm-up; each later epoch gives a ratio
trainer/bare, by wall clock and by CPU time of this process; reported: median and geometric mean
with a 95 % t-interval on log ratios.
Also reported: what the trainer does between epochs (validation, JSONL, two atomic fsynced
checkpoints, status.json) next to the bare loop's validation pass.
Target (CPU): trainer/bare <= 1.03 (scale-out issue).
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import clocks_for, machine, ratio_summary, set_threads, train_run, typed_config


class BareLoop:
    """A hand-written training loop over the trainer's data and model class."""

    def __init__(self, overrides: list[str]):
        import torch
        from torch import nn
        from torch.utils.data import DataLoader

        from trainer.data import build_datasets
        from trainer.models import build_model

        cfg = typed_config(overrides)
        if cfg.optimizer.name != "sgd" or cfg.fault.name != "none" or cfg.trainer.amp.value != "none":
            raise SystemExit("error: the bare loop is written for optimizer=sgd, fault=none, trainer.amp=none")
        t = cfg.trainer
        cuda = t.device.value in ("auto", "cuda") and torch.cuda.is_available()
        self.device = torch.device("cuda" if cuda else "cpu")
        self.torch = torch
        with torch.random.fork_rng(devices=[]):  # leave the trainer's random streams alone
            torch.manual_seed(t.seed)
            data = build_datasets(cfg.data, cfg.augmentation, t.seed)
            self.model = build_model(cfg.model).to(self.device)
        bs, workers = cfg.data.batch_size, cfg.data.num_workers
        self.train_loader = DataLoader(data.train, batch_size=bs, shuffle=True, drop_last=len(data.train) > bs,
                                       num_workers=workers, pin_memory=cuda, persistent_workers=workers > 0)
        self.val_loader = DataLoader(data.val, batch_size=bs, num_workers=workers)
        o = cfg.optimizer
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                                         weight_decay=cfg.regularization.weight_decay)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.regularization.label_smoothing)
        self.sync = torch.cuda.synchronize if cuda else (lambda: None)

    def train_epoch(self) -> tuple[float, float]:
        """One epoch of training steps; returns its wall and CPU seconds."""
        torch, device, model, optimizer = self.torch, self.device, self.model, self.optimizer
        model.train()
        loss_sum = torch.zeros((), device=device)
        t0, c0 = time.perf_counter(), time.process_time()
        for x, y in self.train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = self.criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()  # what any loop keeps, without a host sync
        loss_sum.item()  # the epoch's one read
        self.sync()
        return time.perf_counter() - t0, time.process_time() - c0

    def validate(self) -> float:
        """Accuracy on the validation split; returns its wall seconds."""
        torch = self.torch
        t0 = time.perf_counter()
        self.model.eval()
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        with torch.no_grad():
            for x, y in self.val_loader:
                correct += (self.model(x.to(self.device)).argmax(1) == y.to(self.device)).sum()
        correct.item()
        return time.perf_counter() - t0


class Interleaved:
    """Runs a bare epoch (and its validation) before each trainer epoch; `finish()` adds one after the last.

    The sequence is b1 T1 b2 T2 ... bE TE b(E+1): trainer epoch k is compared with the mean of its two
    neighbours b(k) and b(k+1), which cancels a drift of the machine's speed that is linear over the pair.
    """

    def __init__(self, bare: BareLoop):
        self.bare = bare
        self.bare_epochs: list[tuple[float, float]] = []
        self.bare_val: list[float] = []
        self.between: list[float] = []  # trainer: from one epoch's read-out to the next epoch's start
        self._last_end = None

    def _bare_epoch(self) -> None:
        self.bare_epochs.append(self.bare.train_epoch())
        self.bare_val.append(self.bare.validate())

    def __enter__(self) -> "Interleaved":
        from trainer.diagnostics import Collector

        self._originals = (Collector.start_epoch, Collector.end_epoch)
        start_epoch, end_epoch = self._originals
        calls = {"n": 0}

        def start(collector):
            calls["n"] += 1
            if calls["n"] > 1:  # not Collector.__init__
                if self._last_end is not None:
                    self.between.append(time.perf_counter() - self._last_end)
                self._bare_epoch()
            return start_epoch(collector)

        def end(collector):
            record = end_epoch(collector)
            self._last_end = time.perf_counter()
            return record

        Collector.start_epoch, Collector.end_epoch = start, end
        return self

    def __exit__(self, *exc) -> None:
        from trainer.diagnostics import Collector

        Collector.start_epoch, Collector.end_epoch = self._originals

    def finish(self) -> None:
        self._bare_epoch()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="trainer runs (each with its own bare loop)")
    ap.add_argument("--epochs", type=int, default=9, help="epochs per run; the first is warm-up")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("overrides", nargs="*", default=[])
    args = ap.parse_args()
    if args.epochs < 2 or args.runs < 1:
        raise SystemExit("error: --epochs must be >= 2 (the first is warm-up) and --runs >= 1")
    threads = set_threads(args.threads or None)
    base = [f"trainer.epochs={args.epochs}", "scheduler=constant", *args.overrides]
    clocks = clocks_for(base)

    ratios = {c: [] for c in clocks}
    times = {(arm, c): [] for arm in ("trainer", "bare") for c in clocks}
    between, bare_val = [], []
    for r in range(args.runs):
        with Interleaved(BareLoop(base)) as inter:
            # EpochClock (inside train_run) wraps these hooks: the bare epoch run at an epoch's start
            # happens before its clock starts.
            run = train_run(base)
        inter.finish()
        for c, i in (("wall", 0), ("cpu", 1))[:len(clocks)]:
            trainer = run[f"epoch_{c}"][1:]  # epoch 1 is warm-up
            bare = [b[i] for b in inter.bare_epochs]
            neighbours = [(bare[k] + bare[k + 1]) / 2 for k in range(1, len(bare) - 1)]
            times["trainer", c] += trainer
            times["bare", c] += bare[1:]
            ratios[c] += [a / b for a, b in zip(trainer, neighbours)]
        between += inter.between
        bare_val += inter.bare_val[1:]
        print(f"run {r + 1}: " + "  ".join(f"{c} trainer/bare median {statistics.median(ratios[c][-(args.epochs - 1):]):.4f}"
                                            for c in clocks), flush=True)

    print(f"\nmachine: {machine()}")
    print(f"config : {' '.join(base)}  (threads {threads}, {args.runs} runs x {args.epochs - 1} measured epochs)")
    print("epoch time of the training steps (median over epochs):")
    for c in clocks:
        print(f"   {c:<4}  trainer {statistics.median(times['trainer', c]):.4f} s, "
              f"bare {statistics.median(times['bare', c]):.4f} s; trainer/bare {ratio_summary(ratios[c])}")
    print("   target <= 1.03")
    print(f"between epochs (median): trainer {statistics.median(between):.4f} s (validation, JSONL, checkpoints, status)"
          f" vs bare validation {statistics.median(bare_val):.4f} s")


if __name__ == "__main__":
    main()
