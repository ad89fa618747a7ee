"""The sweep report as one self-contained HTML file with inline SVG plots; all user text escaped."""

from __future__ import annotations

from html import escape

from ..overrides import fmt
from .html import code, page
from .svg import heatmap, line_chart
from .sweep_plots import band_chart, parallel_coordinates
from .sweep_text import (_ms, explained_lines, noise_line, provenance_lines, recommendation_checks, replicate_rows,
                         replicates_line, run_table_rows, variance_lines)

MAX_CURVES = 60  # beyond this, curves are thinned to the best and worst runs


def _curves(curves: dict[str, dict], report: dict) -> list[str]:
    """curves: each job's curves by its name (sweep_report.curves)."""
    ranked = sorted((r for r in report["runs"] if r["job"] in curves),
                    key=lambda r: -(r["best_val_accuracy"] if r["best_val_accuracy"] is not None else -1))
    if len(ranked) > MAX_CURVES:
        ranked = ranked[: MAX_CURVES // 2] + ranked[-MAX_CURVES // 2:]
    axes = list(report["sweep"]["axes"])

    def label(r: dict) -> str:
        return f"{r['job']}: " + " ".join(f"{k}={fmt(r['overrides'][k])}" for k in axes if k in r["overrides"])

    acc = [(label(r), curves[r["job"]]["val_epochs"], curves[r["job"]]["val_accuracy"]) for r in ranked]
    lr = [(label(r), curves[r["job"]]["train_epochs"], curves[r["job"]]["learning_rate"]) for r in ranked]
    positive = all(v is not None and v > 0 for r in ranked for v in curves[r["job"]]["learning_rate"])
    return [line_chart(acc, "validation accuracy", width=560, height=340),
            line_chart(lr, "learning rate", ylog=positive, width=560, height=340)]


def render_sweep_html(report: dict, curves: dict[str, dict]) -> str:
    s = report["sweep"]
    head = f"{s['jobs']['found']} runs compared" if s.get("kind") == "runs" else f"Sweep {s['name']}"
    body = [f"<h1>{escape(head)}</h1>", f'<p class="muted">{escape(s["path"])}</p>', "<ul>"]
    body += [f"<li>{escape(line)}</li>" for line in provenance_lines(s)] + ["</ul>"]
    best = report["best"]
    if best:
        body.append(f"<p><b>Best:</b> {' '.join(code(o) for o in best['overrides_cli']) or '(defaults)'}: "
                    f"{escape(_ms(best))}</p>")
        body += [f'<p class="warning">{escape(n)}</p>' for n in best["edge_notes"]]
    body.append('<div class="charts">' + "".join(_curves(curves, report)))
    g = report["grid"]
    if g:
        body.append(heatmap(g["rows"], [fmt(v) for v in g["row_values"]], g["cols"], [fmt(v) for v in g["col_values"]],
                            g["mean"], "mean best validation accuracy", counts=g["n"]))
    body.append("</div>")
    explained = explained_lines(report)
    if explained:
        body.append("<h2>What each axis did</h2>")
        for head, details in explained:
            body.append(f"<p><b>{escape(head)}</b></p><ul>" + "".join(f"<li>{escape(d)}</li>" for d in details)
                        + "</ul>")
        body.append(f'<p class="muted">{escape(noise_line(report))}</p>')
        ex = report["explained"]
        if ex.get("parallel"):
            body.append('<div class="charts">' + parallel_coordinates(ex["parallel"]) + "</div>")
        if ex.get("curves"):
            body.append('<div class="charts">' + "".join(band_chart(c) for c in ex["curves"] if c["lines"]) + "</div>")
    variance = variance_lines(report)
    if variance:
        body.append("<h2>Share of the variance in best validation accuracy</h2><ul>"
                    + "".join(f"<li>{escape(v)}</li>" for v in variance) + "</ul>")
    headers, rows = run_table_rows(report)
    body.append("<h2>Runs</h2><table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
    replicates = replicate_rows(report)
    if replicates:
        body.append("<h2>Configurations (seeds as replicates)</h2><table><tr><th>configuration</th>"
                    "<th>best val accuracy: mean ± std (n)</th><th>runs</th></tr>"
                    + "".join(f"<tr><td>{escape(c)}</td><td>{escape(m)}</td><td>{escape(r)}</td></tr>"
                              for c, m, r in replicates) + "</table>")
    body.append("<h2>Effect of each axis</h2>")
    rep = replicates_line(report)
    if rep:
        body.append(f"<p>{escape(rep)}</p>")
    for axis in report["axes"]:
        none = {"none": ' <span class="muted">(no effect: its values tie)</span>',
                "not exercised": f' <span class="warning">(not exercised: {escape(axis.get("not_exercised_why") or "")})'
                                 "</span>"}.get(axis.get("effect"), "")
        body.append(f"<h3>{escape(axis['key'])}{none}</h3><table><tr><th>value</th><th>best val accuracy: mean ± std (n)</th>"
                    "<th>runs</th></tr>" + "".join(
                        f"<tr><td>{escape(fmt(lv['value']))}</td><td>{escape(_ms(lv))}</td>"
                        f"<td>{escape(', '.join(lv['runs'][:30]))}</td></tr>" for lv in axis["levels"]) + "</table>")
    body.append("<h2>Recommendations across the sweep</h2>")
    if not report["recommendations"]:
        body.append("<p>No warning or critical finding recommended a change.</p>")
    else:
        body.append("<ul>")
        checks = recommendation_checks(report)
        for i, r in enumerate(report["recommendations"]):
            body.append(f"<li>{code(r['finding'])} ({r['count']} runs: {escape(', '.join(r['runs'][:30]))}): "
                        f"{escape(r['text'])}" + (": " + " ".join(code(o) for o in r["overrides"]) if r["overrides"] else "")
                        + "<ul>" + "".join(f"<li>{code(sup['override'])}: <b>{escape(sup['verdict'])}</b>: "
                                           f"{escape(sup['note'])}</li>" for sup in r["support"])
                        + "".join(f'<li class="{"warning" if line.startswith("CONTRADICTED") else "info"}">ran: '
                                  f"{escape(line)}</li>" for line in checks[i]) + "</ul></li>")
        body.append("</ul>")
    if report.get("notes"):
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report["notes"]) + "</ul>")
    if report["warnings"]:
        body.append("<h2>Reading warnings</h2><ul>" + "".join(f"<li>{escape(w)}</li>" for w in report["warnings"][:200])
                    + "</ul>")
    return page(f"traindx sweep {s['name']}", body)
