"""Bad input on the command line: one clear message naming the problem, non-zero exit, no traceback."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_trainer

# (overrides, text the message must contain, who reports it)
CASES = [
    (["optimizer=sgdd"], "sgdd", "hydra"),
    (["scheduler=plateau", "scheduler.patiance=3"], "patiance", "hydra"),
    (["scheduler=plateau", "scheduler.patience=abc"], "scheduler.patience", "hydra"),
    (["trainer.amp=off"], "trainer.amp", "hydra"),
    (["+scheduler.patiance=3"], "unknown key scheduler.patiance", "trainer"),
    (["optimizer.lr=0"], "optimizer.lr must be > 0", "trainer"),
    (["optimizer.lr=-1"], "optimizer.lr must be > 0", "trainer"),
    (["regularization.label_smoothing=1.5"], "regularization.label_smoothing must lie in [0, 1)", "trainer"),
    (["data=imagefolder"], "data.root", "trainer"),
]


@pytest.mark.parametrize("overrides,needle,who", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_config_errors(tmp_path, overrides, needle, who):
    run_dir = tmp_path / "run"
    proc = run_trainer([f"hydra.run.dir={run_dir}", *overrides])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert needle in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line, Hydra's refusals too
    if who == "trainer":
        status = json.loads((run_dir / "diagnostics" / "status.json").read_text())
        assert status["status"] == "failed" and needle in status["error"]
        assert needle in (run_dir / "train.log").read_text()
    else:  # Hydra refuses before any run directory exists
        assert not run_dir.exists()


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_missing_dataset_without_download(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_trainer([f"hydra.run.dir={run_dir}", "data=cifar10", f"data.root={tmp_path / 'none'}"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cifar10 not found" in proc.stderr and "data.download=true" in proc.stderr
    assert json.loads((run_dir / "diagnostics" / "status.json").read_text())["status"] == "failed"


@pytest.mark.slow  # the catalog's in-process row runs by default; this is the real command (CI: -m slow)
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda(tmp_path):
    proc = run_trainer([f"hydra.run.dir={tmp_path}", "trainer.device=cuda"])
    assert proc.returncode == 2 and "trainer.device=cuda but CUDA is not available" in proc.stderr


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_bad_value_fails_only_its_own_sweep_job(sweep_with_failure):
    sweep, proc = sweep_with_failure
    assert proc.returncode == 2  # the failed job's own exit code, once the sweep has run
    *_, error, pointer = proc.stderr.strip().splitlines()  # the job's one line, then where the sweep report is
    assert error == "error: optimizer.lr must be > 0, got -1.0"
    assert pointer == f"sweep report (failed jobs included): python -m analysis {sweep}"
    assert "Traceback" not in proc.stderr
    assert json.loads((sweep / "0" / "diagnostics" / "status.json").read_text())["status"] == "completed"
    failed = json.loads((sweep / "1" / "diagnostics" / "status.json").read_text())
    assert failed["status"] == "failed" and "optimizer.lr" in failed["error"]


def test_hydra_full_error_still_gives_hydras_traceback(tmp_path):
    proc = run_trainer([f"hydra.run.dir={tmp_path / 'run'}", "optimizer=sgdd"], env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "MissingConfigException" in proc.stderr


def test_a_missing_plugin_names_the_extra_to_install():
    from hydra.errors import MissingConfigException

    from trainer.hydra_errors import one_line

    missing = MissingConfigException("In 'hydra/config': Could not find 'hydra/launcher/joblib'",
                                     missing_cfg_file="hydra/launcher/joblib", options=["basic"])
    assert one_line(missing) == 'hydra/launcher=joblib needs its Hydra plugin: pip install "traindx[sweeps]"'


def test_a_failed_sweep_job_keeps_its_exit_code_across_processes():
    import pickle

    from trainer.hydra_errors import JobFailed

    # joblib and submitit send a job's exception back pickled: the code must survive the trip.
    back = pickle.loads(pickle.dumps(JobFailed("error: run stopped by finding x: y", 3)))
    assert (str(back), back.code) == ("error: run stopped by finding x: y", 3)
