"""What the paths are (a run, a sweep, several sweeps) and which report they get."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from .findings import severity_rank
from .records import RunError, load_run


def report_paths(paths: list[Path], fmt: str, out: Optional[Path], fail_on: Optional[str]) -> int:
    if len(paths) == 1:
        return report_run(paths[0], fmt, out, fail_on)
    raise RunError("several paths: comparing runs and sweeps is not available yet")


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
