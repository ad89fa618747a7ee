"""Shared fixtures: compose configs with Hydra's compose API, run the trainer as users do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# One intra-op thread in every test process and every process a test starts (set before torch is imported):
# pytest-xdist already runs one worker per core, and on a busy machine OpenMP's spinning threads make small
# CPU steps about 10x slower.
os.environ["OMP_NUM_THREADS"] = "1"


def _temporary_files_in_memory(root: str = "/dev/shm", room: int = 2 << 30) -> None:
    """Temporary files (pytest's tmp_path, every run a test trains) on a RAM file system when there is one
    with room and TMPDIR was not chosen: the trainer and the analysis fsync each atomic write, which on a
    VM's disk costs milliseconds apiece."""
    if "TMPDIR" in os.environ or "PYTEST_DEBUG_TEMPROOT" in os.environ:
        return
    try:
        fs = os.statvfs(root)
    except OSError:
        return
    if fs.f_bavail * fs.f_frsize >= room and os.access(root, os.W_OK | os.X_OK):
        os.environ["TMPDIR"] = root  # for the processes tests start, too
        tempfile.tempdir = None  # gettempdir() looks again


_temporary_files_in_memory()
# Hypothesis keeps its example database (and caches) outside the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "traindx-hypothesis"))


def compose(overrides: list[str] | None = None, diag_dir: str | Path = "/tmp/unused"):
    """A composed config, as the app would see it, with diagnostics.dir set (compose has no HydraConfig)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import trainer.config  # noqa: F401 - registers the schemas

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose("config", overrides=[f"diagnostics.dir={diag_dir}", *(overrides or [])])


def run_module(module: str, args: list[str], cwd: Path | str | None = None, env: dict | None = None,
               timeout: float = 300, wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`python -m module args...` in a subprocess, with output captured as text. It runs in a fresh empty
    directory unless cwd says otherwise: what a command writes into its working directory (runs compared
    one by one write their report there) never lands in the checkout. wrapper: a command that runs it
    (its arguments follow)."""
    if cwd is None:
        cwd = tempfile.mkdtemp(prefix="traindx-cwd-")
    full_env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})  # env may extend PYTHONPATH
    return subprocess.run([*wrapper, sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def run_trainer(args: list[str], **kw) -> subprocess.CompletedProcess:
    return run_module("trainer", args, **kw)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """The directory `name`, made by `make(path)` once per test session and shared by every xdist worker.

    Each worker has its own session fixtures, but the workers' temporary directories share a parent: the
    first worker to ask makes the directory there, under a file lock, and the others wait and reuse it. Only
    a `make` that returns marks it done, so a failure fails every test that needs it, in every worker.
    Whoever receives the path only reads it (tests that change a run change a copy).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path, done = base / name, base / f"{name}.done"
    with FileLock(str(base / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            make(path)
            done.touch()
    return path


def trained(args: list[str], **kw) -> None:
    proc = run_trainer(args, **kw)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """One real 2-epoch default run on digits (16 px: a quarter of the pixels, the same files), shared by the tests
    that only read its files."""
    return made_once(tmp_path_factory, "digits_run", lambda run_dir: trained(
        [f"hydra.run.dir={run_dir}", "trainer.epochs=2", "scheduler=constant", "data.image_size=16"]))


@pytest.fixture(scope="session")
def sweep_2x2(tmp_path_factory) -> Path:
    """A real 2x2 multirun (scheduler.patience x regularization.label_smoothing, 2 epochs on digits at 16 px)."""
    return made_once(tmp_path_factory, "sweep_2x2", lambda sweep: trained(
        ["-m", f"hydra.sweep.dir={sweep}", "trainer.epochs=2", "scheduler=plateau", "scheduler.patience=1,3",
         "regularization.label_smoothing=0,0.1", "data.image_size=16"]))


# The README's sweep, made to exercise its axes in 6 epochs on digits: patience 0 cuts the LR in some runs and
# patience 4 never can; seed 0 at smoothing 0.2 swings and ends far below its best (checked by the tests that
# read it, from the runs' own records). About a minute on 2 cores: its tests are marked slow.
SWEEP_3AXES = ["trainer.epochs=6", "scheduler=plateau", "scheduler.patience=0,4", "regularization.label_smoothing=0,0.2",
               "trainer.seed=0,1"]
# One job of it, alone: the run that ends below its best (seconds).
RUN_ENDS_BELOW = ["trainer.epochs=6", "scheduler=plateau", "scheduler.patience=4", "regularization.label_smoothing=0.2",
                  "trainer.seed=0"]


@pytest.fixture(scope="session")
def sweep_3axes(tmp_path_factory) -> Path:
    """A real 2x2x2 multirun (patience x label smoothing x seed, 6 epochs on digits): SWEEP_3AXES."""
    return made_once(tmp_path_factory, "sweep_3axes", lambda sweep: trained(
        ["-m", f"hydra.sweep.dir={sweep}", *SWEEP_3AXES], timeout=900))


@pytest.fixture(scope="session")
def run_ends_below(tmp_path_factory) -> Path:
    """A real 6-epoch run at a constant LR (plateau, patience 4: no cut) whose validation swings: RUN_ENDS_BELOW."""
    return made_once(tmp_path_factory, "run_ends_below", lambda run_dir: trained(
        [f"hydra.run.dir={run_dir}", *RUN_ENDS_BELOW]))


@pytest.fixture(scope="session")
def sweep_with_failure(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A multirun whose second job fails on a bad value (optimizer.lr=-1), and the launch's outcome."""
    def launch(sweep: Path) -> None:
        proc = run_trainer(["-m", f"hydra.sweep.dir={sweep}", "trainer.epochs=1", "optimizer.lr=0.05,-1"])
        (sweep.parent / "sweep_fail.proc.json").write_text(json.dumps(
            {"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}))

    sweep = made_once(tmp_path_factory, "sweep_fail", launch)
    return sweep, subprocess.CompletedProcess(**json.loads((sweep.parent / "sweep_fail.proc.json").read_text()))


@pytest.fixture
def one_thread():
    """One intra-op torch thread for in-process training (each torchrun rank gets OMP_NUM_THREADS=1 too):
    on a busy 2-core machine OpenMP's spinning threads make small CPU steps about 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_here(tmp_path: Path, overrides: list[str]) -> tuple[float, list[dict], list[dict]]:
    """Train in this process (no subprocess start-up); returns best accuracy and the two JSONL files."""
    from trainer.config import validate
    from trainer.loop import train

    diag = tmp_path / "diagnostics"
    best = train(validate(compose(overrides, diag_dir=diag)), tmp_path)
    return best, read_jsonl(diag / "train_diagnostics.jsonl"), read_jsonl(diag / "val_diagnostics.jsonl")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished deterministic run of a tiny model (reliability_helpers.TINY_ARGS), never written to again:
    the uninterrupted reference of the resume tests and the existing run of the bad-input catalog (copied)."""
    from reliability_helpers import TINY_ARGS, TINY_ENV

    return made_once(tmp_path_factory, "tiny_run", lambda run_dir: trained(
        [f"hydra.run.dir={run_dir}", *TINY_ARGS], env=TINY_ENV))


class StepGuard:
    """A train loader whose steps 2..N of each epoch run inside a guard (`on()` ... `off()`).

    The first step is left out (lazy initialisation, cuDNN autotuning) and so is the epoch's end, where
    the loop reads the device once on purpose. guard_loader: the loader's own work for those steps runs
    inside the guard too.
    """

    def __init__(self, loader, on, off, guard_loader: bool):
        self.loader, self.on, self.off, self.guard_loader = loader, on, off, guard_loader
        self.guarded_steps = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        from trainer.data import set_epoch

        set_epoch(self.loader, epoch, skip)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def order(self):  # the epoch's training indices, as trainer.data.epoch_indices reads them from a loader
        from trainer.data import epoch_indices

        return epoch_indices(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        try:
            for k in range(len(self.loader)):
                if k >= 1 and self.guard_loader:
                    self.on()
                batch = next(batches)
                if k >= 1:
                    self.on()
                    self.guarded_steps += 1
                yield batch  # the loop's step runs here
                self.off()
        finally:
            self.off()


def guard_train_steps(monkeypatch, on, off, guard_loader: tuple[str, ...]) -> list[StepGuard]:
    """Make `train()` wrap its train loader in a StepGuard, on either path; guard_loader names the paths
    ("dataloader", "device") whose loader work is guarded too. Returns the guards as they are made."""
    import trainer.loop as loop

    guards: list[StepGuard] = []

    def wrap(builder, path):
        def build(*args, **kwargs):
            train, val = builder(*args, **kwargs)
            guards.append(StepGuard(train, on, off, path in guard_loader))
            return guards[-1], val
        return build

    monkeypatch.setattr(loop, "build_loaders", wrap(loop.build_loaders, "dataloader"))
    monkeypatch.setattr(loop, "build_device_loaders", wrap(loop.build_device_loaders, "device"))
    return guards

