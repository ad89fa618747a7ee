"""What a sweep's axes did, explained by the runs' own diagnostics, and its advice set against its evidence.

Layer 2: pure functions over the sweep report's plain run rows (sweep_report._run_row). Principles
(docs/sweeps.md, "What the sweep report claims"):

* Runs whose records are identical are one observation, and so are runs of one configuration with the
  same seed: a replicate needs a different seed (`assign_observations`).
* A difference is claimed only by a test against the noise it was measured with (the replicates' spread,
  at least the validation set's binomial noise), Holm-corrected over every claim of its kind
  (sweep_stats). Without replicates nothing is claimed: the difference is described.
* An axis that never acted is "not exercised", with why: runs that differ only in it have identical
  records, the runs' option ignores the key, or the key acts only through LR cuts and no run cut.
* What the runs at one value have in common that the others lack (LR cuts, findings, the progress
  verdict, how far validation fell, diagnostics fields) leads each axis' explanation, as a sentence
  built from those facts, never from the axis' name.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Optional

import numpy as np

from rundir.config_keys import OPTION_OF
from .overrides import fmt, values_text
from .run_facts import FIELDS
from .sweep import SEED_KEY, parse_value, split_override
from .sweep_stats import Noise, binomial_sd, difference, judge

METRIC = "best_val_accuracy"
ENDED_BELOW = "ended_below_best"  # the rule id (analysis/rules/ending.py) the run table flags
FIELD_LABELS = {**FIELDS, "train_val_gap": "final train - val accuracy gap"}
CURVE_VALUES_MAX = 12  # values of one axis drawn as averaged curves; more would be unreadable
PARALLEL_LINES_MAX = 400  # runs drawn in the parallel-coordinates plot (the best and worst kept, the rest thinned)
# The plateau scheduler's keys decide when and how it cuts: without a cut, none of them acted.
ACTS_THROUGH_CUTS = frozenset(k for k, option in OPTION_OF.items() if option == "scheduler=plateau")


_ABSENT = object()  # a row without the key: never equal to a value's repr


def _done(rows: list[dict]) -> list[dict]:
    return [r for r in rows if isinstance(r.get(METRIC), (int, float)) and math.isfinite(r[METRIC])]


def _config(r: dict, without: tuple = (SEED_KEY,)) -> frozenset:
    """The run's overrides but `without` these keys, hashable and independent of their order."""
    return frozenset((k, repr(v)) for k, v in r["overrides"].items() if k not in without)


# ── observations: identical records and same-seed reruns count once ──

def assign_observations(rows: list[dict]) -> list[list[str]]:
    """Set row["observation"] (an int): rows with identical records, or of one configuration and one seed,
    share one. Returns the groups of two or more jobs that were merged (for the report to name)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Any, int] = {}
    for i, r in enumerate(rows):
        keys = [("config", _config(r, ()))]
        if r.get("fingerprint"):
            keys.append(("records", r["fingerprint"]))
        for key in keys:
            if key in first:
                a, b = find(first[key]), find(i)
                if a != b:
                    parent[b] = a
            else:
                first[key] = i
    groups: dict[int, list[str]] = {}
    for i, r in enumerate(rows):
        r["observation"] = find(i)
        groups.setdefault(r["observation"], []).append(r["job"])
    return [g for g in groups.values() if len(g) > 1]


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _obs_means(obs: list, values: list[float]) -> list[float]:
    """The mean value of each observation (NaN values left out), in first-seen order: numpy's group-by."""
    vals = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(vals)
    if not keep.any():
        return []
    ids = np.asarray(obs, dtype=object)[keep] if not isinstance(obs, np.ndarray) else obs[keep]
    _, first, inverse = np.unique(ids.astype(str) if ids.dtype == object else ids, return_index=True,
                                  return_inverse=True)
    means = np.bincount(inverse, weights=vals[keep]) / np.bincount(inverse)
    return means[np.argsort(first)].tolist()


def observation_values(rows: list[dict], metric: str = METRIC) -> list[float]:
    """One value per observation among these rows (the mean of its runs), in first-seen order."""
    return _obs_means([r.get("observation", id(r)) for r in rows], [_number(r.get(metric)) for r in rows])


def _field_values(rows: list[dict], name: str) -> list[float]:
    return _obs_means([r.get("observation", id(r)) for r in rows],
                      [_number((r.get("fields") or {}).get(name)) for r in rows])


