"""Rules on gradients, updates and activations."""

from __future__ import annotations

import math

import numpy as np

from rundir.config_keys import OPTIMIZER_NAME, REGULARIZATION_GRAD_CLIP, SCHEDULER_WARMUP
from ..facts import ADAPTIVE, DEAD_SHARE, dead_relu_share, updates_huge
from ..findings import Finding, Recommendation
from ..overrides import lower_lr, override, raise_lr, undo_fault
from ..progress import progress, settled
from rundir.read import Run
from ..schedule import find_cuts, relax_cuts
from ..stats import median as finite_median
from . import causes
from .catalog import rule

VANISH_GLOBAL = 1e-2  # seed: 'gradient norms < 0.01' ...
VANISH_UPDATE = 1e-6  # ... 'weight changes < 1e-6'
VANISH_LAYER = 1e-7  # SageMaker Debugger / DeepDiagnosis VanishingGradient: < 1e-7
VANISH_RATIO = 1e-3  # AUTOTRAINER gra_rate: first-layer / last-layer gradient norm < 1e-3
EXPLODE_RATIO = 70.0  # AUTOTRAINER gra_rate > 70
EXPLODE_GROWTH = 10.0  # ours: epoch mean norm 10x its earlier minimum
EXPLODE_SPIKE = 100.0  # ours: a step's norm 100x the run's median epoch mean
STILL_RATIO = 1e-8  # SageMaker Debugger WeightUpdateRatio: update / weight < 1e-8
CLIP_SATURATED = 0.9  # ours: clipped on >= 90% of steps ...
CLIP_EPOCH_SHARE = 0.8  # ... in >= 80% of epochs
AMP_NORM_OVER_SCALE = 1e-3  # ours: pre-clip norm / loss scale above this means scaled gradients
AMP_MIN_SCALE = 1024.0


# A symptom that cost nothing is information, not a warning: the run's training loss reached its floor anyway.
CONVERGED_NOTE = "; the run converged all the same (analysis/progress.py), so it cost nothing here"


def _converged(run: Run) -> bool:
    return progress(run)["verdict"] == "converged"


def _epochs_after_first(run: Run) -> np.ndarray:
    """A mask that skips epoch 1 (initialization transients) when there are later epochs."""
    e = run.train.epochs
    return e > e[0] if len(e) > 1 else np.ones(len(e), dtype=bool)


def _layer_means(run: Run) -> dict[str, float]:
    """Each layer's gradient norm averaged over the epochs after the first (computed once per run)."""
    if "layer_means" not in run.memo:
        run.memo["layer_means"] = _compute_layer_means(run)
    return run.memo["layer_means"]


def _compute_layer_means(run: Run) -> dict[str, float]:
    names, table = run.train.nested("layer_grad_norms")
    if not names:
        return {}
    rows = table[_epochs_after_first(run)]
    rows = np.where(np.isfinite(rows), rows, np.nan)
    with np.errstate(all="ignore"):
        means = np.nanmean(rows, axis=0) if len(rows) else np.full(len(names), np.nan)
    return {n: m for n, m in zip(names, means.tolist()) if math.isfinite(m)}  # tolist: the same floats, at once


@rule("vanishing_gradients", section="Gradients", title="gradients too small to move the weights",
      source="recipe (norms < 0.01 with weight changes < 1e-6); SageMaker Debugger (< 1e-7 per tensor); "
             "AUTOTRAINER (first/last layer < 1e-3)",
      thresholds={"global norm": f"< {VANISH_GLOBAL} with weight update < {VANISH_UPDATE}",
                  "any layer": f"< {VANISH_LAYER}", "first/last layer": f"< {VANISH_RATIO}"})
def vanishing_gradients(run: Run):
    tr = run.train
    if not tr.has("mean_grad_norm"):
        return None
    keep = _epochs_after_first(run)
    g, u = tr["mean_grad_norm"][keep], tr["weight_update"][keep]
    seed_rule = bool(np.any((g < VANISH_GLOBAL) & (u < VANISH_UPDATE)))
    layers = _layer_means(run)
    dead_layers = sorted(k for k, v in layers.items() if v < VANISH_LAYER)
    names = list(layers)
    ratio = None
    if len(names) >= 2 and layers[names[-1]] > 0:
        ratio = layers[names[0]] / layers[names[-1]]
    ratio_rule = ratio is not None and ratio < VANISH_RATIO
    if not (seed_rule or dead_layers or ratio_rule):
        return None
    parts = []
    if seed_rule:
        parts.append(f"global norm {np.nanmin(g):.2g} with weight updates {np.nanmin(u):.2g}")
    if dead_layers:
        parts.append(f"{len(dead_layers)} layer(s) get no gradient ({', '.join(dead_layers[:4])})")
    if ratio_rule:
        parts.append(f"first/last layer norm ratio {ratio:.2g}")
    return Finding(
        "vanishing_gradients", "critical" if dead_layers or seed_rule else "warning",
        "vanishing gradients: " + "; ".join(parts),
        evidence={"min_mean_grad_norm": float(np.nanmin(g)) if len(g) else None,
                  "min_weight_update": float(np.nanmin(u)) if len(u) else None,
                  "layers_without_gradient": dead_layers, "first_last_ratio": ratio,
                  "smallest_layers": dict(sorted(layers.items(), key=lambda kv: kv[1])[:5])},
        recommendations=_vanishing_fixes(run), epoch=int(tr.epochs[-1]))


