"""Many runs through Hydra's plugins: joblib in parallel, Optuna searching, submitit locally and for SLURM.

Each test drives the real command line (`python -m trainer -m ...`) in a subprocess, as a user
would. The plugins are the optional extras `sweeps` and `slurm` (both in `dev`, so CI runs these);
without them each test skips and says which extra to install.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, read_jsonl, run_trainer

# Trials and jobs train one thread each: on a shared 2-core machine, torch's default (one thread per
# core) in several processes at once is many times slower than one thread each.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def needs(plugin: str, extra: str) -> None:
    pytest.importorskip(f"hydra_plugins.{plugin}", reason=f'{plugin} is not installed (pip install -e ".[{extra}]")')


def status(job: Path) -> dict:
    return json.loads((job / "diagnostics" / "status.json").read_text())


def log_window(job: Path) -> tuple[datetime, datetime]:
    """First and last timestamp of a job's train.log ('[2026-01-01 12:00:00,123][trainer]...')."""
    stamps = [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
              for line in (job / "train.log").read_text().splitlines() if line.startswith("[")]
    return stamps[0], stamps[-1]


# ───────────────────────────── joblib ─────────────────────────────


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_joblib_runs_two_jobs_at_once_with_dataloader_workers(tmp_path):
    needs("hydra_joblib_launcher", "sweeps")
    sweep = tmp_path / "sweep"
    # data.num_workers=1 starts a DataLoader worker inside a loky worker: it crashed before
    # trainer.data.worker_context chose the start method.
    # 4 epochs: each job trains for seconds, longer than the spread of the two workers' start-ups
    # (importing torch) on a loaded machine, so "at the same time" below is not left to chance.
    proc = run_trainer(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
                        "trainer.epochs=4", "data.num_workers=0,1"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()) == ["0", "1"]
    for num, workers in ((0, 0), (1, 1)):
        job = sweep / str(num)
        assert f"data.num_workers={workers}" in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"] == f"train_{num}"
        assert [r["epoch"] for r in read_jsonl(job / "diagnostics" / "train_diagnostics.jsonl")] == [1, 2, 3, 4]
        assert status(job)["status"] == "completed"
    # Both jobs ran at the same time (loky workers), not one after the other.
    (start0, end0), (start1, end1) = log_window(sweep / "0"), log_window(sweep / "1")
    assert start0 < end1 and start1 < end0


def test_worker_context_is_left_to_torch_outside_loky():
    from trainer.data import worker_context

    assert worker_context(0) is None and worker_context(2) is None


# ───────────────────────────── Optuna ─────────────────────────────


@pytest.mark.slow  # 10 s: three trials, each a process of its own
def test_optuna_search_maximizes_the_returned_best_val_accuracy(tmp_path):
    needs("hydra_optuna_sweeper", "sweeps")
    sweep = tmp_path / "search"
    proc = run_trainer(["hparams_search=digits_optuna", "hydra.sweeper.n_trials=3", "trainer.epochs=1",
                        f"hydra.sweep.dir={sweep}"], env=ONE_THREAD)  # no -m: the search config sets MULTIRUN
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    assert [j.name for j in jobs] == ["0", "1", "2"]

    trials = []
    for job in jobs:
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        lr, smoothing = float(overrides["optimizer.lr"]), float(overrides["regularization.label_smoothing"])
        assert 0.005 <= lr <= 0.5 and 0.0 <= smoothing <= 0.2  # the search space of digits_optuna
        info = json.loads((job / "diagnostics" / "run_info.json").read_text())
        assert info["config"]["optimizer"]["lr"] == lr  # the trial's value reached the trainer
        trials.append((status(job)["best_val_accuracy"], lr, smoothing))
    assert len({t[1] for t in trials}) == 3  # three different learning rates were tried

    best = max(t[0] for t in trials)
    assert results["best_value"] == best
    winners = [{"optimizer.lr": lr, "regularization.label_smoothing": s} for acc, lr, s in trials if acc == best]
    assert results["best_params"] in winners  # ties: Optuna keeps the first


# ───────────────────────────── submitit ─────────────────────────────


