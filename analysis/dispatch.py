"""What the paths are (a run, a sweep, several sweeps) and which report they get.

Report files go into a directory: `--out DIR` (explicit), or by default `<sweep>/analysis/` for a
sweep and the current directory for several sweeps (implicit). An explicit --out that cannot be written
is an error (one line, exit 2) found before any analysis, and no report is printed; an implicit
directory that cannot be written (a sweep someone else owns) is a warning and the report is printed.
Each file is replaced atomically, so a failed write leaves the previous file whole.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from .findings import severity_rank
from .records import RunError, load_run, stale_note


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


def write_atomic(path: Path, text_or_writer: str | Callable[[Path], object]) -> Path:
    """Write a file by way of a temporary file in the same directory and os.replace: never half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    try:
        if callable(text_or_writer):
            os.close(fd)
            text_or_writer(Path(tmp))
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text_or_writer)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_files(target: Path, files: dict[str, str | Callable[[Path], object]]) -> list[Path]:
    """Write each file into target; an OSError becomes OutputError naming target and the reason."""
    written = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            written.append(write_atomic(target / name, content))
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) and str(e.filename) != str(target) else ""
        raise OutputError(target, (e.strerror or type(e).__name__) + where) from None
    return written


def report_paths(paths: list[Path], fmt: str, out: Optional[Path], fail_on: Optional[str], imports=None) -> int:
    """imports: importers.ImportOptions (--from, --map, --steps-per-epoch) for runs other tools logged."""
    from .importers import load_runs
    from .sweep import is_sweep_dir

    for p in paths:
        if not p.exists():
            raise RunError(f"{p}: no such file or directory")
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


def report_sweep(path, fmt: str, out: Optional[Path], imports=None) -> int:
    """One sweep directory (or a list of run directories or Runs): files into <sweep>/analysis/ or --out."""
    from . import sweep_report
    from .sweep import load_sweep, sweep_from_runs

    sweep = load_sweep(path, imports) if isinstance(path, Path) else sweep_from_runs(path, imports)
    report = sweep_report.build(sweep)
    implicit = sweep.path / "analysis" if isinstance(path, Path) else None
    html_path = None
    if out is not None:  # asked for: a failure is an error
        html_path = str(write_sweep_files(report, sweep, out)[1])
    elif implicit is not None:  # the default place: a sweep someone else owns may be read-only
        try:
            html_path = str(write_sweep_files(report, sweep, implicit)[1])
        except OutputError as e:
            print(f"warning: {e}; use --out DIR", file=sys.stderr)
    sys.stdout.write(render_sweep(report, sweep, fmt, html_path))
    for w in report["warnings"][:50]:
        print(f"warning: {w}", file=sys.stderr)
    if len(report["warnings"]) > 50:
        print(f"warning: and {len(report['warnings']) - 50} more (see the report's reading warnings)", file=sys.stderr)
    return 0


def render_sweep(report: dict, sweep, fmt: str, html_path: Optional[str] = None) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, allow_nan=False, default=str) + "\n"
    if fmt == "markdown":
        from .render.sweep_text import render_sweep_markdown

        return render_sweep_markdown(report)
    if fmt == "html":
        from .render.sweep_html import render_sweep_html

        return render_sweep_html(report, sweep)
    if fmt == "csv":
        from .render.csv_out import sweep_runs

        return sweep_runs(report)
    from .render.sweep_text import render_sweep_text

    return render_sweep_text(report, html_path)


def write_sweep_files(report: dict, sweep, target: Path) -> list[Path]:
    from .render.csv_out import sweep_runs
    from .render.sweep_html import render_sweep_html
    from .render.sweep_text import render_sweep_markdown

    files = {"report.md": render_sweep_markdown(report), "report.html": render_sweep_html(report, sweep),
             "summary.json": json.dumps(report, indent=2, allow_nan=False, default=str) + "\n",
             "runs.csv": sweep_runs(report)}
    return write_files(target, files)


def report_sweeps(paths: list[Path], fmt: str, out: Optional[Path], imports=None) -> int:
    """Several sweeps: each one's best, and what changed against the first."""
    from . import compare, sweep_report
    from .sweep import load_sweep

    reports = [sweep_report.build(load_sweep(p, imports)) for p in paths]
    data = compare.build(reports)
    files = {"comparison.md": compare.render_markdown(data), "comparison.html": compare.render_html(data),
             "comparison.json": json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"}
    target = out if out is not None else Path.cwd()
    written: list[Path] = []
    if out is not None:  # asked for: a failure is an error
        written = write_files(out, files)
    else:  # the current directory, by default: a warning when it cannot be written
        try:
            written = write_files(target, files)
        except OutputError as e:
            print(f"warning: {e}; use --out DIR", file=sys.stderr)
    if fmt == "json":
        sys.stdout.write(files["comparison.json"])
    elif fmt == "markdown":
        sys.stdout.write(files["comparison.md"])
    elif fmt == "html":
        sys.stdout.write(files["comparison.html"])
    else:
        sys.stdout.write(compare.render_text(data) + (f"\nwrote {', '.join(map(str, written))}\n" if written else ""))
    return 0


def report_run(path: Path, fmt: str, out: Optional[Path], fail_on: Optional[str], run=None) -> int:
    """One run: read from path, unless already read (run: an imported one)."""
    from . import run_report

    run = run if run is not None else load_run(path)
    report = run_report.build(run)
    if run.imported is not None:  # another tool's log: what was read, what is unknown
        report["run"]["imported"] = run.imported
    report["run"]["status_note"] = stale_note(run)  # status running, but the process seems gone
    report["run"]["notes"] = list(run.notes)  # where the diagnostics were read from, when not diagnostics/
    written = write_run_files(report, run, out) if out is not None else []
    sys.stdout.write(render(report, run, fmt))
    for w in run.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if written:
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if fail_on and any(severity_rank(f["severity"]) >= severity_rank(fail_on) for f in report["findings"]):
        return 1
    return 0


def render(report: dict, run, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, allow_nan=False, default=str) + "\n"
    if fmt == "markdown":
        from .render.markdown import render_run

        return render_run(report)
    if fmt == "html":
        from .render.html import render_run

        return render_run(report, run)
    if fmt == "csv":
        from .render.csv_out import run_epochs

        return run_epochs(run)
    from .render.text import render_run

    return render_run(report)


def write_run_files(report: dict, run, out: Path) -> list[Path]:
    from .render.csv_out import run_epochs
    from .render.html import render_run as html
    from .render.markdown import render_run as markdown
    from .render.png import run_curves

    files: dict[str, str | Callable[[Path], object]] = {
        "curves.png": lambda tmp: run_curves(run, tmp),
        "report.md": markdown(report, plots=["curves.png"]),
        "report.json": json.dumps(report, indent=2, allow_nan=False, default=str) + "\n",
        "report.html": html(report, run),
        "epochs.csv": run_epochs(run),
    }
    return write_files(out, files)
