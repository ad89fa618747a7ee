"""What Hydra says about this launch: the job's identity, and its `.hydra/` files.

A run directory belongs to one job. Its identity is the Hydra job number (in a sweep), the command line's
overrides and the seed; the checkpoint saves it, and a launch whose identity differs is refused instead of
"resuming" someone else's run (`trainer.checkpoint.check_job`): a fixed `hydra.sweep.subdir` that gives
job 2 the directory of job 1, a sweep rerun into the same `hydra.sweep.dir` with other values.

Hydra writes `.hydra/{config,hydra,overrides}.yaml` before the job function runs, so before any check
of ours: a launch refused later would leave the run saying it was made by the refused command. A launch
that passes every check keeps a copy of the files as Hydra wrote them for it (`rundir.format.HYDRA_ACCEPTED`);
a refused launch puts that copy back.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from rundir.files import atomic_write
from rundir.format import HYDRA_ACCEPTED, HYDRA_CONFIG, HYDRA_DIR, HYDRA_OVERRIDES, HYDRA_RUNTIME

log = logging.getLogger("trainer")

HYDRA_FILES = (HYDRA_CONFIG, HYDRA_RUNTIME, HYDRA_OVERRIDES)
MAX_HYDRA_FILE_BYTES = 1 << 20  # Hydra's YAML of a config is a few KiB; a larger file is not copied


@dataclass
class Job:
    num: Optional[int] = None  # hydra.job.num in a multirun; None in a single run
    overrides: Optional[list[str]] = None  # hydra.overrides.task; None when train() is called without Hydra
    run_dir: Optional[Path] = None  # set when Hydra wrote <run_dir>/.hydra/ for this launch
    written: dict[str, bytes] = field(default_factory=dict)  # .hydra/ as Hydra wrote it for this launch
    accepted: bool = False

    @classmethod
    def from_hydra(cls, hc, run_dir: Path, multirun: bool) -> "Job":
        """The launch as HydraConfig describes it; reads the .hydra/ files Hydra has just written."""
        job = cls(num=int(hc.job.num) if multirun else None, overrides=[str(o) for o in hc.overrides.task],
                  run_dir=Path(run_dir))
        job.written = _read_files(Path(run_dir) / HYDRA_DIR)
        return job

    def identity(self) -> dict:
        """What the checkpoint saves (the seed is in its config)."""
        return {"num": self.num, "overrides": self.overrides}

    def accept(self) -> None:
        """Every check passed: .hydra/ is this launch's (put back as Hydra wrote it, in case a launch
        refused meanwhile restored an older copy), and the copy a later refused launch restores."""
        if self.run_dir is None or not self.written:
            return
        self.accepted = True
        for directory in (self.run_dir / HYDRA_DIR, self.run_dir / HYDRA_ACCEPTED):
            _write_files(directory, self.written)

    def accept_again(self) -> None:
        """At the run's end: the run that owned the directory has the last word on .hydra/ (a launch refused
        while it ran may have put back an older copy between Hydra's write and this one's accept)."""
        if self.accepted:
            _write_files(self.run_dir / HYDRA_DIR, self.written)

    def refused(self) -> None:
        """This launch was refused: put back .hydra/ as the last accepted launch left it (best effort; a run
        made before the copy existed, or a read-only directory, keeps what Hydra wrote)."""
        if self.run_dir is None or self.accepted:
            return
        kept = _read_files(self.run_dir / HYDRA_ACCEPTED)
        if kept and kept != _read_files(self.run_dir / HYDRA_DIR):
            _write_files(self.run_dir / HYDRA_DIR, kept)


def _read_files(directory: Path) -> dict[str, bytes]:
    """The Hydra files of directory that are regular files of a plausible size ({} when none)."""
    out = {}
    for name in HYDRA_FILES:
        path = directory / name
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_HYDRA_FILE_BYTES:
                out[name] = path.read_bytes()
    return out


def _write_files(directory: Path, files: dict[str, bytes]) -> None:
    """Each file replaced atomically (a link in its place is replaced, never written through)."""
    try:
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            return  # not a folder of ours to write into
        for name, data in files.items():
            atomic_write(directory / name, lambda f, data=data: f.write(data))
    except OSError as e:
        log.debug("could not write %s: %s", directory, e)

