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
    """`effect of K on best val accuracy`, saying so when its values tie in every comparable configuration, or
    when the key never acted (then its values are copies of one observation)."""
    head = f"effect of {axis['key']} on best val accuracy"
    if axis.get("effect") == "not exercised":
        return head + f" (not exercised: {axis.get('not_exercised_why')})"
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


def _value_line(key: str, lv: dict) -> str:
    """One axis value's runs in a line: best vs final, LR cuts, progress verdicts, findings with counts."""
    n = lv["n_runs"]
    bf = lv["best_minus_final"]
    parts = [f"{key}={fmt(lv['value'])}: {n} runs ({lv['n']} observations)"]
    if bf["mean"] is not None:
        parts.append(f"best - final val accuracy {bf['mean']:.3f} on average, up to {bf['max']:.3f}")
    parts.append("no LR cut" if not lv["runs_with_cuts"] else
                 f"LR cut in {lv['runs_with_cuts']}/{n} runs at epochs "
                 + ", ".join(f"{e}" + (f" (x{c})" if c > 1 else "") for e, c in lv["cut_epochs"].items()))
    if lv["max_drawdown"] is not None:
        parts.append(f"validation fell up to {lv['max_drawdown']:.3f} below its running best")
    if lv["progress"]:
        parts.append("progress " + ", ".join(f"{v} {k}/{n}" for v, k in lv["progress"].items()))
    if lv["findings"]:
        parts.append("findings " + ", ".join(f"{f} {k}/{n}" for f, k in sorted(lv["findings"].items())))
    return "; ".join(parts)


def explained_lines(report: dict) -> list[tuple[str, list[str]]]:
    """Each axis' explanation: (its headline, the detail lines under it)."""
    ex = report.get("explained")
    if not ex:
        return []
    out = []
    for axis in ex["axes"]:
        details = [_value_line(axis["key"], lv) for lv in axis["levels"]]
        details += axis["finding_contrasts"]
        details += [f"diagnostics differ beyond noise: {d}" for d in axis["fields_differing"]]
        out.append((axis["headline"], details))
    return out


def noise_line(report: dict) -> str | None:
    ex = report.get("explained")
    return f"noise: {ex['noise']['statement']}" if ex else None


def variance_lines(report: dict) -> list[str]:
    """The shares of variance in best accuracy (ANOVA on a grid, or Optuna's importance), one line each."""
    v = report.get("variance")
    if not v:
        return []
    if not v.get("method"):
        return [f"not computed: {v['note']}"]
    lines = []
    for t in sorted(v["terms"], key=lambda t: -t["share"]):
        test = ""
        if t.get("p_holm") is not None:
            test = f", F={t['f']:.2f}, Holm p={t['p_holm']:.2g}: " + ("beyond noise" if t["beyond_noise"]
                                                                     else "within noise") if t.get("f") is not None \
                else f", Holm p={t['p_holm']:.2g}"
        lines.append(f"{' x '.join(t['term'])}: {t['share']:.1%}{test}")
    if v["method"] == "anova":
        lines.append(f"interactions of 3+ axes: {v['higher_order_share']:.1%}")
        lines.append("replicates' noise (the floor): " + (f"{v['noise_share']:.1%}" if v["noise_share"] is not None
                                                          else "unknown (no replicates)"))
    lines.append(v["note"])
    return lines


def recommendation_checks(report: dict) -> list[list[str]]:
    """For each recommendation (in report["recommendations"]' order): what the sweep ran of the value it
    recommends and what that value did, marked when the sweep's own evidence contradicts it."""
    ex = report.get("explained")
    if not ex:
        return [[] for _ in report["recommendations"]]
    out = []
    for r in ex["recommendations"]:
        lines = [("CONTRADICTED BY THE SWEEP: " if c["verdict"] == "contradicts the sweep's evidence" else "")
                 + f"{c['override']}: {c['note']}" + (f" [{c['verdict']}]" if c.get("ran") else "")
                 for c in r["checks"]]
        out.append(lines)
    return out


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
    explained = explained_lines(report)
    if explained:
        out += ["", "what each axis did (from the runs' diagnostics):"]
        for head, details in explained:
            out += [f"  {head}"] + [f"      {d}" for d in details]
        out.append(f"  {noise_line(report)}")
    for axis in report["axes"]:
        out += ["", f"{effect_title(axis)}:"]
        out += [f"  {fmt(level['value'])}: {_ms(level)}" for level in axis["levels"]]
    variance = variance_lines(report)
    if variance:
        out += ["", "share of the variance in best val accuracy:"] + [f"  {line}" for line in variance]
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
        checks = recommendation_checks(report)
        for i, r in enumerate(report["recommendations"]):
            out.append(f"  [{r['finding']}] {r['text']} ({r['count']} runs: {', '.join(r['runs'][:12])})"
                       + (f"  ->  {' '.join(r['overrides'])}" if r["overrides"] else ""))
            for sup in r["support"]:
                out.append(f"      {sup['override']}: {sup['verdict']}: {sup['note']}")
            out += [f"      ran: {line}" for line in checks[i]]
    out += [f"note: {n}" for n in report.get("notes", [])]
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
    explained = explained_lines(report)
    if explained:
        out += ["", "## What each axis did", ""]
        for head, details in explained:
            out += [f"**{md_escape(head)}**", ""] + [f"- {md_escape(d)}" for d in details] + [""]
        out.append(md_escape(noise_line(report)))
    out += ["", "## Effect of each axis (best validation accuracy)", ""]
    rep = replicates_line(report)
    if rep:
        out += [md_escape(rep), ""]
    for axis in report["axes"]:
        none = {"none": " (no effect: its values tie)",
                "not exercised": f" (not exercised: {md_escape(axis.get('not_exercised_why') or '')})"}.get(
                    axis.get("effect"), "")
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
    variance = variance_lines(report)
    if variance:
        out += ["## Share of the variance in best validation accuracy", ""] + [f"- {md_escape(v)}" for v in variance]
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
    checks = recommendation_checks(report)
    for i, r in enumerate(report["recommendations"]):
        ov = " ".join(code(o) for o in r["overrides"])
        out.append(f"- **{md_escape(r['finding'])}** ({r['count']} runs: {md_escape(', '.join(r['runs'][:20]))}): "
                   f"{md_escape(r['text'])}" + (f": {ov}" if ov else ""))
        for sup in r["support"]:
            out.append(f"  - {code(sup['override'])}: **{sup['verdict']}**: {md_escape(sup['note'])}")
        out += [f"  - ran: {md_escape(line)}" for line in checks[i]]
    if report["findings_by_id"]:
        out += ["", "## Findings by id", "", "| id | runs |", "|---|---|"]
        out += [f"| {code(k)} | {len(v)}: {md_escape(', '.join(v[:30]))} |" for k, v in report["findings_by_id"].items()]
    if report.get("notes"):
        out += ["", "## Notes", ""] + [f"- {md_escape(n)}" for n in report["notes"]]
    if report["warnings"]:
        out += ["", "## Reading warnings", ""] + [f"- {md_escape(w)}" for w in report["warnings"][:200]]
    return "\n".join(out) + "\n"