def sweep_noise(rows: list[dict], cols: "Optional[_Columns]" = None) -> Noise:
    """The noise of one run's best accuracy in this sweep: replicates (different seeds, different records)
    pooled over configurations, and the binomial noise at the median best accuracy and validation size."""
    if any("observation" not in r for r in rows):
        assign_observations(rows)
    done = _done(rows)
    cols = cols if cols is not None else _Columns(done, [])
    sd, dof = _pooled_arrays(cols.config, cols.obs, cols.metric)
    sizes = [r["val_size"] for r in done if isinstance(r.get("val_size"), int) and r["val_size"] > 0]
    binom = binomial_sd(float(np.median([r[METRIC] for r in done])), int(np.median(sizes))) if done and sizes else None
    return Noise(sd, dof, binom)


def _pooled_arrays(config: np.ndarray, obs: np.ndarray, values: np.ndarray) -> tuple[Optional[float], int]:
    """_pooled over configurations given as arrays (one entry per run): each observation counts once, in the
    configuration where it first appears, with the mean of its runs."""
    keep = np.isfinite(values)
    config, obs, values = config[keep], obs[keep], values[keep]
    if not len(values):
        return None, 0
    _, first, inv = np.unique(obs, return_index=True, return_inverse=True)
    home = config[first][inv] == config
    config, obs, values = config[home], obs[home], values[home]
    _, pair_first, pair = np.unique(obs, return_index=True, return_inverse=True)  # obs now live in one config each
    with np.errstate(all="ignore"):  # a hostile file's 1e308 accuracies: inf, then no noise estimate
        return _pooled_means(config, pair, pair_first, values)


def _pooled_means(config: np.ndarray, pair: np.ndarray, pair_first: np.ndarray,
                  values: np.ndarray) -> tuple[Optional[float], int]:
    means = np.bincount(pair, weights=values) / np.bincount(pair)
    group = config[pair_first]
    _, g = np.unique(group, return_inverse=True)
    sizes = np.bincount(g)
    gmean = np.bincount(g, weights=means) / sizes
    ss = float(((means - gmean[g]) ** 2).sum())
    dof = int((sizes - 1).sum())
    if not dof or not math.isfinite(ss):
        return None, 0
    return math.sqrt(ss / dof), dof


class _Columns:
    """The finished rows as arrays, built once per report: observation, configuration, metric, fields."""

    def __init__(self, rows: list[dict], field_names: list[str]):
        self.rows = _done(rows)
        self.obs = np.array([r.get("observation", i) for i, r in enumerate(self.rows)], dtype=np.int64)
        codes: dict[frozenset, int] = {}
        self.config = np.array([codes.setdefault(_config(r), len(codes)) for r in self.rows], dtype=np.int64)
        self.metric = np.array([r[METRIC] for r in self.rows], dtype=np.float64)
        self.fields = {n: np.array([_number((r.get("fields") or {}).get(n)) for r in self.rows], dtype=np.float64)
                       for n in field_names}

    def field_noise(self, name: str) -> Noise:
        sd, dof = _pooled_arrays(self.config, self.obs, self.fields[name])
        return Noise(sd, dof, None)


# ── not exercised ──

def _cuts(r: dict) -> list[int]:
    return list(r.get("lr_cut_epochs") or [])


def idle_axes(rows: list[dict], axes: dict[str, list[Any]]) -> dict[str, str]:
    """key -> why it never acted, for every swept key (the seed aside) that did not: computed once per report."""
    done = _done(rows)
    out = {}
    for key in axes:
        if key != SEED_KEY:
            why = not_exercised(done, key)
            if why:
                out[key] = why
    return out


