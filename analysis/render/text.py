"""The terminal report of one run: the seed's sections, then Diagnosis & Recommendations."""

from __future__ import annotations

MARK = {"critical": "[CRITICAL]", "warning": "[WARNING] ", "info": "[info]    "}


def overrides_line(overrides: list[str]) -> str:
    return " ".join(overrides)


def fix_line(r: dict) -> str:
    """A recommendation's overrides, and the run's own overrides they take the place of (a group switched)."""
    return overrides_line(r["overrides"]) + (f"  (in place of {overrides_line(r['replaces'])})" if r.get("replaces")
                                             else "")


def finding_lines(f: dict, indent: str = "") -> list[str]:
    lines = [f"{indent}{MARK.get(f['severity'], f['severity'])} {f['id']}: {f['message']}"]
    for r in f.get("recommendations", []):
        tail = f"  ->  {fix_line(r)}" if r.get("overrides") else ""
        lines.append(f"{indent}    - {r['text']}{tail}")
    return lines


def cause_lines(cause: dict | None, indent: str = "  ") -> list[str]:
    """The differential diagnosis: the primary cause, its evidence and fix, its symptoms, the alternatives."""
    if not cause:
        return []
    p = cause.get("primary")
    if p is None:
        alts = ", ".join(f"{a['id']} ({a['score']:g})" for a in cause.get("alternatives", []))
        return [f"{indent}cause: no single cause stands out" + (f"; candidates: {alts}" if alts else "")]
    lines = [f"{indent}primary cause: {p['text']} [{p['id']}, score {p['score']:g}]"]
    lines += [f"{indent}    for: {e}" for e in p["evidence_for"]]
    lines += [f"{indent}    against: {e}" for e in p["evidence_against"]]
    for r in p["recommendations"][:2]:
        tail = f"  ->  {fix_line(r)}" if r.get("overrides") else ""
        lines.append(f"{indent}    fix: {r['text']}{tail}")
    if cause.get("symptoms"):
        lines.append(f"{indent}    its symptoms: {', '.join(cause['symptoms'])}")
    if cause.get("alternatives"):
        lines.append(f"{indent}    alternatives: " + ", ".join(f"{a['id']} ({a['score']:g})" for a in cause["alternatives"]))
    return lines


def cell(v: object) -> str:
    return "n/a" if v is None else str(v)


def table_lines(table: dict | None, indent: str = "") -> list[str]:
    """A section's table ({"columns": [...], "rows": [[...]]}) in aligned columns."""
    if not table or not table.get("rows"):
        return []
    grid = [[str(c) for c in table["columns"]]] + [[cell(v) for v in row] for row in table["rows"]]
    widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
    return [indent + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in grid]


def status_text(run: dict) -> str:
    """`running`, or `running (no update for 42 min: the process may have been killed; rerun to resume)`."""
    return run["status"] + (f" ({run['status_note']})" if run.get("status_note") else "")


def render_run(report: dict) -> str:
    run, s = report["run"], report["summary"]
    out = [f"Run {run['name']}  ({run['path']})", f"status {status_text(run)}, {s['epochs']} epochs"
           + (f" of {s['planned_epochs']}" if s.get("planned_epochs") else "")]
    out += [f"note: {n}" for n in run.get("notes") or []]
    if run.get("choices"):
        out.append("config: " + ", ".join(f"{k}={v}" for k, v in run["choices"].items()))
    if run.get("overrides"):
        out.append("overrides: " + " ".join(run["overrides"]))
    if run.get("error"):
        out.append(f"error: {run['error']}")
    if report.get("progress"):
        out += ["", "== Progress ==", f"  {report['progress']['sentence']}"]
    for section in report["sections"]:
        out += ["", f"== {section['title']} =="] + [f"  {line}" for line in section["lines"]]
        out += table_lines(section.get("table"), "    ")
    out += ["", "== Diagnosis & Recommendations =="]
    out += cause_lines(report.get("cause"))
    if not report["findings"]:
        out.append("  no findings: nothing in this run crossed a threshold"
                   + (" among the checks that could run" if report.get("not_checked") else ""))
    out += [f"  not checked: {line}" for line in report.get("not_checked") or []]
    for f in report["findings"]:
        out += finding_lines(f, "  ")
    if report.get("warnings"):
        out += ["", "== Reading warnings =="] + [f"  {w}" for w in report["warnings"]]
    return "\n".join(out) + "\n"
