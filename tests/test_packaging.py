"""The built wheel is the whole program: installed into a fresh environment, every command works from
another directory, with the checkout out of reach."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, made_once

# Never in the wheel (setup.py leaves them out); the copy the wheel is built from leaves out the bulky rest too.
NOT_SHIPPED = ("tests", "benchmarks", "docs", "outputs")
NOT_COPIED = shutil.ignore_patterns(".git", ".venv*", "outputs", "multirun", "build", "dist", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis", "report")
# A run that trains in seconds (1 epoch, 4 channels, 16x16 inputs).
TINY = ["trainer.epochs=1", "model.width=4", "data.image_size=16"]


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the built wheel, the bin/ of a fresh virtual environment holding only that wheel).

    pip builds a local project inside its source tree (build/, *.egg-info): it builds from a copy, so the
    checkout stays clean. The dependencies are the running interpreter's, made visible by a .pth file:
    installing torch anew would take minutes and gigabytes; the project's own packages come only from the
    wheel, since a .pth file's directories are added as they are (their own .pth files, such as an
    editable install's, are not run).
    """
    tmp = made_once(tmp_path_factory, "installed_wheel", build_and_install)
    return next((tmp / "wheels").glob("traindx-*.whl")), tmp / "venv" / "bin"


def build_and_install(tmp: Path) -> None:
    src, wheels, env_dir = tmp / "src", tmp / "wheels", tmp / "venv"
    shutil.copytree(ROOT, src, ignore=NOT_COPIED)
    try:
        import setuptools  # noqa: F401 - build here when the venv has it, else pip fetches it

        isolation = ["--no-build-isolation"]
    except ImportError:
        isolation = []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", *isolation, "-w", str(wheels), str(src)], check=True,
                   capture_output=True, cwd=tmp)
    wheel = next(wheels.glob("traindx-*.whl"))
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    dependencies = [p for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()]
    (Path(purelib) / "running_interpreter_packages.pth").write_text("\n".join(dependencies) + "\n")


def test_the_wheel_holds_every_package_of_the_checkout_and_nothing_else(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = [d for d in ROOT.iterdir() if (d / "__init__.py").is_file() and d.name not in NOT_SHIPPED]
    packages = [init.parent.relative_to(ROOT) for top in tops for init in top.glob("**/__init__.py")]
    assert {"trainer", "analysis", "analysis/render", "analysis/rules"} <= {p.as_posix() for p in packages}
    for package in packages:
        for module in (ROOT / package).glob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names, f"{module} is not in the wheel"
    for config in (ROOT / "conf").glob("**/*.yaml"):
        assert f"trainer/conf/{config.relative_to(ROOT / 'conf').as_posix()}" in names, f"{config} is not in the wheel"
    shipped = {name.split("/")[0] for name in names}
    assert not shipped & {*NOT_SHIPPED, "conf"}, shipped


def installed_command(bin_dir: Path, cwd: Path):
    """Run one of the installed commands as a user's shell would, from cwd; it must succeed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIAGNOSTICS_DIR")}  # no checkout

    def run(command: str, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(bin_dir / command), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        assert proc.returncode == 0, f"{command} {args}: {proc.stderr[-3000:]}"
        return proc
    return run


def test_installed_analysis_writes_every_report_format_from_another_directory(installed, digits_run, sweep_2x2,
                                                                               tmp_path):
    run = installed_command(installed[1], tmp_path)
    where = run("python", "-c", "import trainer, analysis; print(trainer.__file__, analysis.__file__)").stdout
    assert where.count(str(installed[1].parent)) == 2, where  # the installed copy, not the checkout

    assert "== Loss Analysis ==" in run("traindx-analyze", digits_run).stdout  # the default text report
    assert run("traindx-analyze", digits_run, "--format", "markdown").stdout.startswith("# Run ")
    assert "<html" in run("traindx-analyze", digits_run, "--format", "html").stdout.lower()
    assert json.loads(run("traindx-analyze", digits_run, "--format", "json").stdout)["summary"]["epochs"] == 2
    assert run("traindx-analyze", digits_run, "--format", "csv").stdout.splitlines()[0].startswith("epoch")
    run("traindx-analyze", digits_run, "--out", "report")
    for name in ("report.md", "report.json", "report.html", "curves.png", "epochs.csv"):
        assert (tmp_path / "report" / name).stat().st_size > 100, name
    sweep = json.loads(run("traindx-analyze", sweep_2x2, "--format", "json").stdout)
    assert sorted(r["job"] for r in sweep["runs"]) == ["0", "1", "2", "3"]


@pytest.mark.slow  # about 20 s of CPU: two processes that import torch
def test_installed_trainer_and_check_data_from_another_directory(installed, tmp_path):
    run = installed_command(installed[1], tmp_path)
    # A multirun of one job: a 1-epoch digits run, plus the sweep report of the Hydra callback.
    run("traindx-train", "-m", "hydra.sweep.dir=sweep", *TINY, timeout=300)
    assert json.loads((tmp_path / "sweep" / "0" / "diagnostics" / "status.json").read_text())["status"] == "completed"
    assert (tmp_path / "sweep" / "analysis" / "report.md").is_file()
    assert json.loads(run("traindx-analyze", "sweep/0", "--format", "json").stdout)["summary"]["epochs"] == 1

    checked = run("traindx-check-data", *TINY[1:], "hydra.run.dir=check")
    assert "data checks passed" in checked.stdout
    assert (tmp_path / "check" / "train_batch.png").is_file()