def not_exercised(rows: list[dict], key: str) -> Optional[str]:
    """Why `key` never acted in these runs, or None when it did (or the data cannot say)."""
    done = [r for r in _done(rows) if key in r["overrides"]]
    if not done:
        return None
    owner = OPTION_OF.get(key)
    if owner:
        group, option = owner.split("=")
        chosen = {(r.get("choices") or {}).get(group) for r in done} - {None}
        if chosen and option not in chosen:
            return (f"the runs use {group}={values_text(sorted(chosen))}, which ignores {key} "
                    f"({key} belongs to {owner})")
    if key in ACTS_THROUGH_CUTS and all(r.get("lr_cut_epochs") is not None for r in done) \
            and not any(_cuts(r) for r in done):
        epochs = max((r.get("epochs") or 0) for r in done)
        return (f"no run cut the LR within {epochs} epochs (0 cuts in {len(done)} runs), and {key} acts only "
                f"when the plateau scheduler cuts")
    slices: dict[tuple, dict[str, set]] = {}
    for r in done:
        if r.get("fingerprint"):
            slices.setdefault(_config(r, (key,)), {}).setdefault(repr(r["overrides"][key]), set()).add(r["fingerprint"])
    compared = [s for s in slices.values() if len(s) > 1]
    if compared and all(len(set().union(*s.values())) == 1 for s in compared):
        return (f"runs that differ only in {key} have identical records ({len(compared)} "
                f"{'set' if len(compared) == 1 else 'sets'} compared): the value changed nothing they computed")
    return None


# ── what the runs at one value share ──

def _level(at: list[dict], idx: np.ndarray, cols: "_Columns", value: Any, field_names: list[str]) -> dict:
    done = [cols.rows[i] for i in idx]
    field_values = {name: _obs_means(cols.obs[idx], cols.fields[name][idx]) for name in field_names}
    vals = _obs_means(cols.obs[idx], cols.metric[idx])
    cut_epochs = Counter(e for r in done for e in _cuts(r))
    gaps = [r[METRIC] - r["final_val_accuracy"] for r in done if isinstance(r.get("final_val_accuracy"), (int, float))]
    drawdowns = [r["val_drawdown"] for r in done if isinstance(r.get("val_drawdown"), (int, float))]
    return {
        "value": value, "runs": [r["job"] for r in at], "n_runs": len(done), "n": len(vals),
        "mean": float(np.mean(vals)) if vals else None,
        "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None),
        "runs_with_cuts": sum(1 for r in done if _cuts(r)),
        "cut_epochs": dict(sorted(cut_epochs.items())),
        "constant_lr": sum(1 for r in done if r.get("lr_constant")),
        "max_epochs": max((r.get("epochs") or 0 for r in done), default=0),
        "progress": dict(Counter(r["progress_verdict"] for r in done if r.get("progress_verdict"))),
        "best_minus_final": {"mean": float(np.mean(gaps)) if gaps else None, "max": max(gaps) if gaps else None},
        "max_drawdown": max(drawdowns) if drawdowns else None,
        "min_drawdown": min(drawdowns) if drawdowns else None,
        "findings": dict(Counter(f for r in done for f in set(r.get("findings") or []))),
        "fields": {name: (float(np.mean(fv)) if fv else None) for name, fv in field_values.items()},
        "field_n": {name: len(fv) for name, fv in field_values.items()},
    }


def _epochs_text(cut_epochs: dict) -> str:
    return values_text(list(cut_epochs))


def _shared_facts(lv: dict, others: list[dict]) -> list[str]:
    """Phrases true of every run at this value and not of every run at the other values (the data decides;
    the other values' counts are given)."""
    n = lv["n_runs"]
    if not n or not others or not all(o["n_runs"] for o in others):
        return []
    m = sum(o["n_runs"] for o in others)

    def elsewhere(k: int) -> str:
        return f"{k}/{m} runs at the other values"

    facts = []
    cut_elsewhere = sum(o["runs_with_cuts"] for o in others)
    if lv["runs_with_cuts"] == 0 and cut_elsewhere:
        facts.append(f"never cut the LR within {lv['max_epochs']} epochs ({elsewhere(cut_elsewhere)} did)"
                     + ("; those runs trained at a constant LR" if lv["constant_lr"] == n else ""))
    elif lv["runs_with_cuts"] == n and cut_elsewhere < m:
        facts.append(f"cut the LR in all {n} runs (at epochs {_epochs_text(lv['cut_epochs'])}; "
                     f"{elsewhere(cut_elsewhere)} did)")
    if lv["min_drawdown"] is not None and all(o["max_drawdown"] is not None for o in others) \
            and lv["min_drawdown"] > max(o["max_drawdown"] for o in others):
        facts.append(f"their validation accuracy fell up to {lv['max_drawdown']:.2f} below its running best "
                     f"(at most {max(o['max_drawdown'] for o in others):.2f} at the other values)")
    for fid, k in sorted(lv["findings"].items()):
        there = sum(o["findings"].get(fid, 0) for o in others)
        if k == n and there < m:
            facts.append(f"{fid} in {k}/{n} runs ({elsewhere(there)})")
    for verdict, k in lv["progress"].items():
        there = sum(o["progress"].get(verdict, 0) for o in others)
        if k == n and there < m:
            facts.append(f"progress verdict '{verdict}' in all {n} runs ({elsewhere(there)})")
    return facts


