"""The rule catalog as a Markdown table: `python -m analysis --rules`, and docs/rules.md
(`python -m analysis.catalog_doc > docs/rules.md`; tests/test_docs.py checks it)."""

from __future__ import annotations

import sys

from .rules import CATALOG


SOURCES = ("Sources: *recipe* is the original recipe traindx grew from (its rules of thumb, quoted); *ours* marks "
           "what this project chose and tests; the rest are the tools and papers named.")


def catalog_markdown() -> str:
    rows = ["| id | section | detects | thresholds | source |", "|---|---|---|---|---|"]
    for r in CATALOG.values():
        th = "; ".join(f"{k}: {v}" for k, v in r.thresholds.items())
        rows.append(f"| `{r.id}` | {r.section} | {r.title} | {th.replace('|', chr(92) + '|')} | {r.source} |")
    return "\n".join(rows) + "\n"


def catalog_page() -> str:
    """docs/rules.md: the title, what the source column's words mean, the table."""
    return "# Rule catalog\n\n" + SOURCES + "\n\n" + catalog_markdown()


if __name__ == "__main__":
    sys.stdout.write(catalog_page())
