"""The one table of report formats: format name -> for each report kind, its file name and its renderer.

Kinds: "run" (one run; curves: run_report.curves), "sweep" (a sweep or runs compared; curves:
sweep_report.curves) and "comparison" (several sweeps; curves: None). A renderer takes (report data, curves,
siblings): plain data only, never a Run or a Sweep; siblings
being the names of the files written next to it (empty when printed), and returns the text; PNG
returns a writer of a path instead. `--format` offers the printable formats; a report directory gets
every format's file for its kind. Adding a format is one entry here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

try:
    import orjson as _orjson

    _ORJSON_OPTIONS = _orjson.OPT_INDENT_2 | _orjson.OPT_NON_STR_KEYS | _orjson.OPT_SERIALIZE_NUMPY
except ImportError:  # pragma: no cover - orjson is a dependency, but a report must not need it
    _orjson = None

from . import comparison_html, comparison_text, csv_out, html, markdown, sweep_html, sweep_text, text

RUN, SWEEP, COMPARISON = "run", "sweep", "comparison"
Renderer = Callable[[dict, Any, frozenset], "str | Callable[[Path], object]"]


@dataclass(frozen=True)
class Output:
    file: Optional[str]  # its name in a report directory; None: printed only
    render: Renderer


@dataclass(frozen=True)
class Format:
    printable: bool  # offered by --format (PNG is a file only)
    kinds: dict[str, Output]


def json_safe(value: Any) -> Any:
    """value with every NaN or infinity as None (JSON has no such numbers): the one place a report is made
    JSON-safe, whatever section computed a non-finite value from hostile input."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k): json_safe(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _json(report: dict, _source: Any, _siblings: frozenset) -> str:
    if _orjson is not None:  # 10x faster on a large sweep; it writes NaN and infinities as null itself
        try:
            return _orjson.dumps(report, default=str, option=_ORJSON_OPTIONS).decode() + "\n"
        except (_orjson.JSONEncodeError, TypeError):  # an integer beyond 64 bits: Python's json has no limit
            pass
    return json.dumps(json_safe(report), indent=2, allow_nan=False, default=str) + "\n"


def _png(_report: dict, curves: dict, _siblings: frozenset) -> Callable[[Path], object]:
    from .png import run_curves  # matplotlib (0.5 s): imported only when a PNG is written

    return lambda tmp: run_curves(curves, tmp)


FORMATS: dict[str, Format] = {
    "text": Format(True, {
        RUN: Output(None, lambda r, _s, _f: text.render_run(r)),
        SWEEP: Output(None, lambda r, _s, _f: sweep_text.render_sweep_text(r)),
        COMPARISON: Output(None, lambda d, _s, _f: comparison_text.render_text(d))}),
    "markdown": Format(True, {
        RUN: Output("report.md", lambda r, _s, f: markdown.render_run(r, plots=sorted(n for n in f
                                                                                  if n.endswith(".png")))),
        SWEEP: Output("report.md", lambda r, _s, _f: sweep_text.render_sweep_markdown(r)),
        COMPARISON: Output("comparison.md", lambda d, _s, _f: comparison_text.render_markdown(d))}),
    "json": Format(True, {RUN: Output("report.json", _json), SWEEP: Output("summary.json", _json),
                          COMPARISON: Output("comparison.json", _json)}),
    "html": Format(True, {
        RUN: Output("report.html", lambda r, curves, _f: html.render_run(r, curves)),
        SWEEP: Output("report.html", lambda r, curves, _f: sweep_html.render_sweep_html(r, curves)),
        COMPARISON: Output("comparison.html", lambda d, _s, _f: comparison_html.render_html(d))}),
    "csv": Format(True, {
        RUN: Output("epochs.csv", lambda _r, curves, _f: csv_out.run_epochs(curves)),
        SWEEP: Output("runs.csv", lambda r, _s, _f: csv_out.sweep_runs(r)),
        COMPARISON: Output("comparison.csv", lambda d, _s, _f: csv_out.comparison_sweeps(d))}),
    "png": Format(False, {RUN: Output("curves.png", _png)}),
}

PRINTABLE = tuple(name for name, f in FORMATS.items() if f.printable)


def render(fmt: str, kind: str, report: dict, curves: Any) -> str:
    """What `--format fmt` prints for a report of this kind."""
    return FORMATS[fmt].kinds[kind].render(report, curves, frozenset())


def report_files(kind: str, report: dict, curves: Any) -> dict[str, "str | Callable[[Path], object]"]:
    """A report directory's files for this kind: file name -> text (or a writer of a path)."""
    outputs = [f.kinds[kind] for f in FORMATS.values() if kind in f.kinds and f.kinds[kind].file]
    names = frozenset(o.file for o in outputs)
    return {o.file: o.render(report, curves, names) for o in outputs}


def file_name(fmt: str, kind: str) -> Optional[str]:
    """The file a format is written to for this kind (None: printed only, or no such file)."""
    out = FORMATS[fmt].kinds.get(kind)
    return out.file if out else None
