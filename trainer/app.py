"""What one Hydra job does: validate, train, and turn failures into one clear line.

Bad input (`UserError`) never shows a traceback. In a single run it prints `error: ...` and exits
with status 2; in a sweep it fails only its own job (siblings go on) and Hydra reports it compactly.
`status.json` records the failure when the diagnostics directory is this run's own.

Under torchrun only rank 0 reports: bad input is the same for every rank, so another rank says
nothing unless rank 0 has not stopped it within `PEER_GRACE_S` (an error of its own, e.g. a missing
dataset on its node), and then names its rank.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from rundir.files import RunFileError, Status
from rundir.format import DIAGNOSTICS, STATUS

from rundir.errorline import single_line
from rundir.lock import hold

from . import preflight
from .config import validate
from .errors import USER_ERRORS, RunDirError, StopRun
from .hydra_errors import EXIT_BAD_INPUT, JobFailed
from .job import Job
from .ranks import Ranks
from .signals import Preempted

log = logging.getLogger("trainer")

EXIT_STOPPED = 3  # a finding listed in trainer.stop_on ended the run
PEER_GRACE_S = 5.0  # a rank > 0 waits this long for the launcher to stop it before reporting an error


def run(cfg: DictConfig, run_dir: Path, multirun: bool = False, job: Optional[Job] = None) -> float:
    """job: what Hydra says about this launch (trainer/job.py); a refused launch puts its .hydra/ back."""
    diag_dir: Optional[Path] = None
    ranks = Ranks()
    job = job or Job()
    with contextlib.ExitStack() as locks:  # held until the run ends, however it ends
        try:
            ranks = Ranks.from_env()
            if not ranks.is_main:
                logging.getLogger("trainer").setLevel(logging.CRITICAL + 1)  # rank 0 logs for the run
            typed = validate(cfg)
            if multirun:
                typed.diagnostics.dir = str(job_diagnostics_dir(Path(typed.diagnostics.dir), run_dir))
            diag_dir = Path(typed.diagnostics.dir)
            if ranks.is_main:  # rank 0 writes the run's files (other ranks' run_dir is a placeholder until shared)
                # One writer per run directory, before any check reads what another writer may be changing.
                locks.enter_context(hold(run_dir, WAIT_OR_MOVE))
                preflight.check_run_paths(run_dir, diag_dir, typed.trainer.resume)
                if not diag_dir.resolve().is_relative_to(run_dir.resolve()):  # DIAGNOSTICS_DIR: its own lock
                    locks.enter_context(hold(diag_dir, WAIT_OR_MOVE_DIAGNOSTICS))
            preflight.check_data_root(typed.data.root)
            from . import distributed
            from .loop import train  # imports torch: only once the config is known to be good

            try:
                return train(typed, run_dir, ranks=ranks, job=job)
            finally:
                distributed.close()
        except USER_ERRORS as e:
            job.refused()
            # A RunDirError: that directory is not this run's (or cannot be written), so nothing is recorded in it.
            if ranks.is_main and not isinstance(e, (RunDirError, RunFileError)):
                _record_failure(diag_dir or _default_diag_dir(cfg, run_dir, multirun), str(e))
            return _fail(f"error: {e}", EXIT_BAD_INPUT, multirun, ranks)
        except StopRun as e:
            return _fail(f"error: run stopped by finding {e}", EXIT_STOPPED, multirun, ranks)
        except Preempted as e:  # carries its own exit path
            return _preempted(e, multirun, ranks)
        finally:
            job.accept_again()


WAIT_OR_MOVE = "wait for it to end, or choose another hydra.run.dir (hydra.sweep.dir in a sweep)"
WAIT_OR_MOVE_DIAGNOSTICS = "wait for it to end, or choose another diagnostics directory (DIAGNOSTICS_DIR or diagnostics.dir)"


def job_diagnostics_dir(diag_dir: Path, run_dir: Path) -> Path:
    """In a multirun, a diagnostics directory outside the job's run directory (an exported DIAGNOSTICS_DIR)
    would be every job's: each job gets its own subfolder of it, named as its run directory (0, 1, ...)."""
    if diag_dir.resolve().is_relative_to(run_dir.resolve()):
        return diag_dir
    mine = diag_dir / run_dir.name
    log.info("multirun: this job's diagnostics go to %s (a subfolder of %s per job)", mine, diag_dir)
    return mine


def _default_diag_dir(cfg: DictConfig, run_dir: Path, multirun: bool) -> Path:
    try:
        named = str(cfg.diagnostics.dir)
    except Exception:  # noqa: BLE001 - the config itself may be what is broken
        named = ""
    # An empty name (DIAGNOSTICS_DIR set to nothing) would be the current directory.
    if not named.strip():
        return run_dir / DIAGNOSTICS
    return job_diagnostics_dir(Path(named), run_dir) if multirun else Path(named)


def _record_failure(diag_dir: Path, message: str) -> None:
    """status.json says why, unless it belongs to an earlier run in a reused directory."""
    if (diag_dir / STATUS).exists():
        return
    try:
        Status(diag_dir / STATUS, epochs=0).fail(message)
    except OSError:
        pass


def _log_to_file(message: str) -> None:
    """The run log keeps the error too; the terminal gets it once, on stderr."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _fail(message: str, code: int, multirun: bool, ranks: Ranks = Ranks()) -> float:
    message = single_line(message)  # a newline in an echoed value would make it two lines
    if not ranks.is_main:
        # Rank 0 meets the same bad input and says it once; torchrun then stops this process.
        time.sleep(PEER_GRACE_S)
        message = f"{message} (rank {ranks.rank})"
    _log_to_file(message)
    if multirun:  # fails this job only; the sweep goes on and `entry()` reports it at the end
        raise JobFailed(message, code)
    print(message, file=sys.stderr)
    raise SystemExit(code)


def _preempted(e, multirun: bool, ranks: Ranks = Ranks()) -> float:
    message = f"preempted: {e}"
    if ranks.is_main:
        _log_to_file(message)
        print(message, file=sys.stderr)
    # submitit's own handler requeues the job; Python's Ctrl-C handler would raise KeyboardInterrupt.
    if callable(e.previous_handler) and e.previous_handler is not signal.default_int_handler:
        e.previous_handler(e.signum, None)
    raise SystemExit(128 + int(e.signum))
