"""What the paths are (a run, a sweep, several sweeps) and which report they get."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from .findings import severity_rank
from .records import RunError, load_run


def report_paths(paths: list[Path], fmt: str, out: Optional[Path], fail_on: Optional[str]) -> int:
    from .sweep import is_sweep_dir

    for p in paths:
        if not p.exists():
            raise RunError(f"{p}: no such file or directory")
    sweeps = [p for p in paths if is_sweep_dir(p)]
    if len(paths) == 1:
        if sweeps:
            return report_sweep(paths[0], fmt, out)
        return report_run(paths[0], fmt, out, fail_on)
    if len(sweeps) == len(paths):
        return report_sweeps(paths, fmt, out)
    if not sweeps:
        return report_sweep(paths, fmt, out)  # several runs: compared as one ad-hoc sweep
    runs = [str(p) for p in paths if p not in sweeps]
    raise RunError(f"mix of sweeps and single runs ({', '.join(runs)}): give sweeps only, or runs only")


def report_sweep(path, fmt: str, out: Optional[Path]) -> int:
    """One sweep directory (or a list of run directories): files into <sweep>/analysis/ or --out."""
    from . import sweep_report
    from .sweep import load_sweep, sweep_from_runs

    sweep = load_sweep(path) if isinstance(path, Path) else sweep_from_runs(path)
    report = sweep_report.build(sweep)
    target = out if out is not None else (sweep.path / "analysis" if isinstance(path, Path) else None)
    html_path = None
    if target is not None:
        try:
            written = write_sweep_files(report, sweep, target)
            html_path = str(written[1])
        except OSError as e:
            print(f"warning: cannot write the report into {target}: {e.strerror}; use --out DIR", file=sys.stderr)
    sys.stdout.write(render_sweep(report, sweep, fmt, html_path))
    for w in report["warnings"][:50]:
        print(f"warning: {w}", file=sys.stderr)
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

    target.mkdir(parents=True, exist_ok=True)
    files = {"report.md": render_sweep_markdown(report), "report.html": render_sweep_html(report, sweep),
             "summary.json": json.dumps(report, indent=2, allow_nan=False, default=str) + "\n",
             "runs.csv": sweep_runs(report)}
    written = []
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
        written.append(target / name)
    return written


def report_sweeps(paths: list[Path], fmt: str, out: Optional[Path]) -> int:
    """Several sweeps: each one's best, and what changed against the first."""
    from . import compare, sweep_report
    from .sweep import load_sweep

    reports = [sweep_report.build(load_sweep(p)) for p in paths]
    data = compare.build(reports)
    target = out if out is not None else Path.cwd()
    target.mkdir(parents=True, exist_ok=True)
    files = {"comparison.md": compare.render_markdown(data), "comparison.html": compare.render_html(data),
             "comparison.json": json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"}
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    if fmt == "json":
        sys.stdout.write(files["comparison.json"])
    elif fmt == "markdown":
        sys.stdout.write(files["comparison.md"])
    elif fmt == "html":
        sys.stdout.write(files["comparison.html"])
    else:
        sys.stdout.write(compare.render_text(data) + f"\nwrote {', '.join(str(target / n) for n in files)}\n")
    return 0


def report_run(path: Path, fmt: str, out: Optional[Path], fail_on: Optional[str]) -> int:
    from . import run_report

    run = load_run(path)
    report = run_report.build(run)
    text = render(report, run, fmt)
    sys.stdout.write(text)
    for w in run.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if out is not None:
        written = write_run_files(report, run, out)
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

    out.mkdir(parents=True, exist_ok=True)
    png = run_curves(run, out / "curves.png")
    files = {
        "report.md": markdown(report, plots=[png.name]),
        "report.json": json.dumps(report, indent=2, allow_nan=False, default=str) + "\n",
        "report.html": html(report, run),
        "epochs.csv": run_epochs(run),
    }
    written = [png]
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written
