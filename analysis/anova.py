"""Which axes of a sweep explain its spread of best accuracy: shares of variance from a factorial ANOVA on a
grid, or Optuna's parameter importance on a search.

Layer 2: pure functions over plain run rows (key -> value overrides, the metric, an observation id).
On a complete grid every axis' main effect and every pair's interaction get their share of the total sum
of squares; the floor is the replicates' within-cell spread (runs of one configuration with different
seeds), against which each share gets an F test. With no replicates there is no floor, and the report
says that the residual mixes interactions of three or more axes with noise. Unequal cell counts are
analysed on cell means (an unweighted-means analysis) and say so. A search that is no grid (Optuna's
continuous samples) gets `optuna.importance` when Optuna is installed.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Optional

import numpy as np

from .sweep import SEED_KEY
from .sweep_effects import METRIC, not_exercised, observation_values
from .sweep_stats import ALPHA, f_pvalue, holm

CELLS_MAX = 100_000  # grid cells analysed; beyond this the grid is too sparse to say anything per cell


def _cells(rows: list[dict], keys: list[str], levels: dict[str, list[str]]) -> Optional[dict]:
    """Observation values per cell of the grid (value index on each key), or None when a run is off the grid."""
    index = {k: {v: i for i, v in enumerate(levels[k])} for k in keys}
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        try:
            cell = tuple(index[k][repr(r["overrides"][k])] for k in keys)
        except KeyError:
            return None
        cells.setdefault(cell, []).append(r)
    return {c: observation_values(members) for c, members in cells.items()}


def variance_shares(rows: list[dict], axes: dict[str, list[Any]], idle: Optional[dict[str, str]] = None,
                    search: bool = False) -> dict:
    """Shares of the variance in best accuracy due to each axis and each pair of axes (see the module docstring).
    search: the sweep sampled its values (an Optuna sweeper): Optuna's importance when it is no grid."""
    keys = [k for k in axes if k != SEED_KEY]
    done = [r for r in rows if isinstance(r.get(METRIC), (int, float)) and math.isfinite(r[METRIC])]
    if not keys or len(done) < 3:
        return {"method": None, "note": "fewer than 3 finished runs, or no swept key besides the seed: no shares"}
    present = {k: {repr(r["overrides"].get(k)) for r in done} for k in keys}
    levels = {k: [repr(v) for v in axes[k] if repr(v) in present[k]] for k in keys}
    idle = [k for k in keys if len(levels[k]) > 1 and (k in idle if idle is not None else not_exercised(done, k))]
    keys = [k for k in keys if len(levels[k]) > 1 and k not in idle]
    if not keys:
        return {"method": None, "note": "no swept key has two values with finished runs"
                + (f" and acted ({', '.join(idle)} not exercised)" if idle else "")}
    shape = tuple(len(levels[k]) for k in keys)
    cells = _cells(done, keys, levels) if math.prod(shape) <= CELLS_MAX else None
    if cells is None or len(cells) < math.prod(shape) or any(not v for v in cells.values()):
        if search:
            return optuna_importance(done, keys)
        return {"method": None, "note": "not a complete grid (some combinations of the swept values have no "
                                        "finished run): no shares"}
    out = _anova(cells, keys, shape)
    if idle:
        out["not_exercised"] = idle
        out["note"] += (f"; left out, not exercised (their runs are copies of one observation): {', '.join(idle)}")
    return out


