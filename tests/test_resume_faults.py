"""Proof that nothing is lost: stop a training subprocess anywhere, rerun the same command in the same
run directory, and the result equals an uninterrupted run with the same seed, bit for bit.

Compared: every diagnostics JSONL line (timing fields excepted: rundir.format.TIMING_FIELDS) and the
whole final checkpoint (model, optimizer, scheduler, random state; not its run_id). The interruptions
are SIGKILL (nothing runs after it), SIGTERM and SIGUSR2 (the trainer finishes the step, saves and
exits 128+signum), delivered at exact moments through the test-only crash points of
tests/crashpoints/sitecustomize.py, or (slow suite) at random wall-clock times from outside.
After every interruption no file may be corrupt: checkpoints load, JSON files parse, and every complete
JSONL line is strict JSON equal to the reference's; only a torn tail is allowed, and only when the
process died while appending it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, compose
from reliability_helpers import (STEPS_PER_EPOCH, TINY_ARGS, TINY_ENV, VAL_BATCHES, copy_run, launch,
                                 read_jsonl_strict, strict_json)
from trainer import checkpoint
from rundir.format import TIMING_FIELDS

EPOCHS = 3  # TINY_ARGS
JSONL = ("train_diagnostics.jsonl", "val_diagnostics.jsonl")
KILLED = -signal.SIGKILL  # subprocess returncode of a process killed by a signal


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}


def reference(run_dir: Path) -> dict[str, list[dict]]:
    out = {}
    for name in JSONL:
        records, tail = read_jsonl_strict(run_dir / "diagnostics" / name)
        assert not tail and [r["epoch"] for r in records] == list(range(1, EPOCHS + 1))
        out[name] = [comparable(r) for r in records]
    return out


def temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for d in ("checkpoints", "diagnostics") for p in (run_dir / d).glob(".*.tmp"))


def check_intact(run_dir: Path, ref: dict, torn_tail_allowed: bool = False) -> dict:
    """After an interruption: every file readable; JSONL lines a prefix of the reference's. Returns last.pt."""
    diag = run_dir / "diagnostics"
    for name in ("status.json", "run_info.json"):
        if (diag / name).exists():
            strict_json((diag / name).read_text())  # replaced atomically: never half written
    for name in JSONL:
        records, tail = read_jsonl_strict(diag / name)
        assert [comparable(r) for r in records] == ref[name][: len(records)], name
        assert not tail or torn_tail_allowed, f"{name} ends in a torn line: {tail[:80]!r}"
    for path in (run_dir / "checkpoints").glob("*.pt"):
        checkpoint.load(path)  # CheckpointError if corrupt or truncated
    last = run_dir / "checkpoints" / "last.pt"
    return checkpoint.load(last) if last.exists() else {}


