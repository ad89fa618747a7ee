"""Several sweeps -> what changed between them, as plain data: best configuration, swept values, findings.

The first sweep given is the baseline; each other one is compared with it. The seed is no axis here
(as in one sweep's report): seeds are replicates, and their spread is the noise a difference is read
against. Rendering lives in render/comparison_text.py and render/comparison_html.py.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from .sweep import SEED_KEY
from .stats import variance_of_mean
from .sweep_effects import recommendation_counts
from .sweep_stats import ALPHA, holm, t_pvalue

NOISE_SE = 2  # kept for old readers of comparison.json; the verdict is a t test (best_delta_p), Holm over comparisons


def _finding_counts(report: dict) -> dict[str, int]:
    return {k: len(v) for k, v in report["findings_by_id"].items()}


def _summary(report: dict) -> dict[str, Any]:
    best, s = report["best"], report["sweep"]
    rep = report.get("replicates")
    return {"name": s["name"], "path": s["path"], "command": s["command"],
            "axes": {k: v for k, v in s["axes"].items() if k != SEED_KEY},
            "fixed": s.get("fixed") or {},
            "seeds": rep["values"] if rep else None,
            "noise_sd": rep["noise_sd"] if rep else None,
            "noise_dof": rep.get("noise_dof") if rep else None,
            "jobs": s["jobs"],
            "best": None if best is None else {"overrides": best["overrides_cli"], "values": best["overrides"],
                                               "mean": best["mean"], "std": best["std"], "n": best["n"]},
            "findings": _finding_counts(report),
            "recommendations": recommendation_counts(report.get("recommendations") or [])}


def _setting(sweep: dict, key: str) -> dict:
    """How a sweep set one key: swept over values, fixed by its command, or left at the config default."""
    if key in sweep["axes"]:
        return {"kind": "swept", "values": sweep["axes"][key]}
    if key in sweep["fixed"]:
        return {"kind": "fixed", "values": [sweep["fixed"][key]]}
    return {"kind": "default", "values": []}


def difference_se(a: dict, b: dict, sd_a: Optional[float], sd_b: Optional[float]) -> Optional[float]:
    """Standard error of the difference of two bests' means: each side's own spread over its n runs when it
    has replicates, else its sweep's pooled run-to-run sd; None when a side has no noise estimate."""
    parts = []
    for best, pooled in ((a, sd_a), (b, sd_b)):
        sd = best["std"] if best["n"] > 1 else pooled
        if sd is None:
            return None
        parts.append(variance_of_mean(sd, best["n"]))
    se = math.sqrt(sum(parts))
    return se if math.isfinite(se) else None  # spreads near 1e308 (a hostile file): the noise is unknown


def difference_dof(a: dict, b: dict, dof_a: Optional[int], dof_b: Optional[int], sd_a: Optional[float],
                   sd_b: Optional[float]) -> Optional[float]:
    """Welch-Satterthwaite degrees of freedom of the difference of two bests' means: each side's n - 1 when it
    has replicates, else its sweep's pooled dof; None when a side has none (its noise was never measured)."""
    parts = []
    for best, pooled_sd, pooled_dof in ((a, sd_a, dof_a), (b, sd_b, dof_b)):
        sd, dof = (best["std"], best["n"] - 1) if best["n"] > 1 else (pooled_sd, pooled_dof)
        if sd is None or not dof:
            return None
        parts.append((variance_of_mean(sd, best["n"]), dof))
    num = sum(v for v, _ in parts) ** 2
    den = sum(v * v / d for v, d in parts)
    return num / den if den > 0 and math.isfinite(num) else None


def _findings_diff(fa: dict, fb: dict, prefix: str) -> dict:
    return {f"{prefix}_appeared": sorted(k for k in fb if k not in fa),
            f"{prefix}_disappeared": sorted(k for k in fa if k not in fb),
            f"{prefix}_changed": {k: [fa[k], fb[k]] for k in sorted(set(fa) & set(fb)) if fa[k] != fb[k]}}


def _compare(base: dict, other: dict) -> dict:
    a_axes, b_axes = set(base["axes"]), set(other["axes"])
    a_best, b_best = base["best"], other["best"]
    delta = se = dof = p = None
    if a_best and b_best:
        delta = b_best["mean"] - a_best["mean"]
        se = difference_se(a_best, b_best, base["noise_sd"], other["noise_sd"])
        dof = difference_dof(a_best, b_best, base.get("noise_dof"), other.get("noise_dof"), base["noise_sd"],
                             other["noise_sd"])
        if se is not None and dof is not None:
            p = t_pvalue(delta / se, dof) if se > 0 else (1.0 if delta == 0 else 0.0)
    keys = sorted(a_axes | b_axes | set(base["fixed"]) | set(other["fixed"]))
    changed = []
    for key in keys:
        was, now = _setting(base, key), _setting(other, key)
        if was != now:
            changed.append({"key": key, "baseline": was, "other": now})
    fa, fb = base["findings"], other["findings"]
    return {
        "baseline": base["name"], "other": other["name"],
        "axes_only_in_baseline": sorted(a_axes - b_axes), "axes_only_in_other": sorted(b_axes - a_axes),
        "shared_axes": sorted(a_axes & b_axes),
        "different_axes": a_axes != b_axes,
        "settings_changed": changed,
        "best_delta": delta,
        "best_delta_se": se,  # None: no replicates on a side, so no noise to read the difference against
        "best_delta_dof": dof,  # Welch-Satterthwaite: two runs a side give about 2, and Student's t at 2 dof
        "best_delta_p": p,  # two-sided; build() adds best_delta_p_holm and best_delta_within_noise
        "best_baseline": a_best, "best_other": b_best,
        **_findings_diff(fa, fb, "findings"),
        **_findings_diff(base.get("recommendations") or {}, other.get("recommendations") or {}, "recommendations"),
    }


def build(reports: list[dict]) -> dict:
    """Sweep reports (sweep_report.build) -> {"sweeps": [...], "comparisons": [each other vs the first]}."""
    sweeps = [_summary(r) for r in reports]
    comparisons = [_compare(sweeps[0], o) for o in sweeps[1:]]
    for c, adj in zip(comparisons, holm([c["best_delta_p"] for c in comparisons])):  # one claim per other sweep
        c["best_delta_p_holm"] = adj
        c["best_delta_within_noise"] = None if adj is None else adj > ALPHA
    return {"sweeps": sweeps, "noise_se": NOISE_SE, "alpha": ALPHA, "comparisons": comparisons}
