"""Who may write a run directory (issue 21): one process at a time (a flock named in rundir/format.py), the
job the directory belongs to, and the run wherever its directory went; the analysis' report files all or
nothing, and never written through a link. The bad-input catalogue holds the refusals as rows; these tests
hold what the rows cannot: two processes started together, a moved run that resumes, the analysis' side."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, compose, run_module
from reliability_helpers import TINY_ARGS, TINY_ENV, digest, snapshot
from rundir.files import RunFileError, write_all_or_nothing
from rundir.format import LOCK
from rundir.lock import DirectoryLock, Locked, hold

REFUSED = "another process is writing it (pid "


def _popen(module: str, args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    env.update(PYTHONPATH=str(ROOT), **TINY_ENV)
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _both(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        out.append((p.returncode, err))
    return out


# ───────────────────────────── the lock itself ─────────────────────────────


def test_a_held_lock_refuses_a_second_holder_naming_the_first_and_letting_go_empties_it(tmp_path):
    with hold(tmp_path, "wait for it") as first:
        assert (tmp_path / LOCK).read_text().startswith(f"pid {os.getpid()} on host ")
        with pytest.raises(Locked) as refused:
            DirectoryLock(tmp_path, "wait for it").acquire()  # another open file: flock refuses it
        assert str(refused.value).startswith(f"cannot write {tmp_path}: another process is writing it (pid "
                                             f"{os.getpid()} on host ")
        assert str(refused.value).endswith("; wait for it") and first.fd is not None
    assert (tmp_path / LOCK).read_text() == ""  # let go: the next holder may take it
    DirectoryLock(tmp_path, "").acquire().release()


@pytest.mark.slow  # two trainers at once hold both cores for ~6 s (the default suite's budget); the lock's own
# tests above stay in the default suite
def test_two_trainers_started_together_on_one_directory_exactly_one_is_refused(tmp_path):
    """Both start at once; one trains, the other is refused in one line naming the holder, and the run
    records every epoch once (the analysis reads it without a warning about repeated epochs). The lock is
    taken before torch is even imported: the holder keeps it for seconds, the other meets it in its first."""
    run = tmp_path / "run"
    args = [f"hydra.run.dir={run}", *(a for a in TINY_ARGS if not a.startswith("trainer.epochs=")), "trainer.epochs=1"]
    results = _both([_popen("trainer", args, tmp_path), _popen("trainer", args, tmp_path)], timeout=300)
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip()
    assert refused.startswith(f"error: cannot write {run}: {REFUSED}") and "\n" not in refused, refused
    for name in ("train", "val"):
        lines = (run / "diagnostics" / f"{name}_diagnostics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1]
    report = run_module("analysis", [str(run)], timeout=120)
    assert report.returncode == 0 and "more than once" not in report.stderr, report.stderr
    assert (run / LOCK).read_text() == ""  # the winner let go at its end


def test_verify_is_refused_while_another_process_writes_the_run(tmp_path):
    from rundir.read import RunError
    from test_verify import fake_run

    from analysis.verify import verify

    run = fake_run(tmp_path / "run", ["trainer.epochs=2"], [0.5, 0.6])
    with hold(run, ""):  # a trainer, or another --verify, holds it
        with pytest.raises(RunError, match=rf"^--verify: cannot write {run}: another process is writing it"):
            verify(run, top=1, epochs=1, seeds=1, extra=())
    assert not (run / "verify").exists()  # nothing planned, nothing written


@pytest.mark.slow  # trains a run and two verification sweeps' jobs (about 40 s on 2 busy cores)
def test_two_verify_runs_started_together_exactly_one_is_refused(tmp_path):
    from test_verify import HAIR_TRIGGER

    run = tmp_path / "run"
    trained = run_module("trainer", [f"hydra.run.dir={run}", *HAIR_TRIGGER, "trainer.epochs=6"], env=TINY_ENV)
    assert trained.returncode == 0, trained.stderr
    args = [str(run), "--verify", "--top", "1", "--epochs", "1"]
    results = _both([_popen("analysis", args, tmp_path), _popen("analysis", args, tmp_path)], timeout=600)
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip()
    assert refused.startswith(f"error: --verify: cannot write {run}: {REFUSED}"), refused
    assert len(list((run / "verify").iterdir())) == 1  # one verification sweep, in a directory of its own


# ───────────────────────────── a run directory that moved ─────────────────────────────


def test_a_moved_run_directory_resumes_as_the_same_run_and_says_where_it_is(tiny_run, tmp_path, capsys, caplog):
    """The run id, not the path, is the identity: a finished run moved elsewhere resumes there (nothing left
    to train), logs the move, and its last line names its new place."""
    from trainer import app

    moved = tmp_path / "renamed"
    shutil.copytree(tiny_run, moved)  # run_info.json still names the old place
    before = json.loads((moved / "diagnostics" / "run_info.json").read_text())
    caplog.set_level("INFO", logger="trainer")
    best = app.run(compose([*TINY_ARGS, "trainer.deterministic=false"], diag_dir=moved / "diagnostics"), moved)
    after = json.loads((moved / "diagnostics" / "run_info.json").read_text())
    assert after["run_id"] == before["run_id"] and after["run_dir"] == str(moved.resolve())
    assert best == json.loads((moved / "diagnostics" / "status.json").read_text())["best_val_accuracy"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"the run directory moved from {before['run_dir']} to {moved.resolve()}" in m for m in messages)
    assert messages[-1].endswith(f"; the run is in {moved.resolve()}")


# ───────────────────────────── the analysis' side ─────────────────────────────


def test_a_jsonl_file_holding_an_epoch_twice_is_named_in_a_warning(tmp_path):
    from rundir.jsonl import read_jsonl

    path = tmp_path / "train_diagnostics.jsonl"
    path.write_text("".join(json.dumps({"epoch": e, "loss": 1.0 / e}) + "\n" for e in (1, 2, 3, 1, 2, 3)))
    warnings: list[str] = []
    assert len(read_jsonl(path, warnings)) == 6
    assert warnings == [f"{path}: 3 epoch(s) recorded more than once (1, 2, 3; epoch 1 at lines 1 and 4): two "
                        f"processes wrote this run at once, or records were appended to another run's; each "
                        f"epoch's last record is read"]
    path.write_text("".join(json.dumps({"epoch": e, "loss": 1.0}) + "\n" for e in (1, 2, 3)))
    warnings.clear()
    read_jsonl(path, warnings)
    assert warnings == []  # a resume rewrites nothing twice


def test_an_lr_that_jumps_back_up_is_no_smooth_schedule():
    """A finished 3-epoch cosine run resumed for 6: its LR goes to 0 and back up; warmup or one-cycle rise
    before they fall and are smooth."""
    import math

    from analysis import run_report
    from rundir.read import run_from_records

    def section(lrs):
        train = [{"epoch": e, "loss": 1.0, "accuracy": 0.5, "learning_rate": lr} for e, lr in enumerate(lrs, 1)]
        return run_report.lr_section(run_from_records(train, []))

    cosine = [0.05 * 0.5 * (1 + math.cos(math.pi * t / 3)) for t in range(3)]
    jumped = section([*cosine, 0.0, 0.025, 0.0125])
    assert ("the LR jumped back up at epoch 5: 0 -> 0.025 after decaying from 0.05 (a restarted schedule, e.g. a "
            "resume with another trainer.epochs)") in jumped["lines"]
    assert "the LR follows a smooth schedule (no discrete cuts)" not in jumped["lines"]
    assert [r["epoch"] for r in jumped["data"]["rises"]] == [5]
    warmup_then_cosine = [0.01 * k for k in range(1, 6)] + [0.05 * 0.5 * (1 + math.cos(math.pi * t / 8)) for t in range(8)]
    for smooth in (warmup_then_cosine, cosine, [0.1, 0.1, 0.01, 0.01]):
        assert section(smooth)["data"]["rises"] == []


def _old_report(target: Path) -> dict:
    target.mkdir()
    (target / "report.md").write_text("old report\n")
    (target / "summary.json").write_text("{}\n")
    return snapshot(target)


def test_report_files_are_written_all_or_nothing(tmp_path):
    target = tmp_path / "out"
    before = _old_report(target)

    def fails(path: Path) -> None:  # the disk fills up at the last file
        path.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    files = {"report.md": "new report\n", "summary.json": "{\"new\": 1}\n", "report.png": fails}
    with pytest.raises(RunFileError, match=f"cannot write {target / 'report.png'}: No space left on device"):
        write_all_or_nothing(target, files)
    assert digest(snapshot(target)) == digest(before)  # not one new file among the old ones
    assert sorted(p.name for p in target.iterdir()) == ["report.md", "summary.json"]  # no temporary left

    (target / "report.png").mkdir()  # a directory in the way: found before anything moves
    with pytest.raises(RunFileError, match="report.png: Is a directory"):
        write_all_or_nothing(target, {"report.md": "new report\n", "report.png": "x"})
    assert (target / "report.md").read_text() == "old report\n"

    fresh = tmp_path / "new" / "out"  # a new directory appears whole, by one rename
    assert write_all_or_nothing(fresh, {"a.md": "a\n", "b.md": "b\n"}) == [fresh / "a.md", fresh / "b.md"]
    assert sorted(p.name for p in fresh.parent.iterdir()) == ["out"]


def test_a_link_in_a_sweeps_analysis_folder_is_replaced_never_written_through(sweep_2x2, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(sweep_2x2, sweep, ignore=shutil.ignore_patterns("checkpoints"))
    outside = tmp_path / "precious.txt"
    outside.write_text("not a report\n")
    analysis = sweep / "analysis"
    shutil.rmtree(analysis, ignore_errors=True)
    analysis.mkdir()
    (analysis / "report.md").symlink_to(outside)
    proc = run_module("analysis", [str(sweep)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert outside.read_text() == "not a report\n"
    assert not (analysis / "report.md").is_symlink() and "Sweep" in (analysis / "report.md").read_text()

    shutil.rmtree(analysis)  # the folder itself a link to elsewhere: not followed, a warning, the report printed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    analysis.symlink_to(elsewhere)
    proc = run_module("analysis", [str(sweep)], timeout=120)
    assert proc.returncode == 0 and list(elsewhere.iterdir()) == []
    assert f"warning: cannot write reports to {analysis}: it is a link (to {elsewhere}), not followed" in proc.stderr


# ───────────────────────────── one job per run directory ─────────────────────────────


def test_a_resume_may_change_how_and_where_it_runs_but_not_what(tiny_run, tmp_path):
    """Overrides of the launch itself (workers, device, logger, epochs of a constant schedule) keep the job;
    any other one makes it another job's run (the catalogue's rows show those refusals)."""
    from trainer import app, checkpoint
    from trainer.job import Job

    assert checkpoint.identity_overrides(["data.num_workers=2", "trainer.device=cpu", "logger=none",
                                          "+diagnostics.update_every=2", "hydra/launcher=joblib",
                                          "optimizer.lr=0.1", "~fault"]) == ["optimizer.lr=0.1", "~fault"]
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    job = Job(overrides=[*TINY_ARGS, "data.num_workers=0", "trainer.device=cpu", "logger=none"])
    best = app.run(compose([*TINY_ARGS, "trainer.deterministic=false", "data.num_workers=0"],
                           diag_dir=run / "diagnostics"), run, job=job)
    assert best == json.loads((run / "diagnostics" / "status.json").read_text())["best_val_accuracy"]


def test_a_refused_launch_puts_back_the_hydra_files_the_last_accepted_one_wrote(tmp_path):
    from rundir.format import HYDRA_ACCEPTED
    from trainer.job import Job

    hydra = tmp_path / ".hydra"
    hydra.mkdir()
    ours = {"config.yaml": b"optimizer:\n  lr: 0.05\n", "overrides.yaml": b"- optimizer.lr=0.05\n",
            "hydra.yaml": b"hydra: {}\n"}
    for name, data in ours.items():
        (hydra / name).write_bytes(data)
    first = Job(run_dir=tmp_path, written=dict(ours))
    first.accept()  # passed every check
    assert {p.name: p.read_bytes() for p in (tmp_path / HYDRA_ACCEPTED).iterdir()} == ours
    (hydra / "overrides.yaml").write_bytes(b"- optimizer.lr=-1\n")  # Hydra, for the next launch...
    Job(run_dir=tmp_path, written={"overrides.yaml": b"- optimizer.lr=-1\n"}).refused()  # ...which is refused
    assert {name: (hydra / name).read_bytes() for name in ours} == ours
    Job().refused()  # no Hydra directory known (train() without Hydra): nothing to do
