"""One sweep -> the comparison report as plain data.

Provenance (command, axes, jobs expected / completed / failed / running / missing), a run table
(with flags: far below the best run, unstable where its neighbours are not), the effect of each axis
(mean and spread of best validation accuracy, with n), a two-axis grid, the recommendations that recur
across runs with whether the sweep's own data supports them, and the best configuration (with a note
when it sits at the edge of a swept range).

Advice is no stronger than its evidence (docs/sweeps.md): an edge note needs a neighbour at the same
other settings and a difference beyond the replicates' noise (without replicates it asks for seeds);
support speaks only of values the sweep ran; advice that would contradict the best note is superseded.
"""

from __future__ import annotations

import statistics
from typing import Any, Optional

from rundir.config_keys import (
    AUGMENTATION_CROP_PADDING, AUGMENTATION_MAGNITUDE, DATA_NUM_WORKERS, DIAGNOSTICS_UPDATE_EVERY,
    OPTIMIZER_MOMENTUM, REGULARIZATION_LABEL_SMOOTHING, REGULARIZATION_WEIGHT_DECAY, SCHEDULER_COOLDOWN,
    SCHEDULER_MIN_LR, SCHEDULER_PATIENCE)
from . import sweep_effects
from .anova import variance_shares
from .overrides import fmt, values_text
from .stats import describe, noise_sd
from .jobs import analyze_jobs
from .records import plain_overrides
from .sweep import SEED_KEY, Sweep, parse_value, split_override
from .sweep_effects import not_exercised, observation_values
from .sweep_stats import Noise, as_noise, difference, judge, tie_tolerance

METRIC = "best_val_accuracy"  # what the sweep compares runs by
# Hard bounds of swept keys: a best value sitting on one is no reason to extend the range past it.
BOUNDS = {REGULARIZATION_LABEL_SMOOTHING: (0, 1), REGULARIZATION_WEIGHT_DECAY: (0, None),
          SCHEDULER_PATIENCE: (0, None), SCHEDULER_COOLDOWN: (0, None), OPTIMIZER_MOMENTUM: (0, 1),
          SCHEDULER_MIN_LR: (0, None), AUGMENTATION_MAGNITUDE: (0, 30), AUGMENTATION_CROP_PADDING: (0, None),
          DIAGNOSTICS_UPDATE_EVERY: (1, None), DATA_NUM_WORKERS: (0, None)}


def _run_row(job) -> dict:
    s, findings = job.summary, job.findings
    return {
        "job": job.name,
        "path": str(job.path),
        "status": job.state,
        "error": job.error,
        "overrides": job.overrides,
        "best_val_accuracy": s.get("best_val_accuracy"),
        "final_val_accuracy": s.get("final_val_accuracy"),
        "best_epoch": s.get("best_epoch"),
        "epochs": s.get("epochs"),
        "final_train_loss": s.get("final_train_loss"),
        "lr_cuts": s.get("lr_cuts"),
        "progress": s.get("progress"),
        "progress_verdict": s.get("progress_verdict"),
        "loss_progress": s.get("loss_progress"),
        "still_falling": s.get("still_falling"),
        "findings": [f.id for f in findings],
        "warnings_or_worse": [f.id for f in findings if f.severity != "info"],
        **{k: job.facts.get(k) for k in ("lr_cut_epochs", "lr_constant", "val_size", "val_drawdown", "fields",
                                         "fingerprint", "primary_cause", "choices")},
    }


SEEDS_TO_ADD = "0,1,2"  # the replicates a sweep without any is told to add before trusting a small difference


def _slices(groups: list[dict], key: str) -> list[dict[Any, dict]]:
    """Configurations that differ only in `key`: for each setting of the other keys, value -> its group."""
    slices: dict[tuple, dict[Any, dict]] = {}
    for g in groups:
        if key not in g["overrides"] or g["mean"] is None:
            continue
        rest = tuple(sorted((k, repr(v)) for k, v in g["overrides"].items() if k != key))
        slices.setdefault(rest, {})[repr(g["overrides"][key])] = g
    return [sl for sl in slices.values() if len(sl) > 1]