def _finding_contrasts(key: str, levels: list[dict]) -> list[str]:
    """`lr_reduced_early in 4/4 runs at patience=1, 0/4 at patience=4`, for each finding whose count differs."""
    ids = sorted({f for lv in levels for f in lv["findings"]})
    out = []
    for fid in ids:
        shares = [(lv["findings"].get(fid, 0), lv["n_runs"]) for lv in levels]
        if len({k / n if n else 0 for k, n in shares}) > 1:
            out.append(f"{fid} in " + ", ".join(f"{k}/{n} runs at {key}={fmt(lv['value'])}"
                                                 for (k, n), lv in zip(shares, levels)))
    return out


def _cut_text(key: str, lv: dict) -> str:
    if lv["runs_with_cuts"] == 0:
        return f"{key}={fmt(lv['value'])}: no LR cut in {lv['n_runs']} runs"
    per = ", ".join(f"{e} ({c})" if c > 1 else str(e) for e, c in lv["cut_epochs"].items())
    total = sum(lv["cut_epochs"].values())
    return (f"{key}={fmt(lv['value'])}: {total} cuts in {lv['runs_with_cuts']}/{lv['n_runs']} runs, at epochs {per}")


def explain_axes(rows: list[dict], axes: dict[str, list[Any]], noise: Noise,
                 idle: Optional[dict[str, str]] = None) -> list[dict]:
    """For each swept key (the seed aside): whether it acted, what the runs at each value share, the fields that
    differ beyond their noise, and its best-accuracy differences tested (Holm over every test of the sweep)."""
    idle = idle_axes(rows, axes) if idle is None else idle
    field_names = [f for f in FIELD_LABELS if any(((r.get("fields") or {}).get(f) is not None) for r in rows)]
    cols = _Columns(rows, field_names)
    field_noise = {f: cols.field_noise(f) for f in field_names}
    out, metric_tests, field_tests = [], [], []
    for key, values in axes.items():
        if key == SEED_KEY:
            continue
        by_value: dict[str, list[dict]] = {}
        for r in rows:
            if key in r["overrides"]:
                by_value.setdefault(repr(r["overrides"][key]), []).append(r)
        done_value = np.array([repr(r["overrides"].get(key, _ABSENT)) for r in cols.rows], dtype=object)
        levels = [_level(by_value[repr(v)], np.flatnonzero(done_value == repr(v)), cols, v, field_names)
                  for v in values if repr(v) in by_value]
        levels = [lv for lv in levels if lv["n_runs"]]
        why = idle.get(key)
        shared = []
        for i, lv in enumerate(levels):
            facts = _shared_facts(lv, levels[:i] + levels[i + 1:])
            if facts:
                shared.append({"value": lv["value"], "facts": facts})
        tests = []
        for i in range(len(levels) if why is None else 0):  # an axis that never acted has nothing to test
            for j in range(i + 1, len(levels)):
                a, b = levels[j], levels[i]
                if a["mean"] is None or b["mean"] is None:
                    continue
                t = {"a": a["value"], "b": b["value"], "n_a": a["n"], "n_b": b["n"],
                     **difference(a["mean"], a["n"], b["mean"], b["n"], noise)}
                tests.append(t)
                metric_tests.append(t)
        fields = []
        for name in field_names:
            if len(levels) < 2 or why is not None:
                break
            ft = []
            for i in range(len(levels)):
                for j in range(i + 1, len(levels)):
                    a, b = levels[j], levels[i]
                    if a["fields"][name] is None or b["fields"][name] is None:
                        continue
                    t = {"a": a["value"], "b": b["value"], "mean_a": a["fields"][name], "mean_b": b["fields"][name],
                         **difference(a["fields"][name], a["field_n"][name], b["fields"][name], b["field_n"][name],
                                      field_noise[name])}
                    ft.append(t)
                    field_tests.append(t)
            fields.append({"field": name, "label": FIELD_LABELS[name], "tests": ft,
                           "noise_sd": field_noise[name].replicate_sd})
        out.append({"key": key, "exercised": why is None, "not_exercised_why": why, "levels": levels,
                    "shared": shared, "finding_contrasts": _finding_contrasts(key, levels),
                    "cuts": [_cut_text(key, lv) for lv in levels], "tests": tests, "fields": fields})
    judge(metric_tests)
    judge(field_tests)
    for axis in out:
        axis["fields_differing"] = [
            f"{f['label']} {t['mean_a']:.3g} at {axis['key']}={fmt(t['a'])} vs {t['mean_b']:.3g} at {fmt(t['b'])} "
            f"(Holm p={t['p_holm']:.2g})" for f in axis["fields"] for t in f["tests"] if t["claim"]]
        axis["headline"] = _headline(axis, noise)
    return out


