"""Small inline SVG charts for the HTML reports: no plotting library, every label escaped."""

from __future__ import annotations

import math
from html import escape
from typing import Optional, Sequence

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


LIMIT = 1e150  # beyond this a value is not drawn (and spans stay finite)


def _plottable(v: float) -> bool:
    return math.isfinite(v) and abs(v) < LIMIT


def _span(lo: float, hi: float) -> tuple[float, float]:
    """A drawable, non-empty range around [lo, hi] (a constant series gets a band around it)."""
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi), 1.0):
        half = max(abs(lo) * 0.1, 0.5)
        return lo - half, hi + half
    return lo, hi


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    if not math.isfinite(hi - lo) or (hi - lo) / n == 0:  # -1e308..1e308, or a span below the float resolution
        return [lo, hi]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9 and len(ticks) < 20:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _log_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Ticks for a log axis spanning 10**lo..10**hi, as log10 of round values: 1-2-5 per decade (0.05,
    0.02, 0.01, 0.005), only the decades when those are too many, and plain nice ticks in a range too
    narrow to hold two of them (never 10**-1.5 = 0.0316)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    for mantissas in ((1, 2, 5), (1,)):
        ticks = [e + math.log10(m) for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in mantissas]
        ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
        if len(ticks) <= n:
            break
    if len(ticks) >= 2:
        return ticks
    lo, hi = max(lo, -307.0), min(hi, 308.0)  # 10**hi overflows past 1.8e308
    return [math.log10(t) for t in _nice_ticks(10**lo, 10**hi) if t > 0]


def _label(v: float, log: bool) -> str:
    if log and not -307 <= v <= 308:  # 10**v would over- or underflow (an LR of 1e308 in a hostile file)
        return f"1e{round(v)}"
    value = 10**v if log else v
    return f"{value:.3g}"


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str, *, ylog: bool = False,
               xlabel: str = "epoch", width: int = 460, height: int = 260, max_legend: int = 12) -> str:
    """series: (label, xs, ys); non-finite points break the line. The legend goes below the plot.
    Returns an <svg> element."""
    shown = min(len(series), max_legend) + (1 if len(series) > max_legend else 0)
    legend_h = 13 * shown + 6 if len(series) > 1 else 0
    left, right, top, bottom = 56, 12, 26, 34 + legend_h
    height += legend_h
    pts: list[tuple[str, list[tuple[float, float]]]] = []
    for label, xs, ys in series:
        line = []
        for x, y in zip(xs, ys):
            if x is None or y is None:
                continue
            x, y = float(x), float(y)
            if ylog:
                y = math.log10(y) if y > 0 else math.nan
            line.append((x, y))
        pts.append((label, line))
    finite = [(x, y) for _, line in pts for x, y in line if _plottable(x) and _plottable(y)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart" role="img" '
           f'aria-label="{escape(title)}">', f'<text x="{width / 2}" y="16" text-anchor="middle" class="title">'
           f"{escape(title)}</text>"]
    if not finite:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    x0, x1 = _span(min(p[0] for p in finite), max(p[0] for p in finite))
    y0, y1 = _span(min(p[1] for p in finite), max(p[1] for p in finite))
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>')
    for t in (_log_ticks if ylog else _nice_ticks)(y0, y1):
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">{escape(_label(t, ylog))}</text>')
    integer_x = all(float(x).is_integer() for x, _ in finite)
    for t in _nice_ticks(x0, x1):
        if integer_x and not float(t).is_integer():
            continue
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 14}" text-anchor="middle" class="tick">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 28}" text-anchor="middle" class="tick">{escape(xlabel)}</text>')
    for i, (label, line) in enumerate(pts):
        color = PALETTE[i % len(PALETTE)]
        segments, current = [], []
        for x, y in line:
            if _plottable(x) and _plottable(y):
                current.append(f"{sx(x):.1f},{sy(y):.1f}")
            elif current:
                segments.append(current)
                current = []
        if current:
            segments.append(current)
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            else:
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(seg)}">'
                           f"<title>{escape(str(label))}</title></polyline>")
    if len(pts) > 1:
        for i, (label, _) in enumerate(pts[:max_legend]):
            y = top + ph + 44 + 13 * i
            out.append(f'<rect x="{left}" y="{y - 6}" width="12" height="3" fill="{PALETTE[i % len(PALETTE)]}"/>'
                       f'<text x="{left + 16}" y="{y - 2}" class="legend">{escape(str(label))}</text>')
        if len(pts) > max_legend:
            out.append(f'<text x="{left}" y="{top + ph + 42 + 13 * max_legend}" class="legend">'
                       f"... and {len(pts) - max_legend} more</text>")
    out.append("</svg>")
    return "".join(out)


def heatmap(row_key: str, rows: Sequence[str], col_key: str, cols: Sequence[str],
            values: Sequence[Sequence[Optional[float]]], title: str, counts: Optional[Sequence[Sequence[int]]] = None,
            cell: int = 64) -> str:
    """A grid of mean values (row x column), darker = higher; empty cells for missing combinations."""
    left, top = 120, 56
    width, height = left + cell * len(cols) + 12, top + cell * len(rows) + 30
    flat = [v for r in values for v in r if v is not None and math.isfinite(v)]
    lo, hi = (min(flat), max(flat)) if flat else (0.0, 1.0)
    span = hi - lo or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text x="{width / 2}" y="16" text-anchor="middle" class="title">{escape(title)}</text>',
           f'<text x="{left + cell * len(cols) / 2}" y="32" text-anchor="middle" class="tick">{escape(col_key)}</text>',
           f'<text x="8" y="{top - 6}" class="tick">{escape(row_key)}</text>']
    for j, c in enumerate(cols):
        out.append(f'<text x="{left + cell * j + cell / 2}" y="{top - 6}" text-anchor="middle" class="tick">{escape(str(c))}</text>')
    for i, r in enumerate(rows):
        y = top + cell * i
        out.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end" class="tick">{escape(str(r))}</text>')
        for j, _ in enumerate(cols):
            v = values[i][j]
            x = left + cell * j
            if v is None or not math.isfinite(v):
                out.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" class="empty"/>')
                continue
            t = (v - lo) / span
            shade = int(235 - 170 * t)
            fill = f"rgb({shade},{shade + 10 if shade < 245 else 255},255)"
            text_class = "cell-dark" if t > 0.6 else "cell"
            n = f" n={counts[i][j]}" if counts is not None else ""
            out.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                       f"<title>{escape(f'{row_key}={r}, {col_key}={cols[j]}: {v:.4f}{n}')}</title></rect>"
                       f'<text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 4}" text-anchor="middle" class="{text_class}">'
                       f"{v:.3f}</text>")
    out.append("</svg>")
    return "".join(out)
