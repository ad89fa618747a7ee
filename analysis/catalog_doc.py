"""The rule catalog as a Markdown table (the README's catalog is this output)."""

from __future__ import annotations

from .rules import CATALOG


def catalog_markdown() -> str:
    rows = ["| id | section | detects | thresholds | source |", "|---|---|---|---|---|"]
    for r in CATALOG.values():
        th = "; ".join(f"{k}: {v}" for k, v in r.thresholds.items())
        rows.append(f"| `{r.id}` | {r.section} | {r.title} | {th.replace('|', chr(92) + '|')} | {r.source} |")
    return "\n".join(rows) + "\n"