def _test_text(key: str, t: dict) -> str:
    se = f" ± {t['se']:.3f}" if t.get("se") is not None else ""
    base = f"{key}={fmt(t['a'])} vs {fmt(t['b'])}: {t['delta']:+.3f}{se} (n={t['n_a']} vs {t['n_b']})"
    if t.get("p") is None:
        return base + ": not tested (no replicates measured the run-to-run noise)"
    verdict = "beyond noise" if t["claim"] else "within noise"
    return base + f", Holm p={t['p_holm']:.2g}: {verdict}"


def _headline(axis: dict, noise: Noise) -> str:
    """The sentence a practitioner wants first, from the facts the data gave."""
    key = axis["key"]
    if not axis["exercised"]:
        return f"{key} was not exercised: {axis['not_exercised_why']}; its values are one observation, not several"
    parts = [f"{key}={fmt(s['value'])} " + "; ".join(s["facts"]) for s in axis["shared"]]
    # Findings seen at one value only (in some of its runs, not all: all would be a shared fact above).
    for lv in axis["levels"]:
        for fid, k in sorted(lv["findings"].items()):
            if k < lv["n_runs"] and not any(o["findings"].get(fid) for o in axis["levels"] if o is not lv):
                parts.append(f"{fid} fired only at {key}={fmt(lv['value'])} ({k}/{lv['n_runs']} runs there)")
    claimed = [t for t in axis["tests"] if t.get("claim")]
    if claimed:
        best = max(claimed, key=lambda t: abs(t["delta"]))
        parts.append(f"best val accuracy {_test_text(key, best)}")
    elif axis["tests"] and all(t.get("p") is None for t in axis["tests"]):
        largest = max(axis["tests"], key=lambda t: abs(t["delta"]))
        parts.append(f"best val accuracy differs by up to {abs(largest['delta']):.3f} between its values, untested: "
                     f"no configuration was run with several seeds")
    elif axis["tests"]:
        parts.append("best val accuracy: no difference between its values beyond noise (Holm-corrected)")
    if axis["fields_differing"]:
        parts.append("diagnostics differing beyond noise: " + "; ".join(axis["fields_differing"]))
    if len(parts) == sum(1 for p in parts if p.startswith("best val accuracy")) and not axis["fields_differing"]:
        parts.insert(0, f"the runs at each value of {key} share no LR-cut, finding or validation pattern the others lack")
    return ". ".join(parts) + "."


# ── recommendations set against what the sweep ran ──

def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        try:
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        except OverflowError:  # an override of 400 digits (a hostile file): no float holds it
            return a == b
    return a == b


