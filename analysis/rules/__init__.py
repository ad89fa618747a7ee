"""The rule catalog: one small function per finding id, registered here, documented in docs/rules.md.

A rule takes a `Run` and returns a `Finding` or None. Its id is public and stable; its thresholds
are module constants named in `thresholds`, with the source they come from (the original recipe's
diagnostics document, or a published tool: SageMaker Debugger, AUTOTRAINER, UMLAUT, ...).
`python -m analysis --rules` prints the catalog; `python -m analysis.catalog_doc > docs/rules.md` writes it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..findings import Finding, severity_rank
from rundir.read import Run


@dataclass
class Rule:
    id: str
    section: str  # report section it belongs to
    title: str  # what it detects, in a few words
    source: str  # where its statistic and thresholds come from
    thresholds: dict = field(default_factory=dict)
    fn: Optional[Callable[[Run], Optional[Finding]]] = None


CATALOG: dict[str, Rule] = {}


def rule(id: str, *, section: str, title: str, source: str, thresholds: Optional[dict] = None):
    """Register a rule function under a stable id."""

    def register(fn: Callable[[Run], Optional[Finding]]):
        if id in CATALOG:
            raise ValueError(f"rule id {id!r} registered twice")
        CATALOG[id] = Rule(id, section, title, source, dict(thresholds or {}), fn)
        return fn

    return register


def diagnose(run: Run, ids: Optional[list[str]] = None) -> list[Finding]:
    """Every finding that holds for the run, most severe first. A rule that trips over a malformed
    run is reported as a warning on the run, never as a crash of the report."""
    findings = []
    for rule_ in CATALOG.values():
        if ids is not None and rule_.id not in ids:
            continue
        try:
            # Overflow on absurd values yields inf, an all-NaN column a NaN mean: rules handle both.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                found = rule_.fn(run)
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, AttributeError) as e:
            run.warnings.append(f"rule {rule_.id} skipped: {type(e).__name__}: {e}")
            continue
        if found is not None:
            findings.append(found)
    order = list(CATALOG)
    findings.sort(key=lambda f: (-severity_rank(f.severity), order.index(f.id)))
    return findings


# Importing the modules registers their rules, in report order.
from . import data, schedule, loss, gradients, generalization, ending  # noqa: E402,F401