def _task_pid(sweep: Path) -> int | None:
    """The submitit task process of this sweep (its command line names the sweep's .submitit folder)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in args and any(str(sweep).encode() in a for a in args):
            return int(cmdline.parent.name)
    return None


@pytest.mark.slow  # 18 s; the trainer's own preempt-and-resume path is in the default suite (test_resume_faults)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the job's process through /proc")
def test_submitit_local_job_preempted_requeues_and_resumes(tmp_path):
    """USR2 (what SLURM sends before preemption) mid-run: checkpoint, requeue, resume, complete."""
    needs("hydra_submitit_launcher", "slurm")
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    env.update(PYTHONPATH=str(ROOT), **ONE_THREAD)
    cmd = [sys.executable, "-m", "trainer", "-m", "hydra/launcher=local", f"hydra.sweep.dir={sweep}",
           "trainer.epochs=6", "scheduler=constant"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        jsonl = sweep / "0" / "diagnostics" / "train_diagnostics.jsonl"
        deadline = time.monotonic() + 120
        while not (jsonl.exists() and jsonl.read_text()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = _task_pid(sweep)
        assert pid is not None, "the submitit task process was not found"
        os.kill(pid, signal.SIGUSR2)
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]

    job = sweep / "0"
    log = (job / "train.log").read_text()
    assert "stopped by signal SIGUSR2" in log and "resumed from" in log  # one job dir, two attempts
    submitit_logs = "".join(p.read_text() for p in sorted((sweep / ".submitit").glob("*/*_0_log.*")))
    assert "Requeued job" in submitit_logs
    # Every epoch recorded exactly once across the two attempts, and the run finished.
    assert [r["epoch"] for r in read_jsonl(job / "diagnostics" / "train_diagnostics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert status(job)["status"] == "completed" and status(job)["epoch"] == 6
    assert json.loads((job / "diagnostics" / "run_info.json").read_text())["resumed_from_epoch"] >= 1


def test_slurm_launcher_off_a_cluster_is_refused_in_one_line(tmp_path):
    needs("hydra_submitit_launcher", "slurm")
    proc = run_trainer(["-m", "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}", "optimizer.lr=0.02,0.05"],
                       env={"PATH": os.path.dirname(sys.executable)})  # no srun on this PATH
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        'error: the submitit launcher refused: Could not detect "srun", are you indeed on a slurm cluster? '
        "(off a cluster, hydra/launcher=local runs the same jobs on this machine)"]


def test_slurm_launcher_writes_the_sbatch_script_the_trainer_needs(tmp_path):
    """The `slurm` config through the plugin and submitit, up to sbatch (a stand-in that records its script)."""
    needs("hydra_submitit_launcher", "slurm")
    bin_dir, script = tmp_path / "bin", tmp_path / "sbatch_script.sh"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit checks that srun exists
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {script}\necho "sbatch: error: no cluster here" >&2\nexit 1\n')
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    sweep = tmp_path / "sweep"
    proc = run_trainer(["-m", "hydra/launcher=slurm", f"hydra.sweep.dir={sweep}", "hydra.launcher.partition=gpu",
                        "hydra.launcher.cpus_per_task=4", "optimizer.lr=0.02,0.05"],
                       env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode != 0 and "no cluster here" in proc.stderr  # submission was attempted
    text = script.read_text()
    for line in ("#SBATCH --array=0-1", "#SBATCH --partition=gpu", "#SBATCH --time=240",
                 "#SBATCH --signal=USR2@120",  # time for the trainer to write its checkpoint
                 "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=32GB",
                 "#SBATCH --open-mode=append",  # a requeued job appends to its logs
                 "export OMP_NUM_THREADS=4"):
        assert line in text, line
    # The pickled jobs: each sweep point with its job.num, requeued up to 3 times after a time-out.
    jobs = [pickle.loads(p.read_bytes()) for p in (sweep / ".submitit").glob("*.pkl")]
    assert sorted((j.args[0][-1], j.args[2]) for j in jobs) == [("optimizer.lr=0.02", 0), ("optimizer.lr=0.05", 1)]
    assert {j._timeout_countdown for j in jobs} == {3}
