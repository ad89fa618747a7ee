"""The terminal report of one run: the seed's sections, then Diagnosis & Recommendations."""

from __future__ import annotations

MARK = {"critical": "[CRITICAL]", "warning": "[WARNING] ", "info": "[info]    "}


def overrides_line(overrides: list[str]) -> str:
    return " ".join(overrides)


def finding_lines(f: dict, indent: str = "") -> list[str]:
    lines = [f"{indent}{MARK.get(f['severity'], f['severity'])} {f['id']}: {f['message']}"]
    for r in f.get("recommendations", []):
        tail = f"  ->  {overrides_line(r['overrides'])}" if r.get("overrides") else ""
        lines.append(f"{indent}    - {r['text']}{tail}")
    return lines


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
    for section in report["sections"]:
        out += ["", f"== {section['title']} =="] + [f"  {line}" for line in section["lines"]]
    out += ["", "== Diagnosis & Recommendations =="]
    if not report["findings"]:
        out.append("  no findings: nothing in this run crossed a threshold")
    for f in report["findings"]:
        out += finding_lines(f, "  ")
    if report.get("warnings"):
        out += ["", "== Reading warnings =="] + [f"  {w}" for w in report["warnings"]]
    return "\n".join(out) + "\n"