def assert_identical(a, b, where: str = "checkpoint") -> None:
    """Bitwise equality of nested checkpoint contents (tensors by value and dtype)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_as_reference(run_dir: Path, ref_dir: Path, ref: dict, config_differs: tuple = ()) -> None:
    """The finished run equals the uninterrupted one: every JSONL line, the last and best checkpoints.

    config_differs: "group.key" settings this run was launched with differently (not compared)."""
    for name in JSONL:
        records, tail = read_jsonl_strict(run_dir / "diagnostics" / name)
        assert not tail
        assert [comparable(r) for r in records] == ref[name], name
    for name in (checkpoint.LAST, checkpoint.BEST):
        ours = checkpoint.load(run_dir / "checkpoints" / name)
        theirs = checkpoint.load(ref_dir / "checkpoints" / name)
        for state in (ours, theirs):
            state.pop("run_id")  # random per run, by design
            if config_differs:
                state.pop("job")  # its overrides name the settings launched differently
            state["config"]["diagnostics"].pop("dir")  # each run's own directory
            for key in config_differs:
                group, _, name = key.partition(".")
                state["config"][group].pop(name)
        assert_identical(ours, theirs, name)
    # The final weights once more, exactly as a user would load them.
    ours = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    theirs = torch.load(ref_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    status = strict_json((run_dir / "diagnostics" / "status.json").read_text())
    ref_status = strict_json((ref_dir / "diagnostics" / "status.json").read_text())
    assert status["status"] == "completed" and status["epoch"] == EPOCHS
    assert status["best_val_accuracy"] == ref_status["best_val_accuracy"]
    assert temporaries(run_dir) == []  # leftovers of killed writes are cleaned up on resume


def crash(run_dir: Path, spec: str, expect_rc: int, extra: tuple = ()) -> subprocess.CompletedProcess:
    proc = launch(run_dir, crash=spec, extra=extra)
    assert "crashpoints: " in proc.stderr, f"crash point {spec} never reached:\n{proc.stderr[-2000:]}"
    assert proc.returncode == expect_rc, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return proc


def finish(run_dir: Path, extra: tuple = ()) -> subprocess.CompletedProcess:
    proc = launch(run_dir, extra=extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


# ───────────────────────────── default suite: chosen windows ─────────────────────────────


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_sigkill_in_validation_in_a_checkpoint_write_and_in_a_jsonl_append_loses_nothing(tiny_run, tmp_path):
    rng = random.Random(5)  # seeded: the same moments on every run of the suite
    ref = reference(tiny_run)
    run = copy_run(tiny_run, tmp_path / "run")  # a finished run's directory, started over below

    # 1. trainer.resume=false, killed inside epoch 1's validation, before any checkpoint of its own: the
    #    old run's checkpoints are gone with its JSONL lines, so the next launch starts from scratch
    #    instead of continuing the old run on top of emptied files.
    crash(run, f"val:{rng.randint(1, VAL_BATCHES)}:KILL", KILLED, extra=("trainer.resume=false",))
    assert check_intact(run, ref) == {} and not (run / "checkpoints" / "best.pt").exists()
    assert read_jsonl_strict(run / "diagnostics" / JSONL[0]) == ([], b"")

    # 2. Killed inside epoch 2's validation: last.pt holds epoch 1, the JSONL files epoch 1.
    crash(run, f"val:{rng.randint(VAL_BATCHES + 1, 2 * VAL_BATCHES)}:KILL", KILLED)
    assert check_intact(run, ref)["epoch"] == 1
    assert len(read_jsonl_strict(run / "diagnostics" / JSONL[0])[0]) == 1

    # 3. Resumed at epoch 1, killed while writing epoch 2's last.pt: half of it sits in a temporary
    #    file, last.pt is still epoch 1's, and the JSONL files already hold epoch 2 (resume cuts it).
    crash(run, "last.pt:1:KILL", KILLED)
    assert check_intact(run, ref)["epoch"] == 1
    assert any(name.startswith(".last.pt.") for name in temporaries(run))
    assert len(read_jsonl_strict(run / "diagnostics" / JSONL[0])[0]) == 2

    # 3b. Resumed at epoch 1 again, killed while writing epoch 2's checksum, which goes before last.pt: the
    #     old checksum file still lists the epoch-1 last.pt, which loads and verifies.
    crash(run, "last.pt.sha256:1:KILL", KILLED)
    assert check_intact(run, ref)["epoch"] == 1
    assert any(name.startswith(".last.pt.sha256.") for name in temporaries(run))

    # 4. Resumed at epoch 1 again, killed halfway through appending an epoch-3 record: a torn tail.
    crash(run, f"jsonl:{rng.randint(3, 4)}:KILL", KILLED)
    assert check_intact(run, ref, torn_tail_allowed=True)["epoch"] == 2
    assert any(read_jsonl_strict(run / "diagnostics" / name)[1] for name in JSONL)  # the torn line is there
    assert temporaries(run) == []  # step 3's torn checkpoint was removed by this launch

    finish(run)
    assert "resumed from" in (run / "train.log").read_text()
    assert_same_as_reference(run, tiny_run, ref)


@pytest.mark.slow  # 12 s; tests/test_data.py checks the same batches in process, in the default suite
def test_dataloader_workers_resume_exactly_and_draw_what_the_main_process_draws(tiny_run, tmp_path):
    """With data.num_workers=2 (persistent workers, random augmentation), SIGTERM inside epoch 2, then a
    resume: the result is the reference run's, bit for bit, and that reference loaded its batches in the
    main process. Each batch's augmentation comes from (seed, epoch, rank, batch number) alone."""
    ref, run = reference(tiny_run), tmp_path / "run"
    workers = ("data.num_workers=2",)
    crash(run, f"step:{STEPS_PER_EPOCH + 4}:TERM", 128 + signal.SIGTERM, extra=workers)
    assert check_intact(run, ref)["step"] == 4
    finish(run, extra=workers)
    assert_same_as_reference(run, tiny_run, ref, config_differs=("data.num_workers",))


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_sigterm_during_set_up_is_recorded_as_preempted(tiny_run, tmp_path):
    """Once status.json says "running", a signal in the rest of the set-up (here: while run_info.json is
    written) is handled like one mid-epoch (whose resume the test below follows to the end): the first
    step, a checkpoint after it, status "preempted", exit 143."""
    ref, run = reference(tiny_run), tmp_path / "run"
    proc = crash(run, "run_info.json:1:TERM", 128 + signal.SIGTERM)
    assert "preempted: stopped by signal SIGTERM" in proc.stderr
    assert strict_json((run / "diagnostics" / "status.json").read_text())["status"] == "preempted"
    saved = check_intact(run, ref)
    assert (saved["epoch"], saved["step"]) == (0, 1)


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_sigterm_mid_epoch_checkpoints_marks_preempted_and_resumes_exactly(tiny_run, tmp_path):
    rng = random.Random(7)
    ref, run = reference(tiny_run), tmp_path / "run"
    step = rng.randint(STEPS_PER_EPOCH + 2, 2 * STEPS_PER_EPOCH - 1)  # strictly inside epoch 2

    proc = crash(run, f"step:{step}:TERM", 128 + signal.SIGTERM)
    assert "preempted: stopped by signal SIGTERM" in proc.stderr
    status = strict_json((run / "diagnostics" / "status.json").read_text())
    assert status["status"] == "preempted" and "SIGTERM" in status["error"]
    saved = check_intact(run, ref)
    # The step in flight when the signal came was finished, then saved: epoch 1 done, `step` steps of epoch 2.
    assert (saved["epoch"], saved["step"]) == (1, step - STEPS_PER_EPOCH)
    assert saved["collector"]["step"] == step - STEPS_PER_EPOCH  # epoch 2's diagnostics so far
    assert len(read_jsonl_strict(run / "diagnostics" / JSONL[0])[0]) == 1

    finish(run)
    assert f"at epoch 1, step {step - STEPS_PER_EPOCH}" in (run / "train.log").read_text()
    assert_same_as_reference(run, tiny_run, ref)


