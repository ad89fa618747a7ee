"""The Markdown report of one run."""

from __future__ import annotations

from typing import Optional

from .text import status_text

SUMMARY_ROWS = [("best_val_accuracy", "best val accuracy"), ("best_epoch", "best epoch"),
                ("final_val_accuracy", "final val accuracy"), ("final_train_loss", "final train loss"),
                ("final_val_loss", "final val loss"), ("lr_cuts", "LR cuts")]


def md_escape(text: object) -> str:
    """Keep user text from turning into Markdown or HTML structure."""
    s = str(text)
    for ch in "\\`*_[]<>|":
        s = s.replace(ch, "\\" + ch)
    return s


def code(text: str) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else md_escape(v)


def table_md(table: Optional[dict]) -> list[str]:
    """A section's table ({"columns": [...], "rows": [[...]]}) as a Markdown table, every cell escaped."""
    if not table or not table.get("rows"):
        return []
    return (["", "| " + " | ".join(md_escape(c) for c in table["columns"]) + " |",
             "|" + "---|" * len(table["columns"])]
            + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table["rows"]])


def finding_md(f: dict) -> list[str]:
    lines = [f"- **{f['severity']}** {code(f['id'])}: {md_escape(f['message'])}"]
    for r in f.get("recommendations", []):
        ov = " ".join(code(o) for o in r.get("overrides", [])) + (
            " in place of " + " ".join(code(o) for o in r["replaces"]) if r.get("replaces") else "")
        lines.append(f"  - {md_escape(r['text'])}" + (f": {ov}" if ov else ""))
    return lines


def cause_md(cause: Optional[dict]) -> list[str]:
    if not cause or not cause.get("primary"):
        return []
    p = cause["primary"]
    lines = [f"**Primary cause**: {md_escape(p['text'])} ({code(p['id'])}, score {p['score']:g})", ""]
    lines += [f"- for: {md_escape(e)}" for e in p["evidence_for"]]
    lines += [f"- against: {md_escape(e)}" for e in p["evidence_against"]]
    for r in p["recommendations"][:2]:
        ov = " ".join(code(o) for o in r.get("overrides", [])) + (
            " in place of " + " ".join(code(o) for o in r["replaces"]) if r.get("replaces") else "")
        lines.append(f"- fix: {md_escape(r['text'])}" + (f": {ov}" if ov else ""))
    if cause.get("symptoms"):
        lines.append("- its symptoms: " + ", ".join(code(s) for s in cause["symptoms"]))
    if cause.get("alternatives"):
        lines.append("- alternatives: " + ", ".join(f"{code(a['id'])} ({a['score']:g})" for a in cause["alternatives"]))
    return lines + [""]


def render_run(report: dict, plots: Optional[list[str]] = None) -> str:
    run, s = report["run"], report["summary"]
    out = [f"# Run {md_escape(run['name'])}", "", f"Path: {code(run['path'])}  ", f"Status: {md_escape(status_text(run))}  "]
    out += [f"Note: {md_escape(n)}  " for n in run.get("notes") or []]
    if run.get("choices"):
        out.append("Config: " + ", ".join(code(f"{k}={v}") for k, v in run["choices"].items()) + "  ")
    if run.get("overrides"):
        out.append("Overrides: " + " ".join(code(o) for o in run["overrides"]) + "  ")
    if run.get("error"):
        out.append(f"error: {md_escape(run['error'])}  ")
    out += ["", "| metric | value |", "|---|---|"] + [f"| {label} | {fmt(s.get(k))} |" for k, label in SUMMARY_ROWS]
    if report.get("progress"):
        out += ["", "## Progress", "", f"**{md_escape(report['progress']['verdict'])}**: "
                f"{md_escape(report['progress']['sentence'])}"]
    for section in report["sections"]:
        out += ["", f"## {section['title']}", ""] + [f"- {md_escape(line)}" for line in section["lines"]]
        out += table_md(section.get("table"))
    out += ["", "## Diagnosis & Recommendations", ""]
    out += cause_md(report.get("cause"))
    if not report["findings"]:
        out.append("No findings: nothing in this run crossed a threshold"
                   + (" among the checks that could run." if report.get("not_checked") else "."))
    out += [f"- not checked: {md_escape(line)}" for line in report.get("not_checked") or []]
    for f in report["findings"]:
        out += finding_md(f)
    for p in plots or []:
        out += ["", f"![{p}]({p})"]
    if report.get("warnings"):
        out += ["", "## Reading warnings", ""] + [f"- {md_escape(w)}" for w in report["warnings"]]
    return "\n".join(out) + "\n"