def _vanishing_fixes(run: Run) -> list[Recommendation]:
    """Dead ReLUs pass no gradient whatever the LR: then the fix is theirs (as dead_relu and
    accuracy_at_chance say), not a higher LR."""
    if dead_relu_share(run) > DEAD_SHARE:
        return [causes.dead_relu_fix(run)]
    raise_ = raise_lr(run, 3)
    return ([Recommendation("raise the learning rate", raise_)] if raise_ else []) + [
        Recommendation("check initialization and activations (dead ReLUs stop gradients: see dead_relu)", [])]


@rule("exploding_gradients", section="Gradients", title="gradient norms growing or spiking",
      source="AUTOTRAINER (first/last layer > 70); growth and spike factors ours (wandb-primary kurtosis idea)",
      thresholds={"first/last layer": f"> {EXPLODE_RATIO}", "growth": f">= {EXPLODE_GROWTH}x earlier minimum",
                  "spike": f"max step norm >= {EXPLODE_SPIKE}x median epoch mean",
                  "info": "spikes in the first epoch alone, in a run that converged all the same"})
def exploding_gradients(run: Run):
    tr = run.train
    gmax = tr["max_grad_norm"]
    g_ok, e_ok = tr.finite("mean_grad_norm")
    if len(g_ok) < 2:
        return None
    running_min = np.minimum.accumulate(g_ok)
    growth = g_ok / np.maximum(running_min, 1e-30)
    grew = np.where(growth >= EXPLODE_GROWTH)[0]
    median = finite_median(g_ok)
    spikes = np.where(np.isfinite(gmax) & (gmax >= EXPLODE_SPIKE * median))[0] if median > 0 else np.array([], int)
    layers = _layer_means(run)
    names = list(layers)
    ratio = layers[names[0]] / layers[names[-1]] if len(names) >= 2 and layers[names[-1]] > 0 else None
    ratio_rule = ratio is not None and ratio > EXPLODE_RATIO
    if not (len(grew) or len(spikes) or ratio_rule):
        return None
    parts, first = [], None
    if len(grew):
        i = int(grew[0])
        first = int(e_ok[i])
        parts.append(f"mean norm grew {growth[i]:.0f}x to {g_ok[i]:.3g} by epoch {first}")
    if len(spikes):
        j = int(spikes[0])
        parts.append(f"a step norm of {gmax[j]:.3g} at epoch {int(tr.epochs[j])} ({gmax[j] / median:.0f}x the median)")
        first = first if first is not None else int(tr.epochs[j])
    if ratio_rule:
        parts.append(f"first/last layer norm ratio {ratio:.3g}")
    # A first epoch's spike in a run that then converged is an initialization transient (a ResNet's first steps
    # at the usual LR reach 100x the later norms), not a run the gradients damaged: said, without a warning.
    transient = (not len(grew) and not ratio_rule and bool(len(spikes)) and bool(np.all(tr.epochs[spikes] == tr.epochs[0]))
                 and len(tr.epochs) > 1 and _converged(run))
    if transient:
        parts[-1] += ", in the first epoch only: a transient the run recovered from (it converged)"
    recs = [Recommendation("lower the learning rate", lower_lr(run, 3))]
    if transient and run.cfg(SCHEDULER_WARMUP) == 0:
        recs = [Recommendation("a short warmup tames the first steps", [override(SCHEDULER_WARMUP, 1)])]
    clip = run.cfg(REGULARIZATION_GRAD_CLIP)
    if clip is None and run.config is not None:
        recs.append(Recommendation("clip the global gradient norm near its typical size",
                                   [override(REGULARIZATION_GRAD_CLIP, float(f"{2 * median:.2g}"))]))
    return Finding("exploding_gradients", "info" if transient else "warning",
                   ("a gradient spike: " if transient else "exploding gradients: ") + "; ".join(parts),
                   evidence={"median_mean_grad_norm": median, "growth_max": float(growth.max()),
                             "spike_epochs": [int(tr.epochs[j]) for j in spikes][:10], "first_last_ratio": ratio},
                   recommendations=recs, epoch=first)