def axis_effect(groups: list[dict], key: str, sd: "Optional[float] | Noise", comparisons: int = 1) -> dict:
    """Does `key` change the result? Compared within configurations that differ only in it.

    none: in every such set the values tie (within 2 standard errors of the replicates' noise, or
    exactly when nothing was replicated); some: in at least one they do not; unknown: no such set."""
    slices = _slices(groups, key)
    if not slices:
        return {"effect": "unknown", "compared": 0, "largest_difference": None}
    largest, effect = 0.0, "none"
    for sl in slices:
        members = list(sl.values())
        hi = max(members, key=lambda g: g["mean"])
        lo = min(members, key=lambda g: g["mean"])
        diff = hi["mean"] - lo["mean"]
        largest = max(largest, diff)
        if diff > tie_tolerance(hi["n"], lo["n"], sd, comparisons * len(slices)):
            effect = "some"
    return {"effect": effect, "compared": len(slices), "largest_difference": largest}


def axis_effects(rows: list[dict], axes: dict[str, list[Any]], groups: Optional[list[dict]] = None,
                 noise: Optional[Noise] = None, idle: Optional[dict[str, str]] = None) -> list[dict]:
    """For each swept key and value: best validation accuracy over the runs at that value (one value per
    observation), and whether the key made a difference, or never acted (not exercised). The seed is no axis
    here: its runs are replicates of one configuration."""
    groups = replicate_groups(rows) if groups is None else groups
    sd = noise_sd(groups)
    comparisons = max(1, sum(1 for k in axes if k != SEED_KEY))
    effects = []
    for key, values in axes.items():
        if key == SEED_KEY:
            continue
        levels = []
        for v in _with_runs(rows, key, values):
            at = [r for r in rows if key in r["overrides"] and r["overrides"][key] == v]
            levels.append({"value": v, **describe(observation_values(at)), "runs": [r["job"] for r in at]})
        why = idle.get(key) if idle is not None else not_exercised(rows, key)
        effect = axis_effect(groups, key, noise if noise is not None else sd, comparisons)
        if why:
            effect.update(effect="not exercised")
        effects.append({"key": key, "levels": levels, **effect, "not_exercised_why": why})
    return effects


def replicates(axes: dict[str, list[Any]], groups: list[dict], noise: Optional[Noise] = None) -> Optional[dict]:
    """The seeds swept, when they were: each configuration is reported as mean ± sd over its seeds."""
    if SEED_KEY not in axes:
        return None
    sd = noise.replicate_sd if noise is not None else noise_sd(groups)
    return {"key": SEED_KEY, "values": axes[SEED_KEY], "noise_sd": sd,
            "noise_dof": noise.dof if noise is not None else None,
            "n": sorted({g["n"] for g in groups if g["n"]})}


def grid(rows: list[dict], axes: dict[str, list[Any]]) -> Optional[dict]:
    """Mean best val accuracy over the first two axes (other axes and seeds averaged)."""
    keys = [k for k in axes if k != SEED_KEY]
    if len(keys) < 2:
        return None
    rk, ck = keys[0], keys[1]
    row_values, col_values = _with_runs(rows, rk, axes[rk]), _with_runs(rows, ck, axes[ck])
    mean, n = [], []
    for rv in row_values:
        mrow, nrow = [], []
        for cv in col_values:
            st = describe(observation_values([r for r in rows if r["overrides"].get(rk) == rv
                                            and r["overrides"].get(ck) == cv]))
            mrow.append(st["mean"])
            nrow.append(st["n"])
        mean.append(mrow)
        n.append(nrow)
    return {"rows": rk, "cols": ck, "row_values": row_values, "col_values": col_values, "mean": mean, "n": n,
            "averaged_over": [k for k in axes if k not in (rk, ck)],
            "omitted": {k: len(axes[k]) - len(kept) for k, kept in ((rk, row_values), (ck, col_values))
                        if len(kept) < len(axes[k])}}


GRID_MAX = 50  # values per side of the grid; a range(0,10000) axis would make a 10,000 x 10,000 table


def _with_runs(rows: list[dict], key: str, values: list[Any]) -> list[Any]:
    """An axis' values for the grid: all of them when few, else those some run has, at most GRID_MAX."""
    if len(values) <= GRID_MAX:
        return values
    present = {repr(r["overrides"].get(key)) for r in rows}
    return [v for v in values if repr(v) in present][:GRID_MAX]


