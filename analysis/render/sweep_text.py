"""Sweep reports as terminal text and as Markdown."""

from __future__ import annotations

from ..overrides import fmt, values_text
from .markdown import code, md_escape


def _num(v, spec=".4f") -> str:
    return "n/a" if v is None else format(v, spec)


def _ms(level: dict) -> str:
    """mean ± sd (n); a single run has no spread to show: mean (n=1)."""
    if not level["n"]:
        return "n/a"
    if level["n"] == 1:
        return f"{level['mean']:.4f} (n=1)"
    return f"{level['mean']:.4f} ± {level['std']:.4f} (n={level['n']})"


def title(s: dict) -> str:
    """`Sweep outputs/multirun/...`, or for single runs compared: `3 runs compared (under /tmp/x)`."""
    if s.get("kind") == "runs":
        return f"{s['jobs']['found']} runs compared (under {s['path']})"
    return f"Sweep {s['path']}"


def provenance_lines(s: dict) -> list[str]:
    j = s["jobs"]
    runs = s.get("kind") == "runs"
    if runs:
        lines = ["runs given one by one; axes: the config values that differ among them"
                 + (f"; shared overrides: {' '.join(f'{k}={fmt(v, exact=True)}' for k, v in s['fixed'].items())}"
                    if s.get("fixed") else "")]
    else:
        lines = [f"command: {s['command'] or 'n/a (no multirun.yaml)'}"]
    if s["axes"]:
        lines.append("axes: " + "; ".join(f"{k} = {values_text(vs)}" for k, vs in s["axes"].items()))
    failed = j["failed"] + j["no diagnostics"] + j["unreadable"]
    if runs:
        lines.append(f"runs: {j['found']}, {j['completed']} completed, {failed} failed, {j['running']} running, "
                     f"{j['preempted']} preempted")
    else:
        lines.append(f"jobs: {j['expected'] if j['expected'] is not None else '?'} expected, {j['completed']} "
                     f"completed, {failed} failed, {j['running']} running, {j['preempted']} preempted, "
                     f"{j['missing']} missing")
    for f in s["failures"]:
        lines.append(f"{'run' if runs else 'job'} {f['job']} {f['status']}: {f['error']}")
    for st in s.get("stale") or []:
        lines.append(f"{'run' if runs else 'job'} {st['job']} running: {st['note']}")
    if s["missing_jobs"]:
        lines.append(f"missing jobs: {', '.join(str(m) for m in s['missing_jobs'][:20])}")
    return lines


def effect_title(axis: dict) -> str:
    """`effect of K on best val accuracy`, saying so when its values tie in every comparable configuration."""
    head = f"effect of {axis['key']} on best val accuracy"
    if axis.get("effect") == "none":
        n = axis["compared"]
        head += (" (none: its values tie " + ("where only it differs" if n == 1 else
                                              f"in each of the {n} comparisons where only it differs") + ")")
    return head


def replicates_line(report: dict) -> str | None:
    rep = report.get("replicates")
    if not rep:
        return None
    sd = rep.get("noise_sd")
    return (f"seeds ({rep['key']} = {values_text(rep['values'])}) are replicates, not an axis: each "
            f"configuration is the mean ± sd over its seeds, with n" + (f"; run-to-run sd {sd:.4f}" if sd else ""))


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    return [line, "  ".join("-" * w for w in widths)] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]


def run_table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    keys = list(report["sweep"]["axes"])
    headers = ["job", *keys, "status", "best acc", "final acc", "best ep", "train loss", "cuts", "findings", "flags"]
    rows = []
    for r in report["runs"]:
        rows.append([r["job"], *[fmt(r["overrides"][k]) if k in r["overrides"] else "-" for k in keys], r["status"],
                     _num(r["best_val_accuracy"]),
                     _num(r["final_val_accuracy"]), str(r["best_epoch"] if r["best_epoch"] is not None else "n/a"),
                     _num(r["final_train_loss"], ".4g"), str(r["lr_cuts"] if r["lr_cuts"] is not None else "n/a"),
                     ",".join(r["warnings_or_worse"]) or "-", "; ".join(r.get("flags") or []) or "-"])
    return headers, rows


def replicate_rows(report: dict) -> list[list[str]]:
    """Configurations with more than one run (seeds as replicates), best mean first; [] when none."""
    groups = [g for g in report["configurations"] if g["n"] > 1 or len(g["runs"]) > 1]
    groups.sort(key=lambda g: -(g["mean"] if g["mean"] is not None else -1))
    return [[" ".join(f"{k}={fmt(v)}" for k, v in g["overrides"].items()) or "(defaults)", _ms(g),
             ", ".join(g["runs"][:20])] for g in groups]


