"""Findings are data: what fired, how sure, on what evidence, and what to change next.

Rendering is separate: every report format reads these objects (or their dicts) and computes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

SEVERITIES = ("info", "warning", "critical")


@dataclass
class Recommendation:
    text: str
    overrides: list[str] = field(default_factory=list)  # Hydra overrides, ready for the next -m command


@dataclass
class Finding:
    id: str  # stable, public: the catalog in the README lists every one
    severity: str  # info | warning | critical
    message: str  # one line
    evidence: dict[str, Any] = field(default_factory=dict)  # epochs, values, the threshold crossed
    recommendations: list[Recommendation] = field(default_factory=list)
    epoch: Optional[int] = None  # first epoch at which it holds (live findings log it once, then)

    def to_dict(self) -> dict:
        return asdict(self)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1