def replicate_groups(rows: list[dict]) -> list[dict]:
    """Configurations (overrides without the seed) with their runs: seeds are replicates, counted once per
    observation (sweep_effects.assign_observations: same-seed reruns and identical records are one)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = tuple(sorted((k, repr(v)) for k, v in r["overrides"].items() if k != SEED_KEY))
        groups.setdefault(key, []).append(r)
    out = []
    for members in groups.values():
        overrides = {k: v for k, v in members[0]["overrides"].items() if k != SEED_KEY}
        out.append({"overrides": overrides, **describe(observation_values(members)),
                    "runs": [m["job"] for m in members]})
    return out


def _numeric(v: Any) -> bool:
    """A finite number a float can hold (an override of 400 digits is no number to take a median of)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= 1.7e308


def _support(override: str, source_rows: list[dict], rows: list[dict], axes: dict[str, list[Any]],
             sd: Optional[float] = None) -> dict:
    """Does the sweep's own data back moving `key` toward the recommended value?

    It speaks only of values the sweep ran. For a numeric key: runs at the swept values from the
    recommending runs' value (exclusive) up to the recommended one (inclusive) against the recommending
    runs themselves; a recommended value outside the swept range, or with no swept value on the way to
    it, is `not tested`. For a categorical one (scheduler=cosine): runs at that value against runs elsewhere.
    The difference counts beyond 2 standard errors of the spread on each side and of the seeds' noise `sd`;
    with neither (one run per side, no replicates) it is `inconclusive`.
    """
    key, raw = split_override(override)
    target = parse_value(raw)
    if key not in axes:
        return {"verdict": "not tested", "note": f"{key} was not swept"}
    done = [r for r in rows if r[METRIC] is not None]
    if _numeric(target):
        current = [r["overrides"].get(key) for r in source_rows if _numeric(r["overrides"].get(key))]
        swept = [v for v in axes[key] if _numeric(v)]
        if not current or not swept:
            return {"verdict": "not tested", "note": f"the recommending runs have no numeric {key}"}
        base = statistics.median(current)
        if not min(swept) <= target <= max(swept):
            return {"verdict": "not tested", "note": f"{key}={fmt(target)} lies outside the swept range "
                                                     f"{fmt(min(swept))}..{fmt(max(swept))}: it was not run"}
        lo, hi = sorted((base, target))
        on_the_way = sorted({v for v in swept if lo <= v <= hi and v != base})
        if not on_the_way:
            return {"verdict": "not tested", "note": f"the sweep ran no {key} between {fmt(base)} and {fmt(target)}"}
        better = [r for r in done if r["overrides"].get(key) in on_the_way]
        same = [r for r in done if r["overrides"].get(key) == base]
        toward = f"{key} = {values_text(on_the_way)}"
        against = f"{key} = {fmt(base)}"
    else:
        better = [r for r in done if r["overrides"].get(key) == target]
        same = [r for r in done if key in r["overrides"] and r["overrides"].get(key) != target]
        toward, against = f"{key} = {fmt(target)}", f"{key} != {fmt(target)}"
    a, b = describe(observation_values(better)), describe(observation_values(same))
    if not a["n"] or not b["n"]:
        missing = toward if not a["n"] else against
        return {"verdict": "not tested", "note": f"the sweep has no finished runs with {missing}"}
    noise = as_noise(sd) if sd is not None else sweep_effects.sweep_noise(rows)  # the rows' own replicates
    test = difference(a["mean"], a["n"], b["mean"], b["n"], noise)
    out = {"toward": toward, "against": against, "delta": test["delta"], "se": test["se"], "p": test["p"],
           "toward_mean": a["mean"], "toward_n": a["n"], "against_mean": b["mean"], "against_n": b["n"]}
    judge([out])  # one claim; recommendations() judges all of a sweep's together (Holm)
    return _support_verdict(out)


def _support_verdict(s: dict) -> dict:
    """supported / contradicted when the test (Holm-adjusted over its family) claims the difference, else
    inconclusive; without replicates the note says the noise was never measured."""
    s["verdict"] = ("inconclusive" if not s.get("claim") else "supported" if s["delta"] > 0 else "contradicted")
    unknown = (f"; no configuration was run with several seeds, so the sweep cannot tell this from run-to-run "
               f"noise (add {SEED_KEY}={SEEDS_TO_ADD})") if s.get("p") is None else ""
    s["note"] = (f"{s['toward']}: {s['toward_mean']:.4f} (n={s['toward_n']}) vs {s['against']}: "
                 f"{s['against_mean']:.4f} (n={s['against_n']}), {s['delta']:+.4f}"
                 + (f" +/- {s['se']:.4f}" if s.get("se") else "")
                 + (f", Holm p={s['p_holm']:.2g}" if s.get("p_holm") is not None else "") + unknown)
    return s


