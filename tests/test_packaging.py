"""The built wheel carries conf/: an installed traindx trains and analyses from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_wheel_runs_from_another_directory(tmp_path):
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    try:
        import setuptools  # noqa: F401 - build here when the venv has it, else pip fetches it

        isolation = ["--no-build-isolation"]
    except ImportError:
        isolation = []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next(wheels.glob("traindx-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    assert (target / "trainer" / "conf" / "config.yaml").is_file()
    assert (target / "trainer" / "conf" / "data" / "digits.yaml").is_file()
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    env["PYTHONPATH"] = str(target)  # the installed copy, not the checkout
    where = subprocess.run([sys.executable, "-c", "import trainer, analysis; print(trainer.__file__, analysis.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert where.count(str(target)) == 2, where
    run = subprocess.run([sys.executable, "-m", "trainer", "trainer.epochs=1", "hydra.run.dir=run"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads((work / "run" / "diagnostics" / "status.json").read_text())["status"] == "completed"
    report = subprocess.run([sys.executable, "-m", "analysis", "run", "--format", "json"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0 and json.loads(report.stdout)["summary"]["epochs"] == 1
