"""What the paths are (a run, a sweep, several sweeps) and which report they get.

Report files go into a directory: `--out DIR` (explicit), or by default `<sweep>/analysis/` for a
sweep directory (implicit); one run, several runs and several sweeps write files only with --out (never
into the current directory unasked). Which files, and what --format prints, is the table in render/formats.py. An explicit --out
that cannot be written is an error (one line, exit 2) found before any analysis, and no report is
printed; an implicit directory that cannot be written (a sweep someone else owns) is a warning and
the report is printed.
The files are written all or nothing (rundir.files.write_all_or_nothing: a temporary directory first, then
moved into place), so a failed write leaves the previous report whole, never a mix of old and new files; a
link in place of a report file is replaced, never written through, and a sweep's analysis/ that is itself a
link is not followed. Each file gets the mode a plain open() would give it (the umask's), so that teammates
can read reports on a shared filesystem.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from rundir.files import RunFileError, write_all_or_nothing
from rundir.read import RunError, check_path, load_run, stale_note

from . import compare, run_report, sweep_report
from .findings import severity_rank
from .importers import load_runs
from .job_cache import CACHE_FILE, JobCache
from .jobs import analyze_jobs
from .render.formats import COMPARISON, RUN, SWEEP, file_name, render as render_format, report_files
from .sweep import is_sweep_dir, load_sweep, sweep_from_runs


class OutputError(RunError):
    """The report files cannot be written where they were asked for."""

    def __init__(self, target: Path, reason: str):
        super().__init__(f"cannot write reports to {target}: {reason}")


def prepare_out(target: Path) -> list[Path]:
    """Make sure reports can be written into target (created if missing); returns the directories made.

    Raises OutputError naming the reason: a file in the way, a missing or read-only parent, no permission."""
    if target.exists() and not target.is_dir():
        raise OutputError(target, "it is a file, not a directory")
    made: list[Path] = []
    try:
        missing = []
        p = target
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            made.append(d)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".traindx-write-test-"):
            pass
    except OSError as e:
        remove_empty(made)
        raise OutputError(target, e.strerror or type(e).__name__) from None
    return made


def remove_empty(dirs: list[Path]) -> None:
    """Undo prepare_out: remove the directories it made, deepest first, when still empty."""
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            pass


def write_files(target: Path, files: dict[str, str | Callable[[Path], object]], follow_link: bool = True) -> list[Path]:
    """Write the files into target all or nothing (rundir.files); a failure becomes OutputError naming target
    and the reason. follow_link=False: a target that is a link is refused (a folder the analysis chose)."""
    try:
        return write_all_or_nothing(target, files, follow_link=follow_link)
    except RunFileError as e:
        where = f" ({e.path})" if e.path.parent != target and e.path != target else ""
        raise OutputError(target, e.reason + where) from None


def report_paths(paths: list[Path], fmt: str, out: Optional[Path], fail_on: Optional[str], imports=None) -> int:
    """imports: importers.ImportOptions (--from, --map, --steps-per-epoch) for runs other tools logged."""
    for p in paths:
        check_path(p)  # missing, a name too long, no access: one line
    sweeps = [p for p in paths if is_sweep_dir(p)]
    if sweeps and len(sweeps) != len(paths) and len(paths) > 1:
        runs = [str(p) for p in paths if p not in sweeps]
        raise RunError(f"mix of sweeps and single runs ({', '.join(runs)}): give sweeps only, or runs only")
    made = prepare_out(out) if out is not None else []  # before the analysis: a bad --out fails at once
    try:
        if len(paths) == 1:
            if sweeps:
                return report_sweep(paths[0], fmt, out, imports)
            runs = load_runs(paths[0], imports)  # several: a Keras file of appended fits, logger versions
            if len(runs) > 1:
                return report_sweep(runs, fmt, out, imports)
            return report_run(paths[0], fmt, out, fail_on, runs[0])
        if len(sweeps) == len(paths):
            return report_sweeps(paths, fmt, out, imports)
        return report_sweep(paths, fmt, out, imports)  # several runs: compared as one ad-hoc sweep
    except RunError:
        remove_empty(made)
        raise


def write_report(kind: str, report: dict, curves, out: Optional[Path], implicit: Optional[Path],
                 extra: Optional[dict[str, str]] = None) -> list[Path]:
    """The kind's report files (and the extra files, such as a sweep's job cache) into --out (a failure is an
    error) or else the implicit place (a failure is a warning: a sweep someone else owns); [] when neither is
    given."""
    files = {**report_files(kind, report, curves), **(extra or {})}
    if out is not None:
        return write_files(out, files)
    if implicit is None:
        return []
    try:  # a folder chosen here is written only as what it is: a link there is not followed
        return write_files(implicit, files, follow_link=False)
    except OutputError as e:
        print(f"warning: {e}; use --out DIR", file=sys.stderr)
        return []


def _named(written: list[Path], fmt: str, kind: str) -> Optional[Path]:
    return next((p for p in written if p.name == file_name(fmt, kind)), None)


def report_sweep(path, fmt: str, out: Optional[Path], imports=None) -> int:
    """One sweep directory (or a list of run directories or Runs): files into <sweep>/analysis/ or --out; runs
    given one by one write files only with --out."""
    sweep = load_sweep(path, imports) if isinstance(path, Path) else sweep_from_runs(path, imports)
    implicit = sweep.path / "analysis" if isinstance(path, Path) else None
    folder = out if out is not None else implicit  # a sweep directory's report directory keeps its analysed jobs
    cache = JobCache(folder, sweep.path, len(sweep.job_dirs), imports) if implicit is not None else None
    analyze_jobs(sweep, cache=cache)
    report = sweep_report.build(sweep)
    plots = sweep_report.curves(sweep)
    kept = {CACHE_FILE: cache.text()} if cache is not None and cache.changed else {}
    html_path = _named(write_report(SWEEP, report, plots, out, implicit, kept), "html", SWEEP)
    sys.stdout.write(render_format(fmt, SWEEP, report, plots)
                     + (f"\nHTML report: {html_path}\n" if fmt == "text" and html_path else ""))
    for w in report["warnings"][:50]:
        print(f"warning: {w}", file=sys.stderr)
    if len(report["warnings"]) > 50:
        print(f"warning: and {len(report['warnings']) - 50} more (see the report's reading warnings)", file=sys.stderr)
    return 0


def report_sweeps(paths: list[Path], fmt: str, out: Optional[Path], imports=None) -> int:
    """Several sweeps: each one's best, and what changed against the first; files only into --out."""
    data = compare.build([sweep_report.build(load_sweep(p, imports)) for p in paths])
    written = write_report(COMPARISON, data, None, out, None)
    sys.stdout.write(render_format(fmt, COMPARISON, data, None)
                     + (f"\nwrote {', '.join(map(str, written))}\n" if fmt == "text" and written else ""))
    return 0


def report_run(path: Path, fmt: str, out: Optional[Path], fail_on: Optional[str], run=None) -> int:
    """One run: read from path, unless already read (run: an imported one)."""
    run = run if run is not None else load_run(path)
    report = run_report.build(run)
    if run.imported is not None:  # another tool's log: what was read, what is unknown
        report["run"]["imported"] = run.imported
    report["run"]["status_note"] = stale_note(run)  # status running, but the process seems gone
    report["run"]["notes"] = list(run.notes)  # where the diagnostics were read from, when not diagnostics/
    plots = run_report.curves(run)
    written = write_report(RUN, report, plots, out, None)
    sys.stdout.write(render_format(fmt, RUN, report, plots))
    for w in run.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if written:
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if fail_on and any(severity_rank(f["severity"]) >= severity_rank(fail_on) for f in report["findings"]):
        return 1
    return 0