@rule("weights_not_updating", section="Weight Updates", title="update/weight ratio near zero",
      source="SageMaker Debugger WeightUpdateRatio (< 1e-8); seed 'weight changes confirm learning'",
      thresholds={"weight_update_ratio": f"< {STILL_RATIO}", "info": "when the run converged all the same"})
def weights_not_updating(run: Run):
    ratio = run.train["weight_update_ratio"]
    ok = np.isfinite(ratio)
    if not ok.any():
        return None
    still = ok & (ratio < STILL_RATIO)
    if not still.any():
        return None
    epochs = [int(e) for e in run.train.epochs[still]]
    cuts = [c for c in find_cuts(run) if c.epoch <= epochs[0]]  # scheduler cuts before the weights froze
    converged = _converged(run)
    return Finding("weights_not_updating", "info" if converged else "critical",
                   f"the weights barely move: update/weight ratio {float(np.nanmin(ratio)):.2g} "
                   f"(< {STILL_RATIO:g}) in {len(epochs)} epoch(s)"
                   + (f", after {len(cuts)} scheduler cut(s) took the LR from {cuts[0].lr_before:.3g} to "
                      f"{cuts[-1].lr_after:.3g}" if cuts else "") + (CONVERGED_NOTE if converged else ""),
                   evidence={"epochs": epochs[:20], "min_ratio": float(np.nanmin(ratio)), "threshold": STILL_RATIO,
                             "lr_cuts_before": len(cuts), "lr_after_cuts": cuts[-1].lr_after if cuts else None},
                   recommendations=_still_fixes(run, bool(cuts)) + [
                       Recommendation("check that optimizer.step() runs and gradients reach the parameters "
                                      "(clipping, AMP scaling)", [])],
                   epoch=epochs[0])


def _still_fixes(run: Run, after_cuts: bool) -> list[Recommendation]:
    """Weights that froze after scheduler cuts (analysis/schedule.py) froze because of the cuts: a higher
    base LR would be cut just the same, so the fix is the scheduler's. Otherwise the base LR is too low."""
    if after_cuts:
        return relax_cuts(run, floor=True)
    raise_ = raise_lr(run, 10)
    return [Recommendation("raise the learning rate", raise_)] if raise_ else []


@rule("clipping_saturated", section="Gradients", title="gradient clipping active on nearly every step",
      source="ours (what clipped gradients look like; the seed's grad clip 1.0)",
      thresholds={"clipped_fraction": f">= {CLIP_SATURATED}", "epochs": f">= {CLIP_EPOCH_SHARE:.0%} of them",
                  "info": "with Adam or AdamW (the step is divided by the gradient's RMS), or when the run converged"})
def clipping_saturated(run: Run):
    frac = run.train["clipped_fraction"]
    clip = run.cfg(REGULARIZATION_GRAD_CLIP)
    ok = np.isfinite(frac)
    if ok.sum() < 1 or (clip is None and run.config is not None):
        return None
    saturated = ok & (frac >= CLIP_SATURATED)
    if saturated.sum() < max(1, math.ceil(CLIP_EPOCH_SHARE * ok.sum())):
        return None
    median_norm = float(np.nanmedian(run.train["mean_grad_norm"])) if run.train.has("mean_grad_norm") else None
    recs = []
    if _norm_over_scale(run) is not None:
        # The norms were measured on still-scaled gradients: a threshold "at the typical norm" would be the loss
        # scale times too large. The fix is the order of unscale and clip (amp_scaled_gradients).
        recs.append(Recommendation("the clipped gradients were still scaled by AMP: unscale before clipping "
                                   "(see amp_scaled_gradients), not a larger threshold", undo_fault(run)))
    elif median_norm is not None and run.config is not None:
        recs.append(Recommendation("raise the clip threshold to the typical norm, so it only cuts spikes",
                                   [override(REGULARIZATION_GRAD_CLIP, float(f"{2 * median_norm:.2g}"))]))
        recs.append(Recommendation("or turn clipping off", ["regularization.grad_clip=null"]))
    adaptive = run.cfg(OPTIMIZER_NAME) in ADAPTIVE
    harmless = adaptive or _converged(run)
    note = ("; Adam-type steps are divided by the gradient's running RMS, so clipping every step scales the "
            "gradient, hardly the step" if adaptive else CONVERGED_NOTE if harmless else "")
    return Finding("clipping_saturated", "info" if harmless else "warning",
                   (f"clipping scaled the gradients on {float(np.nanmean(frac[ok])):.0%} of steps "
                    f"(threshold {clip}, median pre-clip norm {median_norm:.3g})"
                    + (": the effective LR is lowered" if not adaptive else "")
                    if median_norm is not None else
                    f"clipping scaled the gradients on {float(np.nanmean(frac[ok])):.0%} of steps") + note,
                   evidence={"clipped_fraction_mean": float(np.nanmean(frac[ok])), "grad_clip": clip,
                             "median_pre_clip_norm": median_norm, "epochs_saturated": int(saturated.sum())},
                   recommendations=recs, epoch=int(run.train.epochs[np.argmax(saturated)]))