def _anova(cells: dict[tuple, list[float]], keys: list[str], shape: tuple) -> dict:
    means = np.zeros(shape)
    counts = np.zeros(shape)
    within, total_values = 0.0, []
    for c, vals in cells.items():
        a = np.asarray(vals, dtype=np.float64)
        means[c], counts[c] = a.mean(), len(a)
        within += float(((a - a.mean()) ** 2).sum())
        total_values.extend(vals)
    balanced = bool(np.all(counts == counts.flat[0]))
    r = float(counts.flat[0]) if balanced else float(len(counts.flat) / np.sum(1.0 / counts))  # harmonic mean
    grand = float(means.mean())
    n = int(counts.sum())
    # Sums of squares on the cell means (exact for a balanced grid), scaled by the replicates per cell.
    k = len(keys)
    marg = {i: means.mean(axis=tuple(j for j in range(k) if j != i)) for i in range(k)}
    terms = []
    for i in range(k):
        shp = [1] * k
        shp[i] = shape[i]
        dev = np.broadcast_to(marg[i].reshape(shp) - grand, shape)
        terms.append({"term": [keys[i]], "ss": r * float((dev ** 2).sum()), "dof": shape[i] - 1})
    for i, j in itertools.combinations(range(k), 2):
        others = tuple(x for x in range(k) if x not in (i, j))
        m_ij = means.mean(axis=others) if others else means
        inter = m_ij - marg[i][:, None] - marg[j][None, :] + grand
        terms.append({"term": [keys[i], keys[j]], "ss": r * float((inter ** 2).sum()) * (
            math.prod(shape) / (shape[i] * shape[j])), "dof": (shape[i] - 1) * (shape[j] - 1)})
    cells_ss = r * float(((means - grand) ** 2).sum())
    explained = sum(t["ss"] for t in terms)
    residual = max(0.0, cells_ss - explained)  # interactions of three or more axes
    total = cells_ss + within
    dof_within = n - len(cells)
    replicated = dof_within > 0
    ms_within = within / dof_within if replicated else None
    for t in terms:
        t["share"] = t["ss"] / total if total > 0 else 0.0
        t["f"] = (t["ss"] / t["dof"]) / ms_within if replicated and ms_within and t["dof"] else None
        t["p"] = f_pvalue(t["f"], t["dof"], dof_within) if t["f"] is not None else (
            0.0 if replicated and t["ss"] > 0 and not ms_within else None)
    for t, adj in zip(terms, holm([t["p"] for t in terms])):
        t["p_holm"] = adj
        t["beyond_noise"] = adj is not None and adj <= ALPHA
    out = {"method": "anova", "keys": keys, "levels": list(shape), "runs": n, "balanced": balanced,
           "terms": terms, "higher_order_share": residual / total if total > 0 else 0.0,
           "noise_share": within / total if total > 0 and replicated else None,
           "noise_dof": dof_within, "total_ss": total}
    notes = []
    if not replicated:
        notes.append("no configuration was run more than once (distinct seeds, distinct records): there is no "
                     "noise floor, so no share is tested, and the residual mixes interactions of three or more "
                     "axes with run-to-run noise")
    else:
        notes.append("the floor is the replicates' spread within each configuration: "
                     + (f"{out['noise_share']:.1%}" if out["noise_share"] is not None else "unknown (a zero or "
                        "non-finite total)") + f" of the variance ({dof_within} degrees of freedom); each share is an F test against it, "
                     f"Holm-corrected")
    if not balanced:
        notes.append("the cells hold unequal numbers of runs: shares come from the cell means (unweighted means)")
    if k < 2:
        notes.append("one swept key: no interactions")
    out["note"] = "; ".join(notes)
    return out


def optuna_importance(rows: list[dict], keys: list[str]) -> dict:
    """Optuna's parameter importance (its default evaluator, fANOVA) over the trials, when Optuna is installed."""
    try:  # optional: the `sweeps` extra; heavy, imported only for a sweep that is no grid
        import optuna
        from optuna.distributions import CategoricalDistribution
    except ImportError:
        return {"method": None, "note": "not a complete grid (some combinations of the swept values have no "
                                        "finished run), and Optuna is not installed for an importance: "
                                        "pip install -e '.[sweeps]'"}
    float_dist = getattr(optuna.distributions, "FloatDistribution", None) or optuna.distributions.UniformDistribution
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists, params = {}, [{} for _ in rows]
    for k in keys:
        vals = [r["overrides"].get(k) for r in rows]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals)
        if numeric and min(vals) < max(vals):
            dists[k] = float_dist(float(min(vals)), float(max(vals)))
            for p, v in zip(params, vals):
                p[k] = float(v)
        elif not numeric and len({repr(v) for v in vals}) > 1:
            choices = tuple(sorted({repr(v) for v in vals}))
            dists[k] = CategoricalDistribution(choices)
            for p, v in zip(params, vals):
                p[k] = repr(v)
    if not dists:
        return {"method": None, "note": "no swept key varies among the finished trials"}
    study = optuna.create_study(direction="maximize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning on create_trial in Optuna 2.x
        for p, r in zip(params, rows):
            study.add_trial(optuna.trial.create_trial(params=p, distributions=dists, value=float(r[METRIC])))
    failures = []
    # fANOVA first (Optuna's default); Optuna 2.10's fails on NumPy 2 ("setting an array element with a
    # sequence"), then the mean decrease in impurity of a random forest, Optuna's other evaluator.
    for name, evaluator in (("fANOVA", optuna.importance.FanovaImportanceEvaluator),
                            ("mean decrease in impurity", optuna.importance.MeanDecreaseImpurityImportanceEvaluator)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning on create_trial in Optuna 2.x
                importance = optuna.importance.get_param_importances(study, evaluator=evaluator())
        except (ImportError, RuntimeError, ValueError, TypeError) as e:
            failures.append(f"{name}: {type(e).__name__}: {e}")
            continue
        return {"method": "optuna", "evaluator": name, "keys": list(importance),
                "terms": [{"term": [k], "share": float(v)} for k, v in importance.items()], "runs": len(rows),
                "note": f"not a complete grid: Optuna {optuna.__version__}'s parameter importance ({name}) over "
                        f"{len(rows)} trials; importances sum to 1 and carry no noise floor"
                        + (f" ({'; '.join(failures)})" if failures else "")}
    return {"method": None, "note": "not a complete grid; Optuna's importance failed: " + "; ".join(failures)}
