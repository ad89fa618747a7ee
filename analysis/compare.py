"""Several sweeps -> what changed between them: best configuration, axes, findings that came or went.

The first sweep given is the baseline; each other one is compared with it.
"""

from __future__ import annotations

from typing import Any


def _ms(best: dict) -> str:
    """mean ± sd (n), or mean (n=1) for a single run."""
    if best["n"] == 1:
        return f"{best['mean']:.4f} (n=1)"
    return f"{best['mean']:.4f} ± {best['std']:.4f} (n={best['n']})"


def _finding_counts(report: dict) -> dict[str, int]:
    return {k: len(v) for k, v in report["findings_by_id"].items()}


def _summary(report: dict) -> dict[str, Any]:
    best = report["best"]
    return {"name": report["sweep"]["name"], "path": report["sweep"]["path"], "command": report["sweep"]["command"],
            "axes": report["sweep"]["axes"], "jobs": report["sweep"]["jobs"],
            "best": None if best is None else {"overrides": best["overrides_cli"], "mean": best["mean"],
                                               "std": best["std"], "n": best["n"]},
            "findings": _finding_counts(report)}


def build(reports: list[dict]) -> dict:
    sweeps = [_summary(r) for r in reports]
    base = sweeps[0]
    comparisons = []
    for other in sweeps[1:]:
        a_axes, b_axes = set(base["axes"]), set(other["axes"])
        a_best, b_best = base["best"], other["best"]
        delta = (b_best["mean"] - a_best["mean"]) if a_best and b_best else None
        fa, fb = base["findings"], other["findings"]
        comparisons.append({
            "baseline": base["name"], "other": other["name"],
            "axes_only_in_baseline": sorted(a_axes - b_axes), "axes_only_in_other": sorted(b_axes - a_axes),
            "shared_axes": sorted(a_axes & b_axes),
            "different_axes": a_axes != b_axes,
            "best_delta": delta,
            "best_baseline": a_best, "best_other": b_best,
            "findings_appeared": sorted(k for k in fb if k not in fa),
            "findings_disappeared": sorted(k for k in fa if k not in fb),
            "findings_changed": {k: [fa[k], fb[k]] for k in sorted(set(fa) & set(fb)) if fa[k] != fb[k]},
        })
    return {"sweeps": sweeps, "comparisons": comparisons}


def render_text(data: dict) -> str:
    out = ["Sweeps compared (the first is the baseline):"]
    for s in data["sweeps"]:
        best = s["best"]
        out.append(f"  {s['name']} ({s['path']}): best "
                   + (f"{_ms(best)} with {' '.join(best['overrides']) or '(defaults)'}"
                      if best else "n/a (no completed run)"))
        out.append(f"    axes: {', '.join(s['axes']) or 'none'}; jobs completed {s['jobs']['completed']} of "
                   f"{s['jobs']['found']}")
    for c in data["comparisons"]:
        out += ["", f"{c['other']} vs {c['baseline']}:"]
        if c["best_delta"] is not None:
            out.append(f"  best val accuracy {c['best_delta']:+.4f}")
        if c["different_axes"]:
            out.append(f"  different axes: only in {c['baseline']}: {', '.join(c['axes_only_in_baseline']) or '-'}; "
                       f"only in {c['other']}: {', '.join(c['axes_only_in_other']) or '-'}")
        out.append(f"  findings appeared: {', '.join(c['findings_appeared']) or 'none'}")
        out.append(f"  findings disappeared: {', '.join(c['findings_disappeared']) or 'none'}")
        for k, (a, b) in c["findings_changed"].items():
            out.append(f"  {k}: {a} -> {b} runs")
    return "\n".join(out) + "\n"


def render_markdown(data: dict) -> str:
    from .render.markdown import code, md_escape

    out = ["# Sweep comparison", "", "| sweep | best val accuracy | best overrides | axes | completed |",
           "|---|---|---|---|---|"]
    for s in data["sweeps"]:
        b = s["best"]
        best = "n/a" if not b else _ms(b)
        overrides = " ".join(code(o) for o in b["overrides"]) if b else ""
        out.append(f"| {md_escape(s['name'])} | {best} | {overrides} | {md_escape(', '.join(s['axes']))} | "
                   f"{s['jobs']['completed']}/{s['jobs']['found']} |")
    for c in data["comparisons"]:
        out += ["", f"## {md_escape(c['other'])} vs {md_escape(c['baseline'])}", ""]
        if c["best_delta"] is not None:
            out.append(f"- best val accuracy {c['best_delta']:+.4f}")
        if c["different_axes"]:
            out.append(f"- different axes: only in baseline {md_escape(', '.join(c['axes_only_in_baseline']) or '-')}, "
                       f"only in {md_escape(c['other'])} {md_escape(', '.join(c['axes_only_in_other']) or '-')}")
        out.append(f"- findings appeared: {', '.join(code(k) for k in c['findings_appeared']) or 'none'}")
        out.append(f"- findings disappeared: {', '.join(code(k) for k in c['findings_disappeared']) or 'none'}")
    return "\n".join(out) + "\n"


def render_html(data: dict) -> str:
    from html import escape

    from .render.html import page

    md = render_markdown(data)
    return page("traindx sweep comparison", [f"<pre>{escape(md)}</pre>"])
