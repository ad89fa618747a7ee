"""Several sweeps compared (compare.build's data) as terminal text and as Markdown."""

from __future__ import annotations

from ..overrides import values_text
from .markdown import code, md_escape


def ms(best: dict) -> str:
    """mean ± sd (n), or mean (n=1) for a single run."""
    if best["n"] == 1:
        return f"{best['mean']:.4f} (n=1)"
    return f"{best['mean']:.4f} ± {best['std']:.4f} (n={best['n']})"


def setting_text(s: dict) -> str:
    """`swept 1, 3`, `fixed 0.05` or `default`."""
    return s["kind"] + (" " + values_text(s["values"]) if s["values"] else "")


def delta_text(c: dict, noise_se: int = 2) -> str:
    """`+0.0123 ± 0.0040 (1 se, t=3.1 at 2.0 dof, p=0.09): within noise`, or without replicates:
    `+0.0123 (noise unknown: ...)`."""
    d, se = c["best_delta"], c["best_delta_se"]
    if se is None or c.get("best_delta_within_noise") is None:
        return f"{d:+.4f} (noise unknown: no seeds swept as replicates on one side)"
    verdict = "within noise" if c["best_delta_within_noise"] else "more than noise"
    t = f"t={d / se:.2f}, " if se else ""
    return (f"{d:+.4f} ± {se:.4f} (1 standard error; {t}{c['best_delta_dof']:.1f} degrees of freedom, "
            f"Holm p={c['best_delta_p_holm']:.2g}): {verdict}")


def sweep_line(s: dict) -> str:
    best = s["best"]
    return (f"best {ms(best)} with {' '.join(best['overrides']) or '(defaults)'}" if best
            else "best n/a (no completed run)")


def render_text(data: dict) -> str:
    out = ["Sweeps compared (the first is the baseline):"]
    for s in data["sweeps"]:
        out.append(f"  {s['name']} ({s['path']}): {sweep_line(s)}")
        out.append(f"    axes: {', '.join(s['axes']) or 'none'}; jobs completed {s['jobs']['completed']} of "
                   f"{s['jobs']['found']}" + (f"; seeds {values_text(s['seeds'])} as replicates"
                                              if s["seeds"] else ""))
    for c in data["comparisons"]:
        out += ["", f"{c['other']} vs {c['baseline']}:"]
        if c["best_delta"] is not None:
            out.append(f"  best val accuracy {delta_text(c, data['noise_se'])}")
        for ch in c["settings_changed"]:
            out.append(f"  {ch['key']}: {setting_text(ch['baseline'])} -> {setting_text(ch['other'])}")
        out.append(f"  findings appeared: {', '.join(c['findings_appeared']) or 'none'}")
        out.append(f"  findings disappeared: {', '.join(c['findings_disappeared']) or 'none'}")
        for k, (a, b) in c["findings_changed"].items():
            out.append(f"  {k}: {a} -> {b} runs")
        out += recommendation_change_lines(c, "  ")
    return "\n".join(out) + "\n"


def recommendation_change_lines(c: dict, indent: str) -> list[str]:
    """Recommendations that appeared, disappeared or changed count between two sweeps."""
    out = [f"{indent}recommendation appeared: {k}" for k in c.get("recommendations_appeared", [])]
    out += [f"{indent}recommendation disappeared: {k}" for k in c.get("recommendations_disappeared", [])]
    out += [f"{indent}recommendation {k}: {a} -> {b} runs" for k, (a, b) in c.get("recommendations_changed", {}).items()]
    return out


def render_markdown(data: dict) -> str:
    out = ["# Sweep comparison", "", "| sweep | best val accuracy | best overrides | axes | completed |",
           "|---|---|---|---|---|"]
    for s in data["sweeps"]:
        b = s["best"]
        overrides = " ".join(code(o) for o in b["overrides"]) if b else ""
        out.append(f"| {md_escape(s['name'])} | {ms(b) if b else 'n/a'} | {overrides} | "
                   f"{md_escape(', '.join(s['axes']))} | {s['jobs']['completed']}/{s['jobs']['found']} |")
    for c in data["comparisons"]:
        out += ["", f"## {md_escape(c['other'])} vs {md_escape(c['baseline'])}", ""]
        if c["best_delta"] is not None:
            out.append(f"- best val accuracy {md_escape(delta_text(c, data['noise_se']))}")
        if c["settings_changed"]:
            out += ["", "| key | baseline | other |", "|---|---|---|"]
            out += [f"| {code(ch['key'])} | {md_escape(setting_text(ch['baseline']))} | "
                    f"{md_escape(setting_text(ch['other']))} |" for ch in c["settings_changed"]] + [""]
        out.append(f"- findings appeared: {', '.join(code(k) for k in c['findings_appeared']) or 'none'}")
        out.append(f"- findings disappeared: {', '.join(code(k) for k in c['findings_disappeared']) or 'none'}")
        out += [f"- {code(k)}: {a} -> {b} runs" for k, (a, b) in c["findings_changed"].items()]
        out += [f"- {md_escape(line)}" for line in recommendation_change_lines(c, "")]
    return "\n".join(out) + "\n"
