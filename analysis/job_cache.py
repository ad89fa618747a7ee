"""A sweep's analysed jobs kept beside its report, so that analysing the sweep again analyses only the jobs
whose files changed: the work is done once per run.

Layer 4 (reports), beside jobs.py. The cache is one JSON Lines file in the directory the report goes to (the
sweep's analysis/ or --out; never anywhere else): a header line with the key of everything outside the jobs
that the analysis depends on, then one line per job with the signature of its files. A job is taken from the
cache only when the header key (the analysis code, the import options, the LR range tests in the folders
above the sweep) and its own signature (every file under its directory: name, size, modification time) match.

Plain JSON, read as data: nothing in it is executed, and a line that does not parse as a job is analysed again.
A running job is never cached (its stale note depends on the clock), nor one whose directory holds more than
MAX_FILES files (stat-ing them would cost more than analysing it).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from rundir.format import LR_FIND_DIR
from rundir.lr_find import ANCESTORS

from .findings import Finding, Recommendation
from .importers import ImportOptions
from .sweep import Job

CACHE_FILE = "jobs_cache.jsonl"  # in the sweep report's directory
FORMAT = 1  # bumped when a line's layout changes
MAX_FILES = 500  # files under one job directory that the signature stats; more: the job is not cached
MAX_BYTES_PER_JOB = 4 << 20  # a longer line is not read (the curves of 100,000 epochs take about 3 MB)
_PACKAGES = ("analysis", "rundir")  # the code whose change invalidates every cached job


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the analysis' own source (every .py file of analysis/ and rundir/)."""
    h = hashlib.sha1()
    root = Path(__file__).resolve().parents[1]
    for pkg in _PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def signature(job_dir: Path) -> Optional[list]:
    """[relative path, size, mtime_ns] of every file under job_dir (links followed to files, not into
    directories), sorted; None when it cannot be read in full or holds more than MAX_FILES files."""
    found: list = []
    stack = [job_dir]
    try:
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as entries:
                for e in entries:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(Path(e.path))
                        continue
                    st = e.stat()  # follows a link: the file the analysis reads
                    found.append([os.path.relpath(e.path, job_dir), st.st_size, st.st_mtime_ns])
                    if len(found) > MAX_FILES:
                        return None
    except OSError:
        return None
    return sorted(found)


def outside_key(sweep_path: Path, imports: Any) -> str:
    """What a job's analysis reads outside its directory: the LR range tests of the folders above it
    (rundir.lr_find looks ANCESTORS levels up), and the import options."""
    tests = []
    for parent in [sweep_path, *list(sweep_path.parents)[:ANCESTORS]]:
        folder = parent / LR_FIND_DIR
        if folder.is_dir():
            try:
                tests += [[str(p), p.stat().st_mtime_ns] for p in sorted(folder.glob("*/*/*"))]
            except OSError:
                tests.append([str(folder), None])
    given = None if imports is None or imports == ImportOptions() else imports  # none given: the callback's None
    return hashlib.sha1(json.dumps([code_version(), repr(given), tests]).encode()).hexdigest()


def _plain(obj: Any) -> Any:
    """json's fallback for what the analysis keeps in a Job: numpy scalars and arrays, paths, tuples."""
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    raise TypeError(f"{type(obj).__name__} is not cached")


def job_line(job: Job, sig: list) -> Optional[str]:
    """The cache line of one analysed job, or None when something in it is not plain data."""
    findings = [f.to_dict() for f in job.findings]
    data = {"dir": job.path.name, "sig": sig, "num": job.num, "overrides": job.overrides, "state": job.state,
            "error": job.error, "summary": job.summary, "findings": findings, "curves": job.curves,
            "warnings": job.warnings, "facts": job.facts}
    try:
        return json.dumps(data, default=_plain, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def _job(data: dict, path: Path) -> Job:
    findings = [Finding(f["id"], f["severity"], f["message"], f["evidence"],
                        [Recommendation(r["text"], r["overrides"]) for r in f["recommendations"]], f["epoch"])
                for f in data["findings"]]
    return Job(data["num"], path, data["overrides"], data["state"], data["error"], data["summary"], findings,
               data["curves"], data["warnings"], None, data["facts"])


class JobCache:
    """The cached jobs of one sweep, read from `folder` (when there), and the lines to write back."""

    def __init__(self, folder: Path, sweep_path: Path, jobs: int, imports: Any = None):
        self.path = Path(folder) / CACHE_FILE
        self.cap = MAX_BYTES_PER_JOB * (jobs + 1)  # a larger file is not one this module wrote for the sweep
        self.key = outside_key(sweep_path, imports)
        self.lines: dict[str, tuple[list, str]] = {}  # job directory name -> (signature, line)
        self._data: dict[str, dict] = {}  # job directory name -> its line, parsed
        self.changed = False
        self._read()

    def _read(self) -> None:
        try:
            if self.path.is_symlink() or not self.path.is_file() or self.path.stat().st_size > self.cap:
                return
            with open(self.path, encoding="utf-8") as f:
                header = json.loads(f.readline())
                if not isinstance(header, dict) or (header.get("format"), header.get("key")) != (FORMAT, self.key):
                    return
                for line in f:
                    if len(line) > MAX_BYTES_PER_JOB:
                        continue  # not a line this module wrote: analysed again
                    try:
                        data = json.loads(line)
                        self.lines[data["dir"]] = (data["sig"], line.rstrip("\n"))
                        self._data[data["dir"]] = data
                    except (ValueError, KeyError, TypeError, RecursionError):
                        continue  # analysed again
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            self.lines, self._data = {}, {}

    def holds(self, job_dir: Path) -> bool:
        """True when the cache has a line for job_dir (whether still valid, its signature says)."""
        return job_dir.name in self.lines

    def get(self, job_dir: Path, sig: Optional[list]) -> Optional[Job]:
        """The cached job of job_dir when its files are unchanged, else None."""
        if sig is None or job_dir.name not in self.lines:
            return None
        if self.lines[job_dir.name][0] != sig:
            return None
        try:
            return _job(self._data[job_dir.name], job_dir)
        except (ValueError, KeyError, TypeError, IndexError, RecursionError):
            return None

    def update(self, jobs: list[Job], sigs: list[Optional[list]]) -> None:
        """Keep exactly these jobs (the sweep's, in order): new lines for those analysed now."""
        kept: dict[str, tuple[list, str]] = {}
        for job, sig in zip(jobs, sigs):
            name = job.path.name
            old = self.lines.get(name)
            if old is not None and old[0] == sig:
                kept[name] = old
                continue
            if sig is None or job.state == "running" or job.stale is not None:
                continue
            line = job_line(job, sig)
            if line is not None:
                kept[name] = (sig, line)
        self.changed = kept.keys() != self.lines.keys() or any(kept[k] is not self.lines[k] for k in kept)
        self.lines, self._data = kept, {}

    def text(self) -> str:
        header = json.dumps({"format": FORMAT, "key": self.key})
        return "\n".join([header, *(line for _, line in self.lines.values())]) + "\n"
