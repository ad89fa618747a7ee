"""The rule catalog: one small function per finding id, registered here, documented in docs/rules.md.

A rule takes a `Run` and returns a `Finding` or None. Its id is public and stable; its thresholds
are module constants named in `thresholds`, with the source they come from (the original recipe's
diagnostics document, or a published tool: SageMaker Debugger, AUTOTRAINER, UMLAUT, ...).
`python -m analysis --rules` prints the catalog; `python -m analysis.catalog_doc > docs/rules.md` writes it.
"""

from __future__ import annotations

from .catalog import CATALOG, Rule, rule, run_rules

# Importing the modules registers their rules, in report order.
from . import data, schedule, loss, gradients, generalization, convergence, per_class, labels, ending  # noqa: E402,F401

diagnose = run_rules  # every rule of the catalog on a run: the name the reports, the trainer and the tests use

__all__ = ["CATALOG", "Rule", "rule", "diagnose", "run_rules"]