def recommendations(rows: list[dict], findings_by_job: dict[str, list], axes: dict[str, list[Any]],
                    sd: Optional[float] = None) -> list[dict]:
    """Each distinct recommendation once, with the runs it came from and the sweep's evidence for it."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        for f in findings_by_job.get(r["job"], []):
            if f.severity == "info":
                continue
            for rec in f.recommendations:
                keys = tuple(split_override(o)[0] for o in rec.overrides)
                gkey = (f.id, rec.text, keys)
                g = groups.setdefault(gkey, {"finding": f.id, "text": rec.text, "runs": [], "values": {}})
                g["runs"].append(r["job"])
                for o in rec.overrides:
                    k, v = split_override(o)
                    vals = g["values"].setdefault(k, [])
                    if v not in vals:
                        vals.append(v)
    out = []
    by_job = {r["job"]: r for r in rows}
    for g in groups.values():
        source = [by_job[j] for j in g["runs"]]
        overrides = [f"{k}={','.join(v)}" for k, v in g["values"].items()]
        noise = as_noise(sd) if sd is not None else sweep_effects.sweep_noise(rows)
        support = [{"override": f"{k}={v[0]}", **_support(f"{k}={v[0]}", source, rows, axes, noise)}
                   for k, v in g["values"].items()]
        out.append({"finding": g["finding"], "text": g["text"], "runs": g["runs"], "count": len(g["runs"]),
                    "overrides": overrides, "support": support})
    tested = [sup for g in out for sup in g["support"] if "delta" in sup]
    judge(tested)  # every support claim of the sweep is one family
    for sup in tested:
        _support_verdict(sup)
    out.sort(key=lambda g: -g["count"])
    return out


def _inward(best: dict, key: str, value: Any, numeric: list, groups: list[dict]) -> Optional[dict]:
    """The configuration equal to best but for `key`, at the swept value next to `value` inside the range."""
    ordered = sorted(numeric)
    i = ordered.index(value)
    neighbour = ordered[i - 1] if i == len(ordered) - 1 else ordered[i + 1]
    rest = {k: v for k, v in best["overrides"].items() if k != key}
    for g in groups:
        if g["mean"] is not None and g["overrides"].get(key) == neighbour \
                and {k: v for k, v in g["overrides"].items() if k != key} == rest:
            return g
    return None


def best_config(groups: list[dict], axes: dict[str, list[Any]], noise: Optional[Noise] = None,
                rows: Optional[list[dict]] = None, idle: Optional[dict[str, str]] = None) -> Optional[dict]:
    """The configuration with the highest mean (seeds averaged), with notes on its swept values: at the edge
    of a range that it pays to extend, or on an axis that made no difference (then any value will do)."""
    ranked = [g for g in groups if g["mean"] is not None]
    if not ranked:
        return None
    best = max(ranked, key=lambda g: g["mean"])
    sd = noise if noise is not None else noise_sd(groups)
    measured = noise.measured if noise is not None else sd is not None
    comparisons = max(1, sum(1 for k in axes if k != SEED_KEY))
    edges, ties = [], []
    for key, values in axes.items():
        if key == SEED_KEY or key not in best["overrides"]:
            continue
        v = best["overrides"][key]
        others = [g for sl in _slices(groups, key) for g in sl.values()
                  if any(h is best for h in sl.values()) and g is not best]
        why = (idle.get(key) if idle is not None else not_exercised(rows, key)) if rows is not None else None
        if others and why:
            ties.append(f"{key} was not exercised ({why}): any of its values will do, and the sweep says nothing "
                        f"about it")
            continue
        if others and all(best["mean"] - g["mean"] <= tie_tolerance(best["n"], g["n"], sd, comparisons)
                          for g in others):
            alts = ", ".join(fmt(g["overrides"][key]) for g in others)
            ties.append(f"{key}: {fmt(v)} ties with {alts} here (" + ("exactly" if not measured else
                        "within the seeds' noise, Student's t, Bonferroni over the swept keys")
                        + "): it made no difference, any of these will do")
            continue
        numeric = [x for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if len(numeric) < 2 or v not in numeric or isinstance(v, bool):
            continue
        lo, hi = BOUNDS.get(key, (None, None))
        at_top, at_bottom = v == max(numeric) and v != hi, v == min(numeric) and v != lo
        if not (at_top or at_bottom):
            continue
        inward = _inward(best, key, v, numeric, groups)
        if inward is None:
            continue  # no run at the same other settings with the next value: nothing shows a trend
        edge, gap = ("largest", "above") if at_top else ("smallest", "below")
        diff = best["mean"] - inward["mean"]
        against = (f"{fmt(v)}: {best['mean']:.4f} (n={best['n']}) vs {fmt(inward['overrides'][key])}: "
                   f"{inward['mean']:.4f} (n={inward['n']}), {diff:+.4f}")
        if not measured:
            edges.append({"key": key, "value": v, "direction": None,
                          "note": f"{key}={fmt(v)} is the {edge} value swept and beat its neighbour ({against}), but "
                                  f"no configuration was run more than once, so the sweep cannot tell this from "
                                  f"run-to-run noise: rerun with {SEED_KEY}={SEEDS_TO_ADD} before extending the range"})
            continue
        if diff <= tie_tolerance(best["n"], inward["n"], sd, comparisons):
            continue  # no better than its neighbour beyond noise: no trend pointing past the edge
        edges.append({"key": key, "value": v, "direction": gap,
                      "note": f"{key}={fmt(v)} is the {edge} value swept: extend the range {gap} it (it beats its "
                              f"neighbour beyond the run-to-run noise {as_noise(sd).sd:.4f}, Student's t, "
                              f"Bonferroni over {comparisons} keys: {against})"})
    return {**best, "overrides_cli": [f"{k}={fmt(v, exact=True)}" for k, v in best["overrides"].items()],
            "edges": edges, "edge_notes": [e["note"] for e in edges] + ties}


def reconcile(recs: list[dict], best: Optional[dict]) -> None:
    """No two pieces of advice may contradict each other: a recommended value on the other side of a best
    value that beat its neighbour beyond noise (the best note says to extend past it) is `superseded`."""
    if not best:
        return
    for rec in recs:
        for sup in rec["support"]:
            key, raw = split_override(sup["override"])
            target = parse_value(raw)
            for edge in best.get("edges", []):
                if edge["key"] != key or edge["direction"] is None or not _numeric(target):
                    continue
                if (target <= edge["value"]) if edge["direction"] == "above" else (target >= edge["value"]):
                    sup.update(verdict="superseded",
                               note=f"the sweep's best configuration has {key}={fmt(edge['value'])}, which beat its "
                                    f"neighbour beyond noise: see its note (extend {edge['direction']} "
                                    f"{fmt(edge['value'])}) rather than {key}={fmt(target)}")


FAR_BELOW = 0.1  # best val accuracy this far (absolute) below the sweep's best run, and beyond noise: flagged
# Findings that mark a run as unstable (diverging, spiking, swinging), for the run table's flags.
UNSTABLE = ("nonfinite_loss", "loss_diverging", "loss_oscillating", "exploding_gradients")


def _differs(a: dict, b: dict) -> list[str]:
    """The keys (the seed aside) whose values differ between two runs' overrides."""
    keys = (set(a) | set(b)) - {SEED_KEY}
    return sorted(k for k in keys if repr(a.get(k)) != repr(b.get(k)))


