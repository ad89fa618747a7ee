"""Helpers shared by the benchmark scripts: compose a config, train in this process, summarize timings."""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def compose(overrides: list[str], diag_dir: Path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import trainer.config  # noqa: F401 - registers the schemas

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=[f"diagnostics.dir={diag_dir}", *overrides])


def typed_config(overrides: list[str]):
    """The validated config the trainer would run with (diagnostics.dir is a placeholder).

    A bad override ends the script with one line naming it, as the trainer's command line does.
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from trainer.config import validate
    from trainer.errors import UserError
    from trainer.hydra_errors import one_line

    try:
        return validate(compose(overrides, Path(tempfile.gettempdir()) / "unused"))
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    except (HydraException, OmegaConfBaseException) as e:
        raise SystemExit(f"error: {one_line(e)}") from None


class EpochClock:
    """Wall and CPU time of each training epoch inside `train()`: the region `epoch_time_s` covers.

    It wraps Collector.start_epoch (called just before an epoch's first batch) and end_epoch (the
    epoch's read-out, just before the loop stops its clock) at class level, so the trainer's own
    objects are timed. CPU time (time.process_time: this process, all its threads) leaves out the
    time other processes take the cores away, which on a shared machine is most of the noise; it
    misses work done in DataLoader worker processes (data.num_workers > 0).
    """

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.ends: list[float] = []  # perf_counter at each epoch's read-out: one epoch period apart
        self._start = (0.0, 0.0)

    def __enter__(self) -> "EpochClock":
        from trainer.diagnostics import Collector

        self._originals = (Collector.start_epoch, Collector.end_epoch)
        start_epoch, end_epoch = self._originals

        def timed_start(collector):
            start_epoch(collector)
            self._start = (time.perf_counter(), time.process_time())

        def timed_end(collector):
            record = end_epoch(collector)
            self.ends.append(time.perf_counter())
            self.wall.append(self.ends[-1] - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])
            return record

        Collector.start_epoch, Collector.end_epoch = timed_start, timed_end
        return self

    def __exit__(self, *exc) -> None:
        from trainer.diagnostics import Collector

        Collector.start_epoch, Collector.end_epoch = self._originals


def clocks_for(overrides: list[str]) -> tuple[str, ...]:
    """The clocks that measure this config: host CPU time says nothing about GPU work."""
    import torch

    cuda = typed_config(overrides).trainer.device.value in ("cuda", "auto") and torch.cuda.is_available()
    return ("wall",) if cuda else ("wall", "cpu")


@contextlib.contextmanager
def trainer_log_level(level: int) -> Iterator[None]:
    """The trainer logger at `level` for a block, then as it was (tests call these scripts in-process)."""
    logger = logging.getLogger("trainer")
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def train_run(overrides: list[str], log_level: int = 30) -> dict:
    """Train once in a fresh temporary run directory, in this process.

    Returns the train JSONL records, each epoch's wall and CPU time and the times its read-out ended
    (EpochClock), the wall time of the whole `train()` call (set-up, validation, checkpoints and files
    included) and of the dataset's construction within it, and run_info.json. log_level: the trainer
    logger's (30, warnings: live findings show; 40 keeps them quiet).
    """
    import json

    import trainer.loop as loop
    from trainer.config import validate

    data_s = []
    build_datasets = loop.build_datasets

    def timed_build(*args, **kwargs):
        t = time.perf_counter()
        try:
            return build_datasets(*args, **kwargs)
        finally:
            data_s.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        diag = Path(tmp) / "diagnostics"
        cfg = validate(compose(overrides, diag))
        loop.build_datasets = timed_build
        try:
            with trainer_log_level(log_level), EpochClock() as clock:
                t0 = time.perf_counter()
                loop.train(cfg, Path(tmp))
                wall_s = time.perf_counter() - t0
        finally:
            loop.build_datasets = build_datasets
        records = [json.loads(line) for line in (diag / "train_diagnostics.jsonl").read_text().splitlines()]
        run_info = json.loads((diag / "run_info.json").read_text())
    return {"records": records, "epoch_wall": clock.wall, "epoch_cpu": clock.cpu, "epoch_ends": clock.ends,
            "wall_s": wall_s, "data_s": sum(data_s), "started": t0, "run_info": run_info}


def set_threads(threads: Optional[int]) -> int:
    """Pin torch's intra-op threads (None: torch's default). Returns the count in effect.

    On a small shared machine, torch's default of one OpenMP thread per core collapses as soon as
    another process wants a core (spinning threads wait for the descheduled one): measured on this
    project's 2-core machine, a small-CNN step went from 39 ms with 1 thread to 500 ms with 2 while
    another test suite ran. Ratios are only trustworthy with threads pinned below the free cores.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def spread(values: list[float]) -> str:
    m = statistics.mean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.4f} ± {s:.4f} (n={len(values)})"


def ratio_summary(ratios: list[float]) -> str:
    """Median and geometric mean of paired ratios, with a 95 % t-interval computed on log ratios."""
    n = len(ratios)
    logs = [math.log(r) for r in ratios]
    mean = statistics.mean(logs)
    text = f"median {statistics.median(ratios):.4f}, geometric mean {math.exp(mean):.4f}"
    if n > 1:
        from scipy import stats

        half = stats.t.ppf(0.975, n - 1) * statistics.stdev(logs) / math.sqrt(n)
        text += (f", 95% CI [{math.exp(mean - half):.4f}, {math.exp(mean + half):.4f}]"
                 f", sd {statistics.stdev(ratios):.4f}")
    return text + f" (n={n})"


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval."""
    n = len(values)
    m = statistics.mean(values)
    if n < 2:
        return m, float("nan")
    from scipy import stats

    return m, stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine() -> str:
    import os

    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} intra-op threads){gpu}")
