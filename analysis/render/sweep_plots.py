"""The sweep report's two pictures as inline SVG, from the report's plain data (sweep_effects computed it):
a parallel-coordinates plot of every axis against best accuracy, colored by each run's primary cause,
and validation curves per axis value, averaged over seeds and the other axes, with a band of one
standard deviation across those runs. Every label escaped."""

from __future__ import annotations

import math
from html import escape

from .svg import PALETTE, _nice_ticks, _plottable, _span

NO_CAUSE = "#9a9a9a"  # runs without a primary cause (healthy, or no cause stood out)


def _cause_colors(causes: list[str]) -> dict[str, str]:
    named = [c for c in causes if c != "none"]
    colors = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(named)}
    colors["none"] = NO_CAUSE  # drawn as "no primary cause"
    return colors


def parallel_coordinates(data: dict, width: int = 1080, height: int = 380) -> str:
    """One vertical axis per swept key (its values evenly spaced, in swept order) and a last one for best
    accuracy; each run a polyline through its values, colored by its primary cause."""
    cols = data["columns"]
    colors = _cause_colors(data["causes"])
    legend_h = 16
    left, right, top, bottom = 70, 70, 52, 36 + legend_h
    n_axes = len(cols) + 1
    pw, ph = width - left - right, height - top - bottom
    xs = [left + pw * i / max(n_axes - 1, 1) for i in range(n_axes)]
    lines = [ln for ln in data["lines"] if _plottable(ln["best"])]  # a hostile file's 1e308 is not drawn
    if not lines:
        return ""
    best = [line["best"] for line in lines]
    b0, b1 = _span(min(best), max(best))

    def y_value(i: int, pos: int) -> float:
        k = len(cols[i]["values"])
        return top + ph * (0.5 if k <= 1 else 1 - pos / (k - 1))

    def y_best(v: float) -> float:
        return top + ph * (1 - (v - b0) / (b1 - b0))

    title = f"every axis against {data['metric'].replace('_', ' ')}, colored by primary cause"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text x="{width / 2}" y="16" text-anchor="middle" class="title">{escape(title)}</text>']
    for line in sorted(lines, key=lambda ln: ln["cause"] != "none"):  # causes drawn on top
        pts = [(xs[i], y_value(i, p)) for i, p in enumerate(line["positions"]) if p is not None]
        if len(pts) < len(cols):
            continue  # a run without a value on some axis: no line through it
        pts.append((xs[-1], y_best(line["best"])))
        label = f"job {line['job']}: best {line['best']:.4f}, cause {line['cause']}"
        out.append(f'<polyline fill="none" stroke="{colors[line["cause"]]}" stroke-opacity="0.75" stroke-width="1.6" '
                   f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"><title>{escape(label)}</title></polyline>')
    for i, col in enumerate(cols):
        x = xs[i]
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#555"/>'
                   f'<text x="{x:.1f}" y="{top - 18}" text-anchor="middle" class="tick">{escape(col["key"])}</text>')
        k = len(col["values"])
        step = max(1, math.ceil(k / 12))  # at most a dozen value labels per axis
        for p in range(0, k, step):
            out.append(f'<text x="{x - 5:.1f}" y="{y_value(i, p) + 4:.1f}" text-anchor="end" class="tick">'
                       f'{escape(col["values"][p])}</text>')
    x = xs[-1]
    out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#555"/>'
               f'<text x="{x:.1f}" y="{top - 18}" text-anchor="middle" class="tick">best val accuracy</text>')
    for t in _nice_ticks(b0, b1):
        out.append(f'<text x="{x + 5:.1f}" y="{y_best(t) + 4:.1f}" class="tick">{t:g}</text>')
    lx = left
    for cause in data["causes"]:
        name = "no primary cause" if cause == "none" else cause
        out.append(f'<rect x="{lx}" y="{height - 14}" width="14" height="4" fill="{colors[cause]}"/>'
                   f'<text x="{lx + 18}" y="{height - 9}" class="legend">{escape(name)}</text>')
        lx += 30 + 7 * len(name)
    if data["shown"] < data["total"]:
        out.append(f'<text x="{width - right}" y="{height - 9}" text-anchor="end" class="legend">'
                   f'{data["shown"]} of {data["total"]} runs drawn</text>')
    out.append("</svg>")
    return "".join(out)


def band_chart(axis: dict, width: int = 520, height: int = 300) -> str:
    """Mean validation accuracy per epoch for each value of one axis, with a band of ± one standard deviation."""
    lines = axis["lines"]
    title = f"val accuracy by {axis['key']}"
    legend_h = 14 * len(lines) + 6
    left, right, top, bottom = 52, 12, 40, 34 + legend_h
    height += legend_h
    pw, ph = width - left - right, height - top - bottom
    xs = [e for ln in lines for e in ln["epochs"]]
    def ok(m, s) -> bool:
        return m is not None and s is not None and _plottable(m) and _plottable(s)

    lows = [m - s for ln in lines for m, s in zip(ln["mean"], ln["sd"]) if ok(m, s)]
    highs = [m + s for ln in lines for m, s in zip(ln["mean"], ln["sd"]) if ok(m, s)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text x="{width / 2}" y="16" text-anchor="middle" class="title">{escape(title)}</text>',
           f'<text x="{width / 2}" y="{top + 12}" text-anchor="middle" class="legend">mean over seeds and the other '
           f'axes; band: ± 1 sd across those runs</text>']
    if not xs or not lows:
        return "".join(out) + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>'
    x0, x1 = _span(min(xs), max(xs))
    lo, hi = max(0.0, min(lows)), min(1.0, max(highs))  # accuracies: clipped to [0, 1] where that leaves a range
    if not hi > lo:  # a hostile file's values all outside [0, 1]: their own range
        lo, hi = min(lows), max(highs)
    y0, y1 = _span(lo, hi)
    if not (x1 - x0 > 0 and y1 - y0 > 0):  # spans beyond the float range or resolution: nothing to place
        return "".join(out) + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>'

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (min(max(y, y0), y1) - y0) / (y1 - y0)) * ph

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>')
    for t in _nice_ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">{t:g}</text>')
    for t in _nice_ticks(x0, x1):
        if float(t).is_integer():
            out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 14}" text-anchor="middle" class="tick">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 28}" text-anchor="middle" class="tick">epoch</text>')
    for i, ln in enumerate(lines):
        color = PALETTE[i % len(PALETTE)]
        pts = [(e, m, s) for e, m, s in zip(ln["epochs"], ln["mean"], ln["sd"]) if ok(m, s)]
        if not pts:
            continue
        upper = [f"{sx(e):.1f},{sy(m + s):.1f}" for e, m, s in pts]
        lower = [f"{sx(e):.1f},{sy(m - s):.1f}" for e, m, s in reversed(pts)]
        label = f"{ln['label']} ({ln['runs']} runs)"
        out.append(f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.15" stroke="none"/>')
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                   f'points="{" ".join(f"{sx(e):.1f},{sy(m):.1f}" for e, m, _ in pts)}"><title>{escape(label)}</title>'
                   "</polyline>")
        y = top + ph + 44 + 14 * i
        out.append(f'<rect x="{left}" y="{y - 6}" width="12" height="4" fill="{color}"/>'
                   f'<text x="{left + 16}" y="{y - 2}" class="legend">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