def flag_runs(rows: list[dict], sd: Optional[float]) -> None:
    """Add `flags` to each run row: far below the sweep's best run (named with the one knob they differ in,
    when they differ in only one), or unstable where every run one knob away is not."""
    done = [r for r in rows if r[METRIC] is not None]
    best = max(done, key=lambda r: r[METRIC]) if done else None
    for r in rows:
        r["flags"] = []
        if best is not None and r is not best and r[METRIC] is not None:
            gap = best[METRIC] - r[METRIC]
            if gap > FAR_BELOW and gap > tie_tolerance(1, 1, sd):
                knobs = _differs(r["overrides"], best["overrides"])
                where = (f"; differs from it only in {knobs[0]}={fmt(r['overrides'].get(knobs[0]))}"
                         if len(knobs) == 1 else "")
                r["flags"].append(f"far below the best run {best['job']} ({-gap:+.4f}){where}")
        if sweep_effects.ENDED_BELOW in r["findings"] and None not in (r[METRIC], r.get("final_val_accuracy")):
            r["flags"].append(f"ended {r[METRIC] - r['final_val_accuracy']:.4f} below its own best "
                              f"({r[METRIC]:.4f} at epoch {r.get('best_epoch')}, final {r['final_val_accuracy']:.4f})")
        unstable = [f for f in r["findings"] if f in UNSTABLE]
        if unstable:
            neighbours = [o for o in rows if o is not r and len(_differs(o["overrides"], r["overrides"])) == 1
                          and o["status"] != "unreadable"]
            if neighbours and not any(f in UNSTABLE for o in neighbours for f in o["findings"]):
                r["flags"].append(f"unstable ({', '.join(unstable)}) where runs one knob away are not "
                                  f"({', '.join(o['job'] for o in neighbours[:8])})")


