"""The confusion matrix as an inline SVG heatmap, from the report's `per_class.heatmap` (plain data).

The report chose the classes and their order (worst accuracy first; for many classes only those with the
most errors): this module draws what it is given. Colour: each cell's share of its row (the true class's
images): green on the diagonal (recognised), red off it (confused), white at 0. Class names come from the
run's files: every one is escaped.
"""

from __future__ import annotations

from html import escape

SIDE = 600  # px: the matrix's drawn width at most
CELL_MIN, CELL_MAX = 14, 40  # px per cell
LABEL_CHARS = 14  # longer class names are cut in the margins (the tooltip holds the whole name)


def _shade(share: float, diagonal: bool) -> str:
    """White -> green (diagonal) or white -> red (off it), by the share of the row."""
    s = min(max(float(share), 0.0), 1.0)
    if diagonal:
        r, g, b = 255 - int(s * 200), 255 - int(s * 95), 255 - int(s * 200)
    else:
        s = s ** 0.5 if s > 0 else 0.0  # small confusions stay visible
        r, g, b = 255 - int(s * 40), 255 - int(s * 210), 255 - int(s * 210)
    return f"#{r:02x}{g:02x}{b:02x}"


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "\u2026"


def confusion_svg(heatmap: dict) -> str:
    labels = [str(x) for x in heatmap.get("labels", [])]
    counts, shares = heatmap.get("counts", []), heatmap.get("row_shares", [])
    n = len(labels)
    if n == 0 or len(counts) != n or len(shares) != n:
        return ""
    cell = max(CELL_MIN, min(CELL_MAX, SIDE // n))
    margin = 12 + 7 * max(len(_short(x)) for x in labels)
    top, left = margin + 22, margin + 22
    width, height = left + n * cell + 10, top + n * cell + 10
    out = [f'<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="confusion matrix">',
           f'<text class="legend" x="{left}" y="12">predicted class &#8594;</text>',
           f'<text class="legend" x="12" y="{top}" transform="rotate(90 12 {top})">true class &#8594;</text>']
    font = max(8, min(11, cell // 2))
    for i, name in enumerate(labels):
        y = top + i * cell + cell / 2 + font / 3
        x = left + i * cell + cell / 2
        out.append(f'<text class="tick" x="{left - 4}" y="{y:.1f}" text-anchor="end" font-size="{font}">'
                   f'{escape(_short(name))}<title>{escape(name)}</title></text>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{top - 4}" font-size="{font}" '
                   f'transform="rotate(-60 {x:.1f} {top - 4})">{escape(_short(name))}<title>{escape(name)}</title></text>')
    for i in range(n):
        for j in range(n):
            k, share = counts[i][j], shares[i][j]
            x, y = left + j * cell, top + i * cell
            tip = f"true {labels[i]}, predicted {labels[j]}: {k} ({share:.0%} of {labels[i]})"
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_shade(share, i == j)}" '
                       f'stroke="#eee"><title>{escape(tip)}</title></rect>')
            if k and cell >= 18:
                dark = share > 0.6
                out.append(f'<text class="{"cell-dark" if dark else "cell"}" x="{x + cell / 2:.1f}" '
                           f'y="{y + cell / 2 + font / 3:.1f}" text-anchor="middle" font-size="{font}">{k}</text>')
    out.append("</svg>")
    return "".join(out)


def per_class_html(per_class: dict | None) -> list[str]:
    """The heatmap with its caption, for the run's HTML report; nothing without per-class results."""
    if not per_class or not per_class.get("heatmap"):
        return []
    hm = per_class["heatmap"]
    svg = confusion_svg(hm)
    if not svg:
        return []
    caption = (f"Confusion matrix at epoch {escape(str(per_class.get('epoch')))}: rows are true classes, columns "
               f"predicted ones; colour is the share of the row's images (green: right, red: confused); "
               f"{escape(str(hm.get('order', '')))}.")
    return ["<h2>Confusion matrix</h2>", f'<p class="muted">{caption}</p>', svg]
