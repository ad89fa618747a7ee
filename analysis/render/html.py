"""Self-contained HTML reports with inline SVG plots. Every user string goes through html.escape."""

from __future__ import annotations

from html import escape

import numpy as np

from .heatmap import per_class_html
from .svg import line_chart
from .text import status_text

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:.88em;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px;font-size:.92em}
.critical{color:#b00020;font-weight:600}.warning{color:#b26a00;font-weight:600}.info{color:#555}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff}
.chart .title{font-size:13px;font-weight:600}.chart .tick,.chart .legend{font-size:10px;fill:#444}
.chart .grid{stroke:#eee}.chart .plot{fill:none;stroke:#ccc}.chart .empty{fill:#f7f7f7;stroke:#e5e5e5}
.chart .cell{font-size:11px;fill:#222}.chart .cell-dark{font-size:11px;fill:#fff}
.muted{color:#777;font-size:.9em}ul.recs{margin:2px 0 8px 0}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid figure{margin:0;font-size:11px;text-align:center;width:96px}
.grid img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ddd}
"""


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def code(text: object) -> str:
    return f"<code>{escape(str(text))}</code>"


def findings_html(findings: list[dict]) -> list[str]:
    if not findings:
        return ["<p>No findings: nothing crossed a threshold.</p>"]
    out = ["<ul>"]
    for f in findings:
        out.append(f'<li><span class="{escape(f["severity"])}">{escape(f["severity"])}</span> {code(f["id"])}: '
                   f'{escape(f["message"])}<ul class="recs">')
        for r in f.get("recommendations", []):
            ov = " ".join(code(o) for o in r.get("overrides", [])) + (
            " in place of " + " ".join(code(o) for o in r["replaces"]) if r.get("replaces") else "")
            out.append(f"<li>{escape(r['text'])}{': ' + ov if ov else ''}</li>")
        out.append("</ul></li>")
    out.append("</ul>")
    return out


def cause_html(cause: dict | None) -> list[str]:
    """The differential diagnosis's primary cause, its evidence, fix and symptoms (every string escaped)."""
    if not cause or not cause.get("primary"):
        return []
    p = cause["primary"]
    items = [f"<li>for: {escape(e)}</li>" for e in p["evidence_for"]]
    items += [f"<li>against: {escape(e)}</li>" for e in p["evidence_against"]]
    for r in p["recommendations"][:2]:
        ov = " ".join(code(o) for o in r.get("overrides", [])) + (
            " in place of " + " ".join(code(o) for o in r["replaces"]) if r.get("replaces") else "")
        items.append(f"<li>fix: {escape(r['text'])}{': ' + ov if ov else ''}</li>")
    if cause.get("symptoms"):
        items.append("<li>its symptoms: " + ", ".join(code(x) for x in cause["symptoms"]) + "</li>")
    return [f"<p><b>Primary cause</b>: {escape(p['text'])} ({code(p['id'])}, score {escape(format(p['score'], 'g'))})</p>",
            "<ul>" + "".join(items) + "</ul>"]


def image_grid(images: list[dict] | None) -> list[str]:
    """A section's images (base64 PNG thumbnails with index, given label, prediction and loss) as a grid."""
    if not images:
        return []
    out = ['<div class="grid">']
    for im in images:
        data = escape(str(im.get("png_base64", "")), quote=True)
        caption = (f"#{escape(str(im.get('index')))} given {escape(str(im.get('label')))}<br>"
                   f"predicted {escape(str(im.get('predicted')))}<br>loss {escape(str(im.get('loss')))}")
        out.append(f'<figure><img src="data:image/png;base64,{data}" alt="training image '
                   f'{escape(str(im.get("index")), quote=True)}"><figcaption>{caption}</figcaption></figure>')
    return out + ["</div>"]


def series(cols: dict, name: str) -> np.ndarray:
    """A recorded series of a run's curves (run_report.curves), all NaN when the run did not record it."""
    return cols.get(name, np.full(len(cols["epoch"]), np.nan))


def run_charts(curves: dict) -> list[str]:
    tr, va = curves["train"], curves["val"]
    lr = series(tr, "learning_rate")
    charts = [
        line_chart([("train", tr["epoch"], series(tr, "loss")), ("val", va["epoch"], series(va, "loss"))], "loss"),
        line_chart([("train", tr["epoch"], series(tr, "accuracy")), ("val", va["epoch"], series(va, "accuracy"))],
                   "accuracy"),
        line_chart([("learning rate", tr["epoch"], lr)], "learning rate", ylog=bool((lr > 0).all()) if len(lr) else False),
        line_chart([(n, tr["epoch"], tr[n]) for n in ("mean_grad_norm", "grad_norm_first_layer", "grad_norm_last_layer")
                    if n in tr], "gradient norms", ylog=True),
    ]
    return ['<div class="charts">'] + charts + ["</div>"]


def render_run(report: dict, curves: dict) -> str:
    meta, s = report["run"], report["summary"]
    body = [f"<h1>Run {escape(meta['name'])}</h1>", f'<p class="muted">{escape(str(meta["path"]))} &middot; '
            f"status {escape(status_text(meta))} &middot; {s['epochs']} epochs</p>"]
    body += [f'<p class="muted">{escape(n)}</p>' for n in meta.get("notes") or []]
    if meta.get("overrides"):
        body.append("<p>Overrides: " + " ".join(code(o) for o in meta["overrides"]) + "</p>")
    if meta.get("error"):
        body.append(f'<p class="critical">error: {escape(str(meta["error"]))}</p>')
    rows = [("best val accuracy", s.get("best_val_accuracy")), ("best epoch", s.get("best_epoch")),
            ("final val accuracy", s.get("final_val_accuracy")), ("final train loss", s.get("final_train_loss")),
            ("LR cuts", s.get("lr_cuts"))]
    body.append("<table>" + "".join(f"<tr><th>{escape(k)}</th><td class=\"num\">{_cell(v)}</td></tr>" for k, v in rows)
                + "</table>")
    if report.get("progress"):
        body.append(f"<h2>Progress</h2><p><b>{escape(report['progress']['verdict'])}</b>: "
                    f"{escape(report['progress']['sentence'])}</p>")
    body += run_charts(curves)
    body.append("<h2>Diagnosis &amp; Recommendations</h2>")
    body += cause_html(report.get("cause"))
    body += findings_html(report["findings"])
    body += [f"<p>Not checked: {escape(line)}</p>" for line in report.get("not_checked") or []]
    body += per_class_html(report.get("per_class"))
    for section in report["sections"]:
        body.append(f"<h2>{escape(section['title'])}</h2><ul>"
                    + "".join(f"<li>{escape(line)}</li>" for line in section["lines"]) + "</ul>")
        body += image_grid(section.get("images"))
    if report.get("warnings"):
        body.append("<h2>Reading warnings</h2><ul>" + "".join(f"<li>{escape(w)}</li>" for w in report["warnings"])
                    + "</ul>")
    return page(f"traindx: {meta['name']}", body)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "n/a" if v is None else escape(str(v))