def render_sweep_text(report: dict, html_path: str | None = None) -> str:
    s = report["sweep"]
    out = [title(s)] + [f"  {line}" for line in provenance_lines(s)] + [""]
    out += _table(*run_table_rows(report))
    for axis in report["axes"]:
        out += ["", f"{effect_title(axis)}:"]
        out += [f"  {fmt(level['value'])}: {_ms(level)}" for level in axis["levels"]]
    rep = replicates_line(report)
    if rep:
        out += ["", rep]
    replicates = replicate_rows(report)
    if replicates:
        out += ["", "configurations (seeds as replicates):"] + [f"  {c}: {m}  [runs {r}]" for c, m, r in replicates]
    best = report["best"]
    if best:
        out += ["", f"best: {' '.join(best['overrides_cli']) or '(defaults)'}: {_ms(best)}"]
        out += [f"  note: {n}" for n in best["edge_notes"]]
    if report["recommendations"]:
        out += ["", "recommendations across the sweep:"]
        for r in report["recommendations"]:
            out.append(f"  [{r['finding']}] {r['text']} ({r['count']} runs: {', '.join(r['runs'][:12])})"
                       + (f"  ->  {' '.join(r['overrides'])}" if r["overrides"] else ""))
            for sup in r["support"]:
                out.append(f"      {sup['override']}: {sup['verdict']}: {sup['note']}")
    if html_path:
        out += ["", f"HTML report: {html_path}"]
    return "\n".join(out) + "\n"


def render_sweep_markdown(report: dict) -> str:
    s = report["sweep"]
    head = f"{s['jobs']['found']} runs compared" if s.get("kind") == "runs" else f"Sweep {s['name']}"
    out = [f"# {md_escape(head)}", "", f"Path: {code(s['path'])}", ""]
    out += [f"- {md_escape(line)}" for line in provenance_lines(s)]
    headers, rows = run_table_rows(report)
    out += ["", "## Runs", "", "| " + " | ".join(md_escape(h) for h in headers) + " |",
            "|" + "---|" * len(headers)] + ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    out += ["", "## Effect of each axis (best validation accuracy)", ""]
    rep = replicates_line(report)
    if rep:
        out += [md_escape(rep), ""]
    for axis in report["axes"]:
        none = " (no effect: its values tie)" if axis.get("effect") == "none" else ""
        out += [f"**{md_escape(axis['key'])}**{none}", "", "| value | mean ± std (n) | min | max |",
                "|---|---|---|---|"]
        out += [f"| {md_escape(fmt(lv['value']))} | {_ms(lv)} | {_num(lv['min'])} | {_num(lv['max'])} |"
                for lv in axis["levels"]] + [""]
    g = report["grid"]
    if g:
        out += [f"## Grid: {md_escape(g['rows'])} x {md_escape(g['cols'])}", "",
                "| " + md_escape(g["rows"]) + " \\\\ " + md_escape(g["cols"]) + " | "
                + " | ".join(md_escape(fmt(c)) for c in g["col_values"]) + " |",
                "|" + "---|" * (len(g["col_values"]) + 1)]
        for rv, mrow, nrow in zip(g["row_values"], g["mean"], g["n"]):
            out.append(f"| {md_escape(fmt(rv))} | " + " | ".join(
                f"{m:.4f} (n={n})" if m is not None else "n/a" for m, n in zip(mrow, nrow)) + " |")
        if g["averaged_over"]:
            out.append(f"\nAveraged over {', '.join(md_escape(k) for k in g['averaged_over'])}.")
        for key, count in g.get("omitted", {}).items():
            out.append(f"\n{count} values of {md_escape(key)} without runs are not shown.")
        out.append("")
    replicates = replicate_rows(report)
    if replicates:
        out += ["## Configurations (seeds as replicates)", "", "| configuration | best val accuracy | runs |",
                "|---|---|---|"] + [f"| {md_escape(c)} | {m} | {md_escape(r)} |" for c, m, r in replicates] + [""]
    best = report["best"]
    if best:
        out += ["## Best configuration", "", f"{' '.join(code(o) for o in best['overrides_cli']) or '(defaults)'}: "
                f"{_ms(best)}"] + [f"- {md_escape(n)}" for n in best["edge_notes"]] + [""]
    out += ["## Recommendations across the sweep", ""]
    if not report["recommendations"]:
        out.append("No warning or critical finding recommended a change.")
    for r in report["recommendations"]:
        ov = " ".join(code(o) for o in r["overrides"])
        out.append(f"- **{md_escape(r['finding'])}** ({r['count']} runs: {md_escape(', '.join(r['runs'][:20]))}): "
                   f"{md_escape(r['text'])}" + (f": {ov}" if ov else ""))
        for sup in r["support"]:
            out.append(f"  - {code(sup['override'])}: **{sup['verdict']}**: {md_escape(sup['note'])}")
    if report["findings_by_id"]:
        out += ["", "## Findings by id", "", "| id | runs |", "|---|---|"]
        out += [f"| {code(k)} | {len(v)}: {md_escape(', '.join(v[:30]))} |" for k, v in report["findings_by_id"].items()]
    if report["warnings"]:
        out += ["", "## Reading warnings", ""] + [f"- {md_escape(w)}" for w in report["warnings"][:200]]
    return "\n".join(out) + "\n"