def test_stop_signal_chains_to_the_previous_handler(tmp_path, monkeypatch, capsys, one_thread):
    """submitit installs its own SIGUSR2 handler (it requeues the job); the trainer calls it after saving."""
    from trainer import app

    calls = []
    _signalling_steps(monkeypatch, signal.SIGUSR2, (3,))

    def submitit_like(signum, _frame):
        calls.append(signum)

    original = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        cfg = compose(SMALL, diag_dir=tmp_path / "diagnostics")
        with pytest.raises(SystemExit) as exit_:
            app.run(cfg, tmp_path)
        assert signal.getsignal(signal.SIGUSR2) is submitit_like  # the trainer put it back on the way out
    finally:
        signal.signal(signal.SIGUSR2, original)
    assert exit_.value.code == 128 + signal.SIGUSR2
    assert calls == [signal.SIGUSR2]  # the previous handler ran once, after the checkpoint
    saved = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["step"]) == (0, 3)
    assert strict_json((tmp_path / "diagnostics" / "status.json").read_text())["status"] == "preempted"
    assert "preempted: stopped by signal SIGUSR2" in capsys.readouterr().err


def _signalling_steps(monkeypatch, signum: int, at_steps: tuple[int, ...]) -> None:
    """Send `signum` to this process inside the given training steps (counted from 1; a step named
    twice gets it twice)."""
    from trainer.diagnostics import Collector

    monkeypatch.undo()  # a fresh count, on the real method
    grad_norm, steps = Collector.grad_norm, []

    def signalling_grad_norm(self):
        steps.append(1)
        for _ in range(at_steps.count(len(steps))):
            os.kill(os.getpid(), signum)
        return grad_norm(self)

    monkeypatch.setattr(Collector, "grad_norm", signalling_grad_norm)


SMALL = ["trainer.device=cpu", "trainer.epochs=2", "model.width=4", "data.image_size=16", "data.batch_size=128"]


