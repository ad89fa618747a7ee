"""Several sweeps compared, as one self-contained HTML page (the sweep report's style); all user text escaped."""

from __future__ import annotations

from html import escape

from ..overrides import values_text
from .comparison_text import delta_text, ms, setting_text
from .html import code, page


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Cells arrive as HTML (already escaped)."""
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows) + "</table>")


def render_html(data: dict) -> str:
    body = ["<h1>Sweep comparison</h1>", '<p class="muted">The first sweep is the baseline; each other one is '
            "compared with it. Seeds are replicates, not an axis.</p>"]
    rows = []
    for s in data["sweeps"]:
        b = s["best"]
        rows.append([escape(s["name"]) + f'<br><span class="muted">{escape(s["path"])}</span>',
                     escape(ms(b)) if b else "n/a", " ".join(code(o) for o in b["overrides"]) if b else "",
                     "<br>".join(f"{code(k)} = {escape(values_text(vs))}" for k, vs in s["axes"].items())
                     or "none", escape(values_text(s["seeds"])) if s["seeds"] else "-",
                     f"{s['jobs']['completed']}/{s['jobs']['found']}"])
    body.append(_table(["sweep", "best val accuracy", "best overrides", "axes", "seeds", "completed"], rows))
    for c in data["comparisons"]:
        body.append(f"<h2>{escape(c['other'])} vs {escape(c['baseline'])}</h2>")
        if c["best_delta"] is not None:
            cls = "info" if c["best_delta_within_noise"] in (True, None) else "warning"
            body.append(f'<p>Best validation accuracy: <span class="{cls}">{escape(delta_text(c, data["noise_se"]))}'
                        "</span></p>")
        if c["settings_changed"]:
            body.append("<h3>What changed in the command</h3>" + _table(
                ["key", escape(c["baseline"]), escape(c["other"])],
                [[code(ch["key"]), escape(setting_text(ch["baseline"])), escape(setting_text(ch["other"]))]
                 for ch in c["settings_changed"]]))
        else:
            body.append("<p>Same swept and fixed values.</p>")
        found = [[code(k), "-", "fired"] for k in c["findings_appeared"]]
        found += [[code(k), "fired", "-"] for k in c["findings_disappeared"]]
        found += [[code(k), f"{a} runs", f"{b} runs"] for k, (a, b) in c["findings_changed"].items()]
        body.append("<h3>Findings</h3>" + (_table(["finding", escape(c["baseline"]), escape(c["other"])], found)
                                           if found else "<p>The same findings, in as many runs.</p>"))
        recs = [[escape(k), "-", "given"] for k in c.get("recommendations_appeared", [])]
        recs += [[escape(k), "given", "-"] for k in c.get("recommendations_disappeared", [])]
        recs += [[escape(k), f"{a} runs", f"{b} runs"] for k, (a, b) in c.get("recommendations_changed", {}).items()]
        body.append("<h3>Recommendations</h3>" + (
            _table(["recommendation", escape(c["baseline"]), escape(c["other"])], recs) if recs
            else "<p>The same recommendations, from as many runs.</p>"))
    return page("traindx sweep comparison", body)
