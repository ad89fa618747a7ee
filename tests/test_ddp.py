"""Several processes, one run: DDP under torchrun on CPU (gloo, 2 processes), against one process.

What makes the comparison exact: `model.norm=group`. GroupNorm normalizes each sample alone, so a
rank's forward pass on its half of a batch gives the same per-sample outputs as one process on the
whole batch, and DDP's gradient average over two equal halves is the one-process gradient of the
mean loss. (With BatchNorm the ranks normalize with statistics of their own half-batch: a legitimately
different computation, so no equality could be asserted.) The data order makes the halves right:
rank r takes every second index of the same (seed, epoch) permutation, so at every step the two
ranks' batches together are the one-process batch. What is left is float rounding (a different
summation order in the gradient all-reduce and in the conv reductions), which the tolerances
allow; a run whose ranks did not average gradients misses them by orders of magnitude (about 1% on
the loss, 25% on the gradient norm, measured when writing this test).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, read_jsonl, train_here
from trainer.data import EpochShuffle, ShardSampler
from trainer.errors import ConfigError
from trainer.ranks import NON_ZERO_RANK_OVERRIDES, Ranks, hydra_args_for_rank

COMMON = ["trainer.device=cpu", "trainer.epochs=1", "model.norm=group"]


def torchrun(args: list[str], cwd: Path, nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=N -m trainer args...` (a free port per call)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DIAGNOSTICS_DIR", "WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "trainer", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_two_ranks_write_one_run_that_matches_one_process(tmp_path, one_thread):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    # No hydra.run.dir: each rank's Hydra would pick its own ${now:} directory; rank 0's must win.
    proc = torchrun(COMMON, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(cwd)) == ["outputs"]
    runs = list((cwd / "outputs").glob("*/*"))
    assert len(runs) == 1, runs  # one directory for the whole run
    run = runs[0]
    from rundir.format import HYDRA_ACCEPTED, LOCK
    assert sorted(p.name for p in run.iterdir()) == sorted([".hydra", HYDRA_ACCEPTED, LOCK, "checkpoints", "diagnostics",
                                                            "train.log"])
    diag = run / "diagnostics"
    written = sorted(p.name for p in diag.iterdir() if p.name != "live_findings.json")  # rank 0's, if any fired
    assert written == ["per_sample", "run_info.json", "status.json", "train_diagnostics.jsonl", "val_diagnostics.jsonl"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "best.pt.sha256", "last.pt",
                                                                       "last.pt.sha256"]
    assert (run / "train.log").read_text().count("epoch 1/1") == 1  # rank 1 logs nothing
    assert (proc.stdout + proc.stderr).count("epoch 1/1") == 1
    info = json.loads((diag / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["loader"] == "dataloader" and info["run_dir"] == str(run.resolve())
    assert json.loads((diag / "status.json").read_text())["status"] == "completed"
    [ddp], [ddp_val] = read_jsonl(diag / "train_diagnostics.jsonl"), read_jsonl(diag / "val_diagnostics.jsonl")

    _, [one], [one_val] = train_here(tmp_path / "single", COMMON)

    # Counts are exact: every training image of the full batches once, every validation image once
    # (359 is odd: a padding DistributedSampler would count 360).
    assert (ddp["num_batches"], ddp["num_samples"]) == (one["num_batches"], one["num_samples"]) == (22, 1408)
    assert ddp_val["num_samples"] == one_val["num_samples"] == 359
    # The confusion matrix is summed over the ranks: every validation image counted once, in its true row.
    ddp_m, one_m = (torch.tensor(r["confusion_matrix"]) for r in (ddp_val, one_val))
    assert ddp_m.sum() == 359 and ddp_m.sum(dim=1).tolist() == one_m.sum(dim=1).tolist() == info["val_class_counts"]
    # Float rounding may flip a near-tie's argmax between two wrong classes too: a flip moves one count.
    assert (ddp_m - one_m).abs().sum() <= 2 * 5
    assert ddp["grad_norm_rank_spread"] == 0.0  # DDP kept the ranks' gradients identical
    close = {"loss": 1e-4, "mean_grad_norm": 2e-3, "max_grad_norm": 2e-3, "weight_update": 1e-3,
             "weight_update_ratio": 1e-3, "loss_step_std": 1e-2, "relu_zero_fraction": 1e-3}
    for field, rel in close.items():
        assert math.isclose(ddp[field], one[field], rel_tol=rel), (field, ddp[field], one[field])
    assert abs(ddp["accuracy"] - one["accuracy"]) <= 3 / one["num_samples"]  # an argmax tie may flip
    assert math.isclose(ddp_val["loss"], one_val["loss"], rel_tol=1e-3)
    assert abs(ddp_val["accuracy"] - one_val["accuracy"]) <= 2 / 359
    assert ddp["learning_rate"] == one["learning_rate"] and ddp["learning_rate_end"] == one["learning_rate_end"]
    # Per-sample records: each rank's images gathered into one file, as one process records them.
    [ddp_s, one_s] = [np.load(d / "per_sample" / "epoch_0001.npz", allow_pickle=False)
                      for d in (diag, tmp_path / "single" / "diagnostics")]
    assert (ddp_s["predicted"] >= 0).sum() == (one_s["predicted"] >= 0).sum() == 1408
    assert ((ddp_s["predicted"] >= 0) == (one_s["predicted"] >= 0)).all()  # the same images trained on
    seen = one_s["predicted"] >= 0
    assert np.allclose(ddp_s["loss"][seen].astype(float), one_s["loss"][seen].astype(float), rtol=2e-2, atol=2e-3)
    assert (ddp_s["predicted"] == one_s["predicted"]).mean() >= 1 - 3 / 1408
    # The best validation pass's probabilities: each rank's share (every second image) gathered by index.
    [ddp_v, one_v] = [np.load(d / "per_sample" / "val_predictions.npz", allow_pickle=False)
                      for d in (diag, tmp_path / "single" / "diagnostics")]
    assert (ddp_v["label"] == one_v["label"]).all() and (ddp_v["label"] >= 0).all()  # every image, once
    assert np.allclose(ddp_v["label_probability"].astype(float), one_v["label_probability"].astype(float), atol=2e-3)
    assert (ddp_v["classes"][:, 0] == one_v["classes"][:, 0]).mean() >= 1 - 5 / 359  # near-ties flip, as above


@pytest.mark.slow
def test_a_ddp_run_resumed_at_an_epoch_repeats_the_uninterrupted_run(tmp_path):
    """Under DDP a run stops at epoch ends only; resuming there gives the uninterrupted records exactly
    (augmentation on, so every rank's draws must be reproduced, not only the order)."""
    from rundir.format import TIMING_FIELDS

    args = ["trainer.device=cpu", "augmentation=basic", "scheduler=constant"]
    for run_dir, epochs in ((tmp_path / "resumed", 1), (tmp_path / "resumed", 2), (tmp_path / "straight", 2)):
        proc = torchrun([f"hydra.run.dir={run_dir}", f"trainer.epochs={epochs}", *args], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def records(run_dir, name):
        return [{k: v for k, v in r.items() if k not in TIMING_FIELDS}
                for r in read_jsonl(run_dir / "diagnostics" / f"{name}_diagnostics.jsonl")]

    for name in ("train", "val"):
        resumed, straight = records(tmp_path / "resumed", name), records(tmp_path / "straight", name)
        assert [r["epoch"] for r in resumed] == [1, 2]
        assert resumed == straight


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bad_input_under_torchrun_is_one_line_from_rank_0(tmp_path):
    proc = torchrun([f"hydra.run.dir={tmp_path / 'run'}", "trainer.device=cuda", "trainer.epochs=1"], tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count("trainer.device=cuda but CUDA is not available") == 1, proc.stderr[-2000:]
    assert f'File "{ROOT / "trainer"}' not in proc.stderr  # torchrun's own report follows, ours has no traceback
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert json.loads((tmp_path / "run" / "diagnostics" / "status.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("rank,message", [("0", "torchrun runs one training job"), ("1", "")])
def test_a_sweep_under_torchrun_is_refused_before_hydra_starts(tmp_path, rank, message):
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    env.update(PYTHONPATH=str(ROOT), WORLD_SIZE="2", RANK=rank, LOCAL_RANK=rank)
    proc = subprocess.run([sys.executable, "-m", "trainer", "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                           "trainer.epochs=1,2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    if message:  # rank 0 says it once; the other ranks stop silently
        assert len(lines) == 1 and lines[0].startswith(f"error: {message}")
    else:
        assert lines == []
    assert os.listdir(tmp_path) == []


def test_ranks_from_the_environment_and_what_hydra_may_write():
    assert Ranks.from_env({}) == Ranks(0, 1, 0)
    ranks = Ranks.from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (ranks.rank, ranks.world_size, ranks.local_rank, ranks.is_main) == (3, 4, 1, False)
    with pytest.raises(ConfigError, match="must be integers"):
        Ranks.from_env({"WORLD_SIZE": "two"})
    with pytest.raises(ConfigError, match="RANK=2 and WORLD_SIZE=2"):
        Ranks.from_env({"WORLD_SIZE": "2", "RANK": "2"})
    assert Ranks(0, 4).share_of_batch(512) == 128
    with pytest.raises(ConfigError, match="data.batch_size=100 is the global batch .* 3 processes"):
        Ranks(0, 3).share_of_batch(100)
    argv = ["hydra.run.dir=/x", "trainer.epochs=2", "hydra/job_logging=stdout"]
    assert hydra_args_for_rank(argv, Ranks(0, 2)) == argv  # rank 0: Hydra as usual
    assert hydra_args_for_rank(argv, Ranks(1, 2)) == ["trainer.epochs=2", *NON_ZERO_RANK_OVERRIDES]


def test_a_submitit_task_of_a_multi_task_job_finds_its_rank(monkeypatch):
    pytest.importorskip("submitit")
    # A private copy of the environment: the export writes into it, and nothing leaks to later tests.
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT", "LOCAL_WORLD_SIZE")}
    env.update(SUBMITIT_EXECUTOR="slurm", SLURM_JOB_ID="4242", SLURM_NTASKS="4", SLURM_JOB_NUM_NODES="2",
               SLURM_NODEID="1", SLURM_JOB_NODELIST="gpu[07-08]", SLURM_PROCID="3", SLURM_LOCALID="1")
    monkeypatch.setattr(os, "environ", env)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    assert Ranks.from_env() == Ranks(rank=3, world_size=4, local_rank=1)
    assert env["MASTER_ADDR"] == "gpu07" and int(env["MASTER_PORT"]) > 0 and env["WORLD_SIZE"] == "4"
    assert env.get("CUDA_VISIBLE_DEVICES") == visible  # left as SLURM set it: LOCAL_RANK picks the device
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        del env[key]
    env["SLURM_NTASKS"] = "1"
    assert Ranks.from_env() == Ranks()  # a one-task job is a single process
    assert "WORLD_SIZE" not in env


def test_rank_shares_rebuild_the_one_process_batches_and_resume_across_world_sizes():
    n, batch, half = 103, 8, 4
    one = EpochShuffle(n, seed=3)
    one.set_epoch(2)
    order = list(one)
    ranks = [EpochShuffle(n, 3, rank, 2) for rank in (0, 1)]
    for r in ranks:
        r.set_epoch(2)
    shares = [list(r) for r in ranks]
    assert len(shares[0]) == len(shares[1]) == len(ranks[0]) == 51  # equal shares: equal step counts
    batches = [order[t * batch:(t + 1) * batch] for t in range(n // batch)]
    for t, whole in enumerate(batches):
        assert sorted(shares[0][t * half:(t + 1) * half] + shares[1][t * half:(t + 1) * half]) == sorted(whole)
    # A one-process run stopped after 5 steps resumes on 2 ranks with exactly its remaining batches.
    for r in ranks:
        r.set_epoch(2, skip=5 * half)
    rest = [list(r) for r in ranks]
    for t, whole in enumerate(batches[5:]):
        assert sorted(rest[0][t * half:(t + 1) * half] + rest[1][t * half:(t + 1) * half]) == sorted(whole)
    ranks[0].set_epoch(3)
    assert list(ranks[0]) != shares[0]  # a new permutation per epoch
    val = [list(ShardSampler(n, rank, 2)) for rank in (0, 1)]
    assert sorted(val[0] + val[1]) == list(range(n))  # every validation index once, no padding


# ───────────────────────────── the collectives, in two spawned processes ─────────────────────────────


def _collectives(rank: int, store: str) -> None:
    """Rank `rank` of 2: each helper of distributed.py against values computed by hand."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        from trainer import distributed
        from trainer.models import SmallCNN

        assert distributed.active()
        assert distributed.share({"dir": f"/run/of/rank{rank}"}) == {"dir": "/run/of/rank0"}
        t = torch.tensor([1.0, 10.0]) * (rank + 1)
        assert distributed.all_reduce_sum_(t.clone()).tolist() == [3.0, 30.0]
        hi, lo = distributed.max_and_min(torch.tensor([float(rank), -float(rank)]))
        assert hi.tolist() == [1.0, 0.0] and lo.tolist() == [0.0, -1.0]
        assert distributed.agree(rank == 1, False) == (True, False)
        # BatchNorm running statistics: every rank ends with the mean over the ranks.
        model = SmallCNN(3, 10, width=4)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.fill_(rank * 2.0)
                    m.running_var.fill_(1.0 + rank)
        distributed.average_buffers_(model)
        bn = model.stage2.bn
        assert torch.equal(bn.running_mean, torch.full_like(bn.running_mean, 1.0))
        assert torch.equal(bn.running_var, torch.full_like(bn.running_var, 1.5))
        assert int(bn.num_batches_tracked) == 0  # integer buffers are left alone
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_collectives_reduce_as_documented(tmp_path):
    torch.multiprocessing.spawn(_collectives, args=(str(tmp_path / "store"),), nprocs=2)
