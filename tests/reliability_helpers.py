"""Helpers of the reliability tests: the tiny deterministic run, crash-point launches, file checks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Optional

from conftest import ROOT, run_trainer

# A run small enough that start-up dominates (about 11 steps and 3 validation batches per epoch), with
# random augmentation and a per-step schedule, so that a resume is exact only if the random state,
# the data order and the scheduler state all come back.
TINY_ARGS = ["trainer.device=cpu", "trainer.deterministic=true", "trainer.epochs=3", "model.width=4",
             "data.image_size=16", "data.batch_size=128", "augmentation=basic", "scheduler=cosine"]
STEPS_PER_EPOCH, VAL_BATCHES = 11, 3  # digits: 1438 train // 128, ceil(359 / 128)
# One thread: bit-exactness needs the same thread count in every run (CPU reductions split by thread),
# and on a busy 2-core machine one thread per process is also several times faster than two.
TINY_ENV = {"OMP_NUM_THREADS": "1"}

CRASHPOINTS = Path(__file__).resolve().parent / "crashpoints"  # its sitecustomize.py reads TRAINDX_TEST_CRASH

# Every launch into an existing run directory appends to its log: a failed launch may add lines, nothing
# else. (Hydra also rewrites .hydra/ on every launch, facebookresearch/hydra#2103; a refused launch puts it
# back, trainer/job.py.)
HYDRA_APPENDS = ("train.log",)


def launch(run_dir: Path, crash: Optional[str] = None, extra: tuple = (), env: Optional[dict] = None):
    """`python -m trainer hydra.run.dir=run_dir TINY_ARGS`, optionally signalled at a crash point."""
    full_env = dict(TINY_ENV, **(env or {}))
    if crash:
        full_env.update(TRAINDX_TEST_CRASH=crash, PYTHONPATH=f"{CRASHPOINTS}{os.pathsep}{ROOT}")
    return run_trainer([f"hydra.run.dir={run_dir}", *TINY_ARGS, *extra], env=full_env, timeout=240)


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a finished run that the trainer accepts as its own (run_info.json names its directory)."""
    shutil.copytree(src, dst)
    info_path = dst / "diagnostics" / "run_info.json"
    info = json.loads(info_path.read_text())
    info["run_dir"] = str(dst.resolve())
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return dst


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under directory -> its content (small runs: contents, not just hashes, for clear diffs)."""
    out = {}
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file():
            out[path.relative_to(directory).as_posix()] = path.read_bytes()
    return out


def digest(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest()[:16] for name, data in files.items()}


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    def refuse(constant):
        raise ValueError(f"non-JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def read_jsonl_strict(path: Path) -> tuple[list[dict], bytes]:
    """(records of the newline-terminated lines, unterminated tail); every complete line must be strict JSON."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    body, _, tail = data.rpartition(b"\n")  # no newline at all: body empty, tail the whole file
    lines = body.decode("utf-8").splitlines() if body else []
    return [strict_json(line) for line in lines], tail


@contextlib.contextmanager
def no_hang(seconds: int):
    """A block that takes longer than seconds fails: a hang (a FIFO read, a link loop, an endless run) fails its test, never the suite (SIGALRM interrupts a blocking read too)."""
    def expire(_signum, _frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