def test_ctrl_c_stops_after_the_step_with_a_checkpoint_and_twice_stops_at_once(tmp_path, monkeypatch, capsys,
                                                                               one_thread):
    from trainer import app

    # Once: like SIGTERM, the step finishes, a checkpoint is written, exit 130 (128 + SIGINT).
    _signalling_steps(monkeypatch, signal.SIGINT, (3,))
    with pytest.raises(SystemExit) as exit_:
        app.run(compose(SMALL, diag_dir=tmp_path / "once" / "diagnostics"), tmp_path / "once")
    assert exit_.value.code == 130 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert (checkpoint.load(tmp_path / "once" / "checkpoints" / "last.pt")["step"]) == 3
    assert strict_json((tmp_path / "once" / "diagnostics" / "status.json").read_text())["status"] == "preempted"
    err = capsys.readouterr().err
    assert "Ctrl-C: stopping after this step" in err and "preempted: stopped by signal SIGINT" in err

    # Twice: the second one interrupts at once; no new checkpoint, and status.json says so.
    _signalling_steps(monkeypatch, signal.SIGINT, (2, 2))
    with pytest.raises(KeyboardInterrupt):
        app.run(compose(SMALL, diag_dir=tmp_path / "twice" / "diagnostics"), tmp_path / "twice")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not (tmp_path / "twice" / "checkpoints" / "last.pt").exists()
    status = strict_json((tmp_path / "twice" / "diagnostics" / "status.json").read_text())
    assert status["status"] == "preempted" and "Ctrl-C" in status["error"]


# ───────────────────────────── slow suite: random moments ─────────────────────────────

# event -> inclusive range of its count within one process that keeps the crash inside the run
EVENTS = {
    "step": (1, 2 * STEPS_PER_EPOCH), "val": (1, 2 * VAL_BATCHES), "jsonl": (1, 4),
    "last.pt": (1, 2), "status.json": (1, 3), "run_info.json": (1, 1),
    "train_diagnostics.jsonl": (1, 1),  # only written when resume cuts it back
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_crash_points_lose_nothing(tiny_run, tmp_path, seed):
    rng = random.Random(seed)
    ref, run = reference(tiny_run), tmp_path / "run"
    for _ in range(5):
        event = rng.choice(list(EVENTS))
        signame = rng.choice(["KILL", "KILL", "TERM", "USR2"])
        spec = f"{event}:{rng.randint(*EVENTS[event])}:{signame}"
        proc = launch(run, crash=spec)
        signum = getattr(signal, "SIG" + signame)
        assert "Traceback" not in proc.stderr, spec
        # KILL: dead at once. TERM/USR2: 128+signum after a checkpoint; 0 when the run had just finished
        # its last epoch; -signum when it came before the handlers were installed (set-up: nothing lost).
        assert proc.returncode in (-signum, 128 + signum, 0), (spec, proc.returncode, proc.stderr[-2000:])
        if proc.returncode == 128 + signum:
            assert strict_json((run / "diagnostics" / "status.json").read_text())["status"] == "preempted"
        check_intact(run, ref, torn_tail_allowed=signame == "KILL" and event == "jsonl")
        if proc.returncode == 0:
            break
    finish(run)
    assert_same_as_reference(run, tiny_run, ref)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_signals_from_outside_at_random_times_lose_nothing(tiny_run, tmp_path, seed):
    """No crash points: the test signals the process from outside, wherever it happens to be. To spread the
    moments over the whole run on a machine of any speed, it waits for a random number (0 or 1) of new
    epoch lines in the train JSONL, then a random delay, then sends SIGKILL or SIGTERM."""
    rng = random.Random(100 + seed)
    ref, run = reference(tiny_run), tmp_path / "run"
    train_jsonl = run / "diagnostics" / JSONL[0]
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    env.update(TINY_ENV, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "trainer", f"hydra.run.dir={run}", *TINY_ARGS]
    interrupted = 0
    for _ in range(6):
        target = _lines(train_jsonl) + rng.randint(0, 1)
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _lines(train_jsonl) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        signum = rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGTERM])
        if proc.poll() is None:
            proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=240)
        assert "Traceback" not in stderr
        assert proc.returncode in (0, -signum, 128 + signum), (proc.returncode, stderr[-2000:])
        check_intact(run, ref)
        if proc.returncode == 0:
            break
        interrupted += 1
    assert interrupted >= 1
    finish(run)
    assert_same_as_reference(run, tiny_run, ref)