def _norm_over_scale(run: Run) -> float | None:
    """The median pre-clip norm / loss scale when it says the norms were read on scaled gradients, else None."""
    g, s = run.train["mean_grad_norm"], run.train["amp_scale"]
    ok = np.isfinite(g) & np.isfinite(s) & (s >= AMP_MIN_SCALE)
    if not ok.any():
        return None
    ratio = float(np.median(g[ok] / s[ok]))
    return ratio if ratio > AMP_NORM_OVER_SCALE else None


@rule("amp_scaled_gradients", section="Gradients", title="gradients read or clipped before unscaling (fp16 AMP)",
      source="recipe (AMP clip-before-unscale fix); Lightning #9330, wandb #4369 (scaled norms)",
      thresholds={"pre-clip norm / loss scale": f"> {AMP_NORM_OVER_SCALE}", "loss scale": f">= {AMP_MIN_SCALE:g}"})
def amp_scaled_gradients(run: Run):
    ratio = _norm_over_scale(run)
    if ratio is None:
        return None
    g, s = run.train["mean_grad_norm"], run.train["amp_scale"]
    ok = np.isfinite(g) & np.isfinite(s) & (s >= AMP_MIN_SCALE)
    return Finding("amp_scaled_gradients", "critical",
                   f"gradient norms track the loss scale (norm/scale = {ratio:.2g}): gradients were measured and "
                   f"clipped before scaler.unscale_, so clipping cut them by about the scale ({np.median(s[ok]):.0f}x)",
                   evidence={"median_norm_over_scale": ratio, "median_amp_scale": float(np.median(s[ok])),
                             "threshold": AMP_NORM_OVER_SCALE},
                   recommendations=[Recommendation("call scaler.unscale_(optimizer) before clip_grad_norm_ "
                                                   "(the order of PyTorch's AMP examples)",
                                                   undo_fault(run)),
                                    # A fault injected on purpose (fault=clip_before_unscale) only exists under
                                    # fp16: leaving fp16 must turn it off too, or the rerun is refused.
                                    Recommendation("or use bf16, which needs no loss scaling",
                                                   [*undo_fault(run), "trainer.amp=bf16"])],
                   epoch=int(run.train.epochs[np.argmax(ok)]))


@rule("dead_relu", section="Activations", title="most ReLU units of a layer never fire",
      source="SageMaker Debugger DeadRelu (unit active < 1% of the time; > 50% of a layer)",
      thresholds={"unit inactive": "< 1% positive outputs on the sampled batch", "layer": f"> {DEAD_SHARE:.0%} of units",
                  "info": "when the run converged all the same with a normal step (not above the optimizer's usual "
                          "maximum)"})
def dead_relu(run: Run):
    frac = run.train["dead_relu_fraction"]
    ok = np.isfinite(frac)
    if not ok.any():
        return None
    last = np.where(ok)[0][-1]
    if frac[last] <= DEAD_SHARE:
        return None
    layers = run.train.records[last].get("dead_relu_layers") or {}
    worst = {k: v for k, v in layers.items() if isinstance(v, (int, float)) and v > DEAD_SHARE}
    # Harmless when the run converged with a normal step, or, under a step above the usual maximum, when it also
    # held its level (progress.settled): otherwise a converged end is the schedule's rescue (an LR of 5 sat at
    # chance for 8 of 10 epochs, then cosine brought it to 0.94), and the dead units are the trace of the damage
    # that names the LR.
    eff, most = causes.effective_lr(run), causes.usual_effective_lr(run)[1]
    huge_step = updates_huge(run) or (eff is not None and most is not None and eff > most)
    converged = _converged(run) and (not huge_step or settled(run))
    return Finding("dead_relu", "info" if converged else "warning",
                   f"dead ReLUs: up to {frac[last]:.0%} of a layer's units never fire (epoch {int(run.train.epochs[last])})"
                   + (CONVERGED_NOTE + ": the live units carry the task" if converged else ""),
                   evidence={"dead_relu_fraction": float(frac[last]), "layers_over_threshold": worst,
                             "threshold": DEAD_SHARE},
                   # Large updates kill ReLUs; without them, the units were dead from the start.
                   recommendations=[Recommendation("lower the learning rate (large updates kill ReLUs)",
                                                   lower_lr(run, 3))] if updates_huge(run)
                   else [causes.dead_relu_fix(run)],
                   epoch=int(run.train.epochs[last]))