def _nearest_toward(source: list[dict], values: list[Any], key: str, target: Any) -> Any:
    """The swept value closest to `target` on its side of the recommending runs' value (None: no such value,
    or not numbers)."""
    def num(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= 1.7e308 and math.isfinite(v)
    current = [r["overrides"].get(key) for r in source if num(r["overrides"].get(key))]
    if not num(target) or not current:
        return None
    base = float(np.median(current))
    side = [v for v in values if num(v) and (v - base) * (target - base) > 0]
    return min(side, key=lambda v: abs(v - target)) if side else None


def compare_recommendations(recs: list[dict], rows: list[dict], axes: dict[str, list[Any]], noise: Noise) -> list[dict]:
    """For each recommendation of the sweep: the runs that give it, whether the sweep already ran the value it
    recommends, and what that value did against the recommending runs (Holm over all of them); advice the
    sweep's own evidence contradicts is marked so."""
    by_job = {r["job"]: r for r in rows}
    out, tests = [], []
    for rec in recs:
        source = [by_job[j] for j in rec["runs"] if j in by_job]
        checks = []
        for ov in rec.get("overrides") or []:
            key, raw = split_override(ov)
            target = parse_value(raw.split(",")[0])
            if key not in axes or key == SEED_KEY:
                continue  # the support verdict already says the key was not swept
            ran = [v for v in axes[key] if _same(v, target)]
            at = [r for r in _done(rows) if key in r["overrides"] and _same(r["overrides"][key], target)]
            shown = target
            if not ran or not at:
                nearest = _nearest_toward(source, axes[key], key, target)
                at = [r for r in _done(rows) if key in r["overrides"] and _same(r["overrides"][key], nearest)]
                if nearest is None or not at:
                    checks.append({"override": f"{key}={raw.split(',')[0]}", "ran": False,
                                   "note": f"the sweep did not run {key}={fmt(target)} (it ran {values_text(axes[key])})"})
                    continue
                shown = nearest
            # At the recommending runs' other settings where the sweep has them, else over the whole sweep.
            alike = {_config(r, (key,)) for r in source}
            at = [r for r in at if _config(r, (key,)) in alike] or at
            a, b = observation_values(at), observation_values(_done(source))
            if not a or not b:
                continue
            t = {"override": f"{key}={raw.split(',')[0]}", "ran": True, "key": key, "value": shown,
                 "exact": shown is target,
                 "n_a": len(a), "n_b": len(b), "mean_at_value": float(np.mean(a)), "mean_recommending": float(np.mean(b)),
                 **difference(float(np.mean(a)), len(a), float(np.mean(b)), len(b), noise)}
            checks.append(t)
            tests.append(t)
        out.append({"finding": rec["finding"], "text": rec["text"], "runs": rec["runs"], "count": rec["count"],
                    "recurring": rec["count"] > 1, "checks": checks})
    judge(tests)
    for entry in out:
        for c in entry["checks"]:
            if not c.get("ran"):
                c["verdict"] = "not run"
                continue
            se = f" ± {c['se']:.3f}" if c.get("se") is not None else ""
            c["verdict"] = ("untested" if c.get("p") is None else
                            "contradicts the sweep's evidence" if c["claim"] and c["delta"] < 0 else
                            "supported by the sweep" if c["claim"] else "within noise")
            c["note"] = ((f"the sweep ran {c['key']}={fmt(c['value'])}" if c["exact"] else
                          f"the sweep did not run {c['override']}; it ran {c['key']}={fmt(c['value'])}, further that "
                          f"way") + f": {c['delta']:+.3f}{se} against the recommending "
                         f"runs (n={c['n_a']} vs {c['n_b']})" + ("" if c.get("p") is None else
                                                               f", Holm p={c['p_holm']:.2g}"))
        entry["contradicted"] = any(c["verdict"] == "contradicts the sweep's evidence" for c in entry["checks"])
        entry["line"] = (f"{entry['text']}: {entry['count']} run{'s' if entry['count'] != 1 else ''} "
                         f"({', '.join(entry['runs'][:12])})" + "".join(
                             f"; {c['note']}" + (f" [{c['verdict']}]" if c.get("ran") else "") for c in entry["checks"]))
    return out


def recommendation_counts(recs: list[dict]) -> dict[str, int]:
    """`text (the keys it sets)` -> runs, for the comparison of two sweeps (the values follow each run's own
    config, so the keys name a recommendation across sweeps)."""
    out: dict[str, int] = {}
    for r in recs:
        keys = ", ".join(split_override(o)[0] for o in r.get("overrides") or []) or "no override"
        name = f"{r['text']} ({keys})"
        out[name] = out.get(name, 0) + r["count"]
    return out


# ── pictures' data: validation curves per axis value, and every run across the axes ──

def value_curves(rows: list[dict], curves: dict[str, dict], axes: dict[str, list[Any]]) -> list[dict]:
    """Validation accuracy per epoch averaged over the runs at each value of each axis (seeds and the other
    axes averaged), with its standard deviation across those runs and n per epoch."""
    jobs = [r["job"] for r in rows if curves.get(r["job"], {}).get("val_epochs")]
    if not jobs:
        return []
    first = curves[jobs[0]]["val_epochs"]
    if all(curves[j]["val_epochs"] == first for j in jobs):  # the usual sweep: every job validated the same epochs
        epochs = list(first)
        m = np.array([curves[j]["val_accuracy"] for j in jobs], dtype=np.float64)  # None -> NaN
    else:
        epochs = sorted({e for j in jobs for e in curves[j]["val_epochs"]})
        col = {e: i for i, e in enumerate(epochs)}
        m = np.full((len(jobs), len(epochs)), np.nan)
        for i, j in enumerate(jobs):
            c = curves[j]
            m[i, [col[e] for e in c["val_epochs"]]] = np.array(c["val_accuracy"], dtype=np.float64)
    row_of = {r["job"]: r for r in rows}
    out = []
    for key, values in axes.items():
        if key == SEED_KEY:
            continue
        lines = []
        keyed = np.array([repr(row_of[j]["overrides"].get(key)) for j in jobs])
        for v in values[:CURVE_VALUES_MAX]:
            sel = m[keyed == repr(v)]
            if not len(sel):
                continue
            with np.errstate(all="ignore"):
                n = np.isfinite(sel).sum(axis=0)
                mean = np.where(n > 0, np.nansum(sel, axis=0) / np.maximum(n, 1), np.nan)
                sq = np.nansum((sel - mean) ** 2, axis=0)
                sd = np.where(n > 1, np.sqrt(sq / np.maximum(n - 1, 1)), 0.0)
            keep = n > 0
            lines.append({"value": v, "label": f"{key}={fmt(v)}", "epochs": [epochs[i] for i in np.flatnonzero(keep)],
                          "mean": mean[keep].tolist(), "sd": sd[keep].tolist(), "n": n[keep].tolist(),
                          "runs": int(len(sel))})
        out.append({"key": key, "lines": lines, "omitted": max(0, len(values) - CURVE_VALUES_MAX)})
    return out


def parallel_coordinates(rows: list[dict], axes: dict[str, list[Any]]) -> Optional[dict]:
    """Every axis (seeds aside) and best accuracy as parallel axes; each run one line, with its primary cause."""
    keys = [k for k in axes if k != SEED_KEY]
    done = _done(rows)
    if not keys or not done:
        return None
    ranked = sorted(done, key=lambda r: -r[METRIC])
    if len(ranked) > PARALLEL_LINES_MAX:
        step = len(ranked) / PARALLEL_LINES_MAX
        ranked = [ranked[int(i * step)] for i in range(PARALLEL_LINES_MAX - 1)] + [ranked[-1]]
    columns = [{"key": k, "values": [fmt(v) for v in axes[k]]} for k in keys]
    index = {k: {repr(v): i for i, v in enumerate(axes[k])} for k in keys}
    lines = [{"job": r["job"], "positions": [index[k].get(repr(r["overrides"].get(k))) for k in keys],
              "best": r[METRIC], "cause": r.get("primary_cause") or "none"} for r in ranked]
    return {"columns": columns, "lines": lines, "causes": sorted({line["cause"] for line in lines}),
            "shown": len(lines), "total": len(done), "metric": METRIC}


def build(rows: list[dict], axes: dict[str, list[Any]], recs: list[dict], curves: dict[str, dict],
          merged: list[list[str]], noise: Noise, idle: Optional[dict[str, str]] = None) -> dict:
    """The `explained` section of a sweep report (assign_observations ran on the rows first)."""
    seeds = {r["overrides"].get(SEED_KEY) for r in rows}
    return {
        "noise": {**noise.as_dict(),
                  "statement": _noise_statement(noise, merged, len(seeds - {None}))},
        "merged_observations": merged,
        "axes": explain_axes(rows, axes, noise, idle),
        "recommendations": compare_recommendations(recs, rows, axes, noise),
        "curves": value_curves(rows, curves, axes),
        "parallel": parallel_coordinates(rows, axes),
    }


def _noise_statement(noise: Noise, merged: list[list[str]], seeds: int) -> str:
    parts = []
    if noise.measured:
        parts.append(f"run-to-run sd {noise.replicate_sd:.4f} from replicates ({noise.dof} degrees of freedom)")
    else:
        parts.append("no configuration was run with two seeds whose records differ: the run-to-run noise is "
                     f"unmeasured and no difference is claimed (add {SEED_KEY}=0,1,2)")
    if noise.binomial_sd is not None:
        parts.append(f"the validation set's binomial noise is {noise.binomial_sd:.4f} per run")
    if merged:
        parts.append(f"{len(merged)} groups of runs with identical records or the same seed count as one "
                     f"observation each ({'; '.join(', '.join(g[:6]) for g in merged[:8])})")
    parts.append("differences are claimed by Student's t against that noise, Holm-corrected over every claim")
    return "; ".join(parts)