def curves(sweep: Sweep) -> dict[str, dict]:
    """Each analysed job's curves by its name: what the HTML report plots (plain lists, never the Sweep)."""
    return {j.name: j.curves for j in sweep.jobs if j.curves}


def scope_notes(sweep: Sweep) -> list[str]:
    """What the jobs were judged without, said once for the sweep."""
    left_out = [j for j in sweep.jobs if (j.facts or {}).get("per_sample_left_out")]
    if not left_out:
        return []
    return [f"per-sample records not read for the {len(left_out)} job(s) that have them: each is a file per epoch "
            f"of the training set's size, and a sweep's jobs share their data, so label_noise_suspected is judged per "
            f"run: python -m analysis {left_out[0].path}"]


def build(sweep: Sweep) -> dict:
    if not sweep.jobs:
        analyze_jobs(sweep)
    findings_by_job = {job.name: job.findings for job in sweep.jobs}
    rows = [_run_row(job) for job in sweep.jobs]
    merged = sweep_effects.assign_observations(rows)  # identical records, same-seed reruns: one observation
    counts = {state: sum(1 for r in rows if r["status"] == state)
              for state in ("completed", "failed", "running", "preempted", "no diagnostics", "unreadable")}
    missing_count, missing = sweep.missing()
    failures = [{"job": r["job"], "status": r["status"], "error": r["error"]} for r in rows
                if r["status"] in ("failed", "no diagnostics", "unreadable")]
    by_id: dict[str, list[str]] = {}
    for r in rows:
        for fid in r["findings"]:
            by_id.setdefault(fid, []).append(r["job"])
    groups = replicate_groups(rows)
    noise = sweep_effects.sweep_noise(rows)
    idle = sweep_effects.idle_axes(rows, sweep.axes)  # keys that never acted, and why
    flag_runs(rows, noise if noise.measured else None)
    recs = recommendations(rows, findings_by_job, sweep.axes, noise)
    best = best_config(groups, sweep.axes, noise, rows, idle)
    reconcile(recs, best)
    if best and not sweep.runs_given:
        best["overrides_cli"] = plain_overrides(sweep.path, best["overrides_cli"])  # a --verify sweep's fixN
    warnings = list(sweep.warnings)
    for job in sweep.jobs:
        warnings += [f"job {job.name}: {w}" for w in job.warnings]
    return {
        "notes": scope_notes(sweep),
        "sweep": {"path": str(sweep.path), "name": sweep.name, "command": sweep.command,
                  "kind": "runs" if sweep.runs_given else "sweep",
                  "axes": sweep.axes, "fixed": sweep.fixed,
                  "jobs": {"expected": sweep.expected, "found": len(rows), **counts, "missing": missing_count},
                  "missing_jobs": missing, "failures": failures,
                  "stale": [{"job": j.name, "note": j.stale} for j in sweep.jobs if j.stale]},
        "runs": rows,
        "axes": axis_effects(rows, sweep.axes, groups, noise, idle),
        "replicates": replicates(sweep.axes, groups, noise),
        "grid": grid(rows, sweep.axes),
        "configurations": groups,
        "findings_by_id": by_id,
        "recommendations": recs,
        "best": best,
        "explained": sweep_effects.build(rows, sweep.axes, recs, {j.name: j.curves for j in sweep.jobs}, merged, noise,
                                         idle),
        "variance": variance_shares(rows, sweep.axes, idle, search="optuna" in (sweep.sweeper or "").lower()),
        "warnings": warnings,
    }

