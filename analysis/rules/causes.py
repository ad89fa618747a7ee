"""Differential diagnosis: one root cause per run, chosen by scoring every candidate on its evidence.

Registers no rule. Rules report symptoms (at chance, a plateau, dead ReLUs, saturated clipping ...); many
of them are seen from one fault. Each candidate cause below gathers the evidence for it and against it from
the run's own facts (config, update/weight ratios, the weight norm, clipping, the loss scale, the LR
schedule, the accuracy curves) and from the findings that fired; points add up to a score. The report leads
with the highest-scoring cause, lists the findings it explains as its symptoms, ranks the alternatives with
their evidence, and drops any recommendation that contradicts the primary cause's fix (never "raise the LR"
under "the LR is too high").

Weights: 3 for evidence that alone identifies the cause (non-finite steps, a saturated clip far below the
gradient norm, norms that track the AMP loss scale, a collapsed weight norm ...), 2 for strong support, 1 for
a symptom several causes share; evidence against subtracts. A cause needs MIN_SCORE to be named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..facts import (ADAPTIVE, CHANCE_CEILING, DEAD_SHARE, UPDATE_RATIO_HUGE, UPDATE_RATIO_TINY, at_chance,
                     chance_accuracy, chance_loss, common_epochs, dead_relu_share, finite, update_ratio_range,
                     updates_huge, updates_tiny, val_size)
from ..findings import Finding, Recommendation
from ..overrides import MAX_LR, USUAL_LR, fmt, lower_lr, override, raise_lr, undo_fault
from rundir.lr_find import lr_find_for, lr_for_scheduler
from rundir.read import Run
from ..progress import FAR_SHARE, NOT_LEARNING_SHARE, fit_limit, progress, training_time, unfinished
from rundir.config_keys import (
    AUGMENTATION_MAGNITUDE, AUGMENTATION_NAME, AUGMENTATION_NUM_OPS, DATA_BATCH_SIZE, MODEL_NAME, MODEL_WIDTH,
    TRAINER_EPOCHS, OPTIMIZER_LR,
    OPTIMIZER_MOMENTUM, OPTIMIZER_NAME, REGULARIZATION_GRAD_CLIP, REGULARIZATION_LABEL_SMOOTHING,
    REGULARIZATION_WEIGHT_DECAY, SCHEDULER_NAME)
from ..schedule import decayed_to_nothing, find_cuts
from ..stats import binomial_se, median, noise
from .catalog import run_rules

CHECK_LABELS = ("check that labels match images and that train/val transforms are right "
                "(python -m trainer.check_data <same overrides>)")
CHECK_LOOP = ("check the loop: model.train(), optimizer.zero_grad(), optimizer.step(), "
              "no softmax before CrossEntropyLoss")
CHECK_EVAL = ("check evaluation: model.eval() for validation and model.train() after it, the same preprocessing "
              "for both splits, BatchNorm running statistics not corrupted (python -m trainer.check_data <same overrides>)")

MIN_SCORE = 2.0  # a cause needs at least this much evidence to be named the primary one
USUAL_MOMENTUM = 0.9  # SGD's heavy-ball default (conf/optimizer/sgd.yaml); the effective step is lr / (1 - m)
HIGH_MOMENTUM = 0.98  # above this, the effective step lr / (1 - m) is at least 5x the default's
USUAL_WEIGHT_DECAY = 5e-4  # the schema default (trainer/config.py RegularizationConf)
STRONG_WD_FACTOR = 20.0  # weight decay 20x the usual is far outside the usual range (He et al.: 1e-4 .. 5e-4)
WEIGHT_NORM_COLLAPSE = 0.5  # the weight norm fell to below half its first epoch's: decay overwhelms the gradient
STRONG_SMOOTHING = 0.3  # label smoothing above 0.3 (recipes use 0.1) flattens the target toward uniform
USUAL_SMOOTHING = 0.1
STRONG_MAGNITUDE = 20  # RandAugment magnitude on its 0..30 scale (default 9)
FEW_STEPS = 60  # optimizer steps in the whole run: fewer cannot train a network from scratch
# The augmented training batches fit 10 points or more worse than validation: a tenth of the images, no epoch's lag
# or binomial noise (2 SE at 359 images is 4 points at most) explains it.
FIT_GAP_WIDE = 0.1
CLIPPED_MOST = 0.9  # clipping that cut >= 90% of the steps on average sets their size (a rare clip cuts spikes)
CLIP_FAR_BELOW = 10.0  # the median pre-clip norm over 10x the clip threshold: clipping sets the step size
MISMATCH_GAP_Z = 4.0  # val accuracy below train accuracy by > 4 SE of the gap, from the first epochs
MISMATCH_EPOCHS = 2  # judged on the first epochs after the first (BatchNorm statistics settle in one)
MISMATCH_KEPT = 0.5  # validation keeps less than half of training accuracy's rise above chance
LOSS_FELL = 0.5  # a train loss that fell by over half its distance to the floor was moved by the LR
LOSS_STUCK = NOT_LEARNING_SHARE  # ... and one that fell by under a tenth of it barely moved (progress.py's)
LR_LOW_FACTOR = 3.0  # an effective LR 3x below the optimizer's usual one (the next step of a 1-3-10 LR grid) is low
# Karpathy's rule of thumb: an update near 1e-3 of the weights per step is healthy; a largest one below it is small.
UPDATE_RATIO_SMALL = 1e-3
# Zhang et al. 2017: a network with 2n + d parameters can fit any labels of n samples; one with fewer parameters than
# twice its training images cannot be relied on to fit them (a capacity limit), and fewer than n surely falls short.
PARAMS_PER_IMAGE_FIT = 2.0
CAPACITY_TRAIN_ACC = 0.9  # a train accuracy below 90%: a tenth of its own training images misfit
FITS_TRAIN_ACC = 0.98  # ... and one above 98% fits its training set: capacity is not what limits it
STEPS_PER_EPOCH_SMALL_BATCH = 10  # >= 10 steps an epoch: the batch is under a tenth of the data, not "so large"
# A usable LR has a fast phase: on the digits reference the second epoch alone covers 28% of the way to the floor;
# a loss whose fastest epoch covers under 10% crawled from the start.
FAST_FALL_SHARE = 0.1
SCHEDULE_TIME_SHARE = 0.1  # the second half of the run got < 10% of the training time: the schedule took the LR away


@dataclass
class Candidate:
    id: str
    text: str  # "the LR is too high", as the report names the cause
    score: float = 0.0
    evidence_for: list[str] = field(default_factory=list)
    evidence_against: list[str] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    explains: tuple[str, ...] = ()  # finding ids that are symptoms of this cause

    def support(self, points: float, why: str) -> None:
        self.score += points
        self.evidence_for.append(f"{why} (+{points:g})")

    def oppose(self, points: float, why: str) -> None:
        self.score -= points
        self.evidence_against.append(f"{why} (-{points:g})")

    def as_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "score": self.score, "evidence_for": self.evidence_for,
                "evidence_against": self.evidence_against,
                "recommendations": [{"text": r.text, "overrides": r.overrides} for r in self.recommendations],
                "explains": list(self.explains)}


# ── facts ──

def _num(run: Run, key: str) -> Optional[float]:
    v = run.cfg(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, int) and abs(v) > 2**53):
        return None  # an int of 400 digits (a hostile config) has no float
    return float(v) if math.isfinite(v) else None


def effective_lr(run: Run) -> Optional[float]:
    """The step the optimizer takes relative to its usual one: SGD's heavy ball sums past gradients, so its
    effective LR is lr / (1 - momentum); Adam's LR is already the step size."""
    lr = _num(run, OPTIMIZER_LR)
    if lr is None:
        return None
    if run.cfg(OPTIMIZER_NAME) == "sgd":
        m = _num(run, OPTIMIZER_MOMENTUM)
        if m is None:  # a log that does not state it (another tool's): unknown, never the schema default
            return None
        return lr / max(1 - m, 1e-6)
    return lr


def clipped_step_share(run: Run) -> float:
    """The share of its step a plain-gradient optimizer kept under clipping that cut nearly every step (>= 90% of
    them): threshold / median pre-clip norm, at most 1. 1 when clipping rarely acted, or for Adam-type steps (they
    divide by the gradient's RMS: clipping scales the gradient, hardly the step)."""
    clip, frac, g = _num(run, REGULARIZATION_GRAD_CLIP), finite(run.train["clipped_fraction"]), finite(run.train["mean_grad_norm"])
    if not clip or clip <= 0 or not len(frac) or float(np.mean(frac)) < CLIPPED_MOST or not len(g) or \
            run.cfg(OPTIMIZER_NAME) in ADAPTIVE:
        return 1.0
    norm = median(g)
    return min(1.0, clip / norm) if norm > 0 else 1.0


def usual_effective_lr(run: Run) -> tuple[Optional[float], Optional[float]]:
    """The optimizer's usual effective LR and the largest that usually stays stable (overrides.USUAL_LR/MAX_LR,
    with SGD's default momentum)."""
    name = run.cfg(OPTIMIZER_NAME)
    if name not in USUAL_LR:
        return None, None
    k = 1 / (1 - USUAL_MOMENTUM) if name == "sgd" else 1.0
    return USUAL_LR[name] * k, MAX_LR[name] * k


def weight_norms(run: Run) -> np.ndarray:
    """The weight norm per epoch, from the recorded update norm and update/weight ratio (NaN where unknown)."""
    u, r = run.train["weight_update"], run.train["weight_update_ratio"]
    with np.errstate(all="ignore"):
        return np.where((r > 0) & np.isfinite(u) & np.isfinite(r), u / r, np.nan)


def total_steps(run: Run) -> Optional[int]:
    b = finite(run.train["num_batches"])
    total = float(np.sum(b)) if len(b) else math.nan
    return int(total) if math.isfinite(total) else None  # counts of 1e308 (a hostile file) sum to inf


def mismatch(run: Run) -> Optional[dict]:
    """Validation accuracy far below training accuracy from the first epochs (beyond the noise of the gap), or a
    val loss above ln C at the end while the train loss fell below it: what the model does in training mode
    does not carry over to evaluation (BatchNorm running statistics wrecked by huge steps, an eval-mode bug,
    a transform mismatch)."""
    common, train_rows, val_rows = common_epochs(run)
    if len(common) < 3:
        return None
    t = run.train["accuracy"][train_rows]
    v = run.val["accuracy"][val_rows]
    ok = np.isfinite(t) & np.isfinite(v)
    if ok.sum() < 3:
        return None
    t, v = t[ok], v[ok]
    gap = t - v
    n = val_size(run)
    # Measurement noise: binomial when the val size is known (a swinging val curve is the symptom, not noise),
    # else the curve's own epoch-to-epoch noise.
    se = max(binomial_se(median(v), n) if n else noise(v), 1e-3)
    early = gap[1:1 + MISMATCH_EPOCHS] if len(gap) > MISMATCH_EPOCHS else gap
    late_loss = finite(run.val["loss"])
    tr_loss = finite(run.train["loss"])
    l0 = chance_loss(run)
    loss_mismatch = (l0 is not None and len(late_loss) >= 2 and len(tr_loss) >= 2 and median(late_loss[-3:]) > l0
                     and tr_loss[-1] < 0.5 * l0)
    # "Far below": beyond the noise of the gap, and validation keeps less than half of training's progress above
    # chance (an overfitting model generalizes most of what it learns; a broken evaluation does not).
    p0 = 1.0 / run.num_classes if run.num_classes else 0.0
    kept = (v - p0) / np.maximum(t - p0, 1e-9)
    early_kept = kept[1:1 + MISMATCH_EPOCHS] if len(kept) > MISMATCH_EPOCHS else kept
    acc_mismatch = bool(np.all(early > MISMATCH_GAP_Z * se) and float(np.mean(gap[-3:])) > MISMATCH_GAP_Z * se
                        and np.all(early_kept < MISMATCH_KEPT) and float(np.mean(kept[-3:])) < MISMATCH_KEPT)
    if not (acc_mismatch or loss_mismatch):
        return None
    # Recovered: the last epoch generalizes what training learned (BatchNorm statistics settled as the LR fell).
    recovered = bool(kept[-1] >= MISMATCH_KEPT and gap[-1] <= MISMATCH_GAP_Z * se) and not loss_mismatch
    return {"early_gap": [round(float(g), 4) for g in early], "final_gap": float(np.mean(gap[-3:])), "gap_se": se,
            "recovered_at_last_epoch": recovered,
            "final_val_loss": float(late_loss[-1]) if len(late_loss) else None, "chance_loss": l0,
            "final_train_loss": float(tr_loss[-1]) if len(tr_loss) else None,
            "val_loss_above_chance": bool(loss_mismatch), "val_far_below_train": acc_mismatch}


# ── candidates ──

def _fired(findings: list[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in findings}


def _fastest_fall(run: Run) -> Optional[float]:
    """The largest one-epoch fall of the train loss as a share of the way from its start to its floor (None when
    unknown or with under 3 epochs)."""
    p = progress(run)
    y = finite(run.train["loss"])
    if p.get("judged_floor") is None or len(y) < 3 or p["start"] <= p["judged_floor"]:
        return None
    return float(np.max(-np.diff(np.concatenate([[p["start"]], y])))) / (p["start"] - p["judged_floor"])


def _lr_candidates(run: Run, fired: dict) -> list[Candidate]:
    high = Candidate("lr_too_high", "the LR (the effective step) is too high",
                     explains=("nonfinite_loss", "loss_diverging", "loss_oscillating", "exploding_gradients",
                               "accuracy_at_chance", "val_far_below_train", "lr_out_of_range", "dead_relu",
                               "loss_plateau_early", "overtraining"))
    low = Candidate("lr_too_low", "the LR is too low to move the weights",
                    explains=("accuracy_at_chance", "loss_plateau_early", "vanishing_gradients", "weights_not_updating",
                              "lr_out_of_range", "not_learning", "far_from_converged", "undertrained"))
    eff, (usual, most) = effective_lr(run), usual_effective_lr(run)
    if np.nansum(run.train["nonfinite_steps"]) > 0 or "nonfinite_loss" in fired:
        high.support(3, "non-finite loss or gradients")
    lo_r, hi_r = update_ratio_range(run)
    if hi_r > UPDATE_RATIO_HUGE:
        high.support(3, f"updates up to {hi_r:.2g} of the weights (> {UPDATE_RATIO_HUGE:g})")
    if eff is not None and most is not None:
        if eff > 10 * most:
            high.support(3, f"effective LR {eff:.3g} over 10x the usual maximum {most:.3g} for {run.cfg(OPTIMIZER_NAME)}")
        elif eff > 3 * most:
            high.support(2, f"effective LR {eff:.3g} over 3x the usual maximum {most:.3g} for {run.cfg(OPTIMIZER_NAME)}")
        elif eff > most:
            high.support(1, f"effective LR {eff:.3g} above the usual maximum {most:.3g}")
        elif eff <= 0 or round(usual / eff, 6) >= LR_LOW_FACTOR:  # rounded: LR/10 in a config is a decade below, not 9.99x
            decade = eff <= 0 or round(usual / eff, 6) >= 10
            low.support(2 if decade else 1, f"effective LR {eff:.3g} is {usual / max(eff, 1e-300):.0f}x below the usual "
                                            f"{usual:.3g} for {run.cfg(OPTIMIZER_NAME)}")
            high.oppose(2 if decade else 1, f"effective LR {eff:.3g} is small")
        else:
            high.oppose(1, f"effective LR {eff:.3g} inside the usual range (up to {most:.3g})")
    p = progress(run)
    done = p.get("loss_progress")
    # A low LR slows the fall; it does not stop it: a run still paying for more epochs at a step LR_LOW_FACTOR or
    # more below the usual one was held back by its LR, however far it got (more epochs at that step would pay too,
    # slowly: too_few_epochs weighs that).
    paced = unfinished(p) or (p.get("verdict") == "still improving" and bool(p.get("steep")))
    # ... and a run that stalled with most of the way ahead at such a step (a decaying schedule stops it where the
    # small step got it) went as far as its LR took it.
    held = p.get("verdict") == "stalled" and (p.get("remaining") or 0) > FAR_SHARE
    if (paced or held) and eff is not None and usual is not None and (eff <= 0 or round(usual / eff, 6) >= LR_LOW_FACTOR):
        low.support(1, f"{'still improving' if paced else 'stalled far from its floor'} at the end with a step "
                       f"{usual / max(eff, 1e-300):.0f}x below the usual: the LR set the pace")
    if done is not None and p.get("epochs", 0) >= 3:
        if done > LOSS_FELL and not paced:
            low.oppose(2, f"the train loss fell {done:.0%} of the way to its floor")
        elif done < LOSS_STUCK and not (np.nansum(run.train["nonfinite_steps"]) > 0):
            low.support(1, f"the train loss fell only {max(done, 0):.0%} of the way to its floor")
    if updates_tiny(run):
        low.support(3, f"every update below {UPDATE_RATIO_TINY:g} of the weights")
        high.oppose(3, "updates are tiny")
    elif np.isfinite(hi_r) and hi_r < UPDATE_RATIO_SMALL:
        low.support(1, f"the largest update is {hi_r:.2g} of the weights (a healthy step is near {UPDATE_RATIO_SMALL:g})")
    elif np.isfinite(hi_r) and hi_r >= 10 * UPDATE_RATIO_SMALL:
        low.oppose(1, f"updates reach {hi_r:.2g} of the weights")
    fastest = _fastest_fall(run)
    # Only for a loss that did move (a flat one is the "fell only" point above): it moved, but crawled.
    if fastest is not None and fastest < FAST_FALL_SHARE and done is not None and done >= LOSS_STUCK:
        low.support(1, f"the loss never fell fast: its fastest epoch covered {max(fastest, 0):.0%} of the way to the floor")
    for fid, pts in (("loss_diverging", 2), ("loss_oscillating", 1), ("exploding_gradients", 1)):
        if fid in fired:
            high.support(pts, f"{fid} fired")
    if "val_far_below_train" in fired and eff is not None and most is not None and eff > most:
        high.support(1, "evaluation far below training with a large step (BatchNorm statistics cannot keep up)")
    # The fix: an SGD run whose LR is usual but whose momentum is near 1 takes huge steps through the momentum.
    m = _num(run, OPTIMIZER_MOMENTUM)
    lr = _num(run, OPTIMIZER_LR)
    name = run.cfg(OPTIMIZER_NAME)
    probe = _lr_find_evidence(run, lr, high, low)
    if name == "sgd" and m is not None and m > HIGH_MOMENTUM and lr is not None and lr <= MAX_LR["sgd"]:
        high.recommendations.append(Recommendation(
            f"lower the momentum: lr / (1 - momentum) = {eff:.3g} is {eff / usual:.0f}x the usual effective step",
            [override(OPTIMIZER_MOMENTUM, USUAL_MOMENTUM)]))
    if (name == "sgd" and m is not None and m < USUAL_MOMENTUM and lr is not None and eff is not None and eff > 0
            and lr >= USUAL_LR["sgd"] / LR_LOW_FACTOR and round(usual / eff, 6) >= LR_LOW_FACTOR):
        # The LR is usual and the step small: the momentum is what differs from the usual recipe, so restore it.
        low.recommendations.append(Recommendation(
            f"restore the momentum: lr / (1 - momentum) = {eff:.3g} is {usual / eff:.0f}x below the usual effective "
            f"step at an LR of {lr:g}", [override(OPTIMIZER_MOMENTUM, USUAL_MOMENTUM)]))
    for c, wrong_way in ((high, lambda x: x >= lr), (low, lambda x: x <= lr)):  # the range test's LR, where it agrees
        if probe is not None and lr is not None and not wrong_way(probe[1]):
            c.recommendations.append(Recommendation(f"the LR range test's suggestion ({probe[0]})",
                                                    [override(OPTIMIZER_LR, probe[1])]))
    high.recommendations.append(Recommendation(
        "lower the learning rate" + (f" (effective step {eff:.3g}, usual up to {most:.3g})" if eff and most else ""),
        lower_lr(run, 10)))
    if raise_lr(run, 10):
        low.recommendations.append(Recommendation("raise the learning rate: the steps are too small to move the weights",
                                                  raise_lr(run, 10)))
    return [high, low]


LR_FIND_FAR = 10.0  # the run's LR over 10x (or under 1/10 of) its setup's LR range test suggestion


def _lr_find_evidence(run: Run, lr: Optional[float], high: Candidate, low: Candidate) -> Optional[tuple[str, float]]:
    """An LR range test of the run's setup (python -m trainer.lr_find): (its path, the LR it suggests for the run's
    scheduler) after weighing the run's LR against it, or None when there is none."""

    if "lr_find" not in run.memo:
        run.memo["lr_find"] = lr_find_for(run.path, run.config)
    found = run.memo["lr_find"]
    if found is None or lr is None:
        return None
    best = lr_for_scheduler(found["suggested_lr"], run.cfg("scheduler"))
    why = f"the LR range test of this setup ({found['path']}) suggests {best:.3g}; the run's LR {lr:.3g} is"
    if lr > LR_FIND_FAR * best:
        high.support(2, f"{why} {lr / best:.0f}x that")
    elif lr < best / LR_FIND_FAR:
        low.support(2, f"{why} 1/{best / lr:.0f} of that")
    else:
        for c in (high, low):
            c.oppose(1, f"{why} within {LR_FIND_FAR:g}x of it")
    return found["path"], best


def _weight_decay_candidate(run: Run, fired: dict) -> Candidate:
    c = Candidate("weight_decay_too_strong", "weight decay is too strong: it shrinks the weights faster than the "
                  "gradient can grow them", explains=("accuracy_at_chance", "loss_plateau_early", "over_regularization",
                                                      "val_far_below_train", "vanishing_gradients", "overtraining"))
    wd = _num(run, REGULARIZATION_WEIGHT_DECAY)
    if not wd:
        return c
    if wd >= STRONG_WD_FACTOR * USUAL_WEIGHT_DECAY:
        c.support(2 if wd >= 100 * USUAL_WEIGHT_DECAY else 1,
                  f"weight_decay={wd:g} is {wd / USUAL_WEIGHT_DECAY:.0f}x the usual {USUAL_WEIGHT_DECAY:g}")
    eff = effective_lr(run)
    steps = finite(run.train["num_batches"])
    if eff is not None and len(steps) and run.cfg(OPTIMIZER_NAME) in ("sgd", "adamw"):
        shrink = eff * wd * float(np.median(steps))  # fraction of the weight norm removed per epoch by decay alone
        if shrink > 0.5:
            c.support(1, f"decay alone removes {min(shrink, 99):.2g}x the weight norm per epoch (lr x wd x steps)")
    norms = weight_norms(run)
    ok = finite(norms)
    if len(ok) >= 2:
        ratio = float(ok[-1] / ok[0]) if ok[0] > 0 else math.nan
        if ratio < WEIGHT_NORM_COLLAPSE:
            c.support(2, f"the weight norm fell to {ratio:.2f} of its first epoch's")
        elif ratio > 0.9:
            c.oppose(1, f"the weight norm held ({ratio:.2f} of its first epoch's)")
    if wd < STRONG_WD_FACTOR * USUAL_WEIGHT_DECAY:
        c.oppose(2, f"weight_decay={wd:g} is in the usual range")
    target = USUAL_WEIGHT_DECAY if wd > 5 * USUAL_WEIGHT_DECAY else wd / 5
    c.recommendations.append(Recommendation("lower the weight decay to its usual range",
                                            [override(REGULARIZATION_WEIGHT_DECAY, target)]))
    return c


def _clip_candidates(run: Run, fired: dict) -> list[Candidate]:
    tight = Candidate("clipping_too_tight", "gradient clipping is far below the gradient norm, so it sets the step size",
                      explains=("clipping_saturated", "loss_plateau_early", "accuracy_at_chance"))
    amp = Candidate("amp_clip_before_unscale", "gradients are clipped (and measured) before AMP unscaling",
                    explains=("amp_scaled_gradients", "clipping_saturated", "accuracy_at_chance", "loss_plateau_early",
                              "exploding_gradients"))
    clip = _num(run, REGULARIZATION_GRAD_CLIP)
    frac = finite(run.train["clipped_fraction"])
    g = finite(run.train["mean_grad_norm"])
    if "amp_scaled_gradients" in fired:
        amp.support(4, "gradient norms track the loss scale")
        tight.oppose(3, "the norms are scaled by AMP: the clip was applied to scaled gradients")
        rec = fired["amp_scaled_gradients"].recommendations
        amp.recommendations.extend(rec)
    if clip and len(frac) and float(np.mean(frac)) >= CLIPPED_MOST:
        norm = median(g)  # NaN without norms
        share = clipped_step_share(run)
        eff, (usual, _) = effective_lr(run), usual_effective_lr(run)
        if norm > CLIP_FAR_BELOW * clip:
            tight.support(3, f"clipped on {np.mean(frac):.0%} of steps with the median norm {norm:.3g} "
                             f"{norm / clip:.0f}x the threshold {clip:g}")
        elif eff is not None and usual is not None and eff * share > 0 and \
                round(usual / (eff * share), 6) >= LR_LOW_FACTOR and usual / eff < LR_LOW_FACTOR:
            # A usual LR whose steps the clip cut to a third or less of the usual step: the clip set the pace.
            tight.support(3, f"clipped on {np.mean(frac):.0%} of steps at {share:.2g} of the median norm {norm:.3g}: "
                             f"the effective step {eff:.3g} became {eff * share:.2g}, {usual / (eff * share):.0f}x "
                             f"below the usual {usual:.3g}")
        else:
            tight.support(1, f"clipped on {np.mean(frac):.0%} of steps")
        tight.recommendations.append(Recommendation("raise the clip threshold to the typical norm, so it only cuts spikes",
                                                    [override(REGULARIZATION_GRAD_CLIP, float(f"{2 * norm:.2g}"))]
                                                    if math.isfinite(norm) else ["regularization.grad_clip=null"]))
        tight.recommendations.append(Recommendation("or turn clipping off", ["regularization.grad_clip=null"]))
    return [tight, amp]


def schedule_time_share(run: Run) -> Optional[float]:
    """The share of the training time (LR x steps) the second half of the epochs got (None: under 4 epochs or no LR)."""
    y, e = run.train.finite("loss")
    if len(e) < 4:
        return None
    t, source = training_time(run, e)
    if not source.startswith("cumulative") or not np.isfinite(t).all() or t[-1] <= 0:
        return None
    return float((t[-1] - t[len(t) // 2 - 1]) / t[-1])


def _schedule_candidate(run: Run, fired: dict) -> Candidate:
    c = Candidate("lr_schedule", "the LR schedule cut the LR too early or decayed it to nothing",
                  explains=("lr_decayed_to_nothing", "lr_reduced_early", "lr_cut_premature", "loss_plateau_early",
                            "weights_not_updating", "accuracy_at_chance", "vanishing_gradients", "far_from_converged",
                            "not_learning"))
    ev = decayed_to_nothing(run)
    if ev is not None and "lr_decayed_to_nothing" in fired:
        c.support(3, f"the LR fell below {ev['tiny_below']:.3g} for the last {ev['epochs_at_tiny_lr']} epochs")
        c.recommendations.extend(fired["lr_decayed_to_nothing"].recommendations)
    for fid in ("lr_reduced_early", "lr_cut_premature"):
        if fid in fired:
            c.support(1, f"{fid} fired")
            if not c.recommendations:
                c.recommendations.extend(fired[fid].recommendations)
    verdict = progress(run)["verdict"]
    share = schedule_time_share(run)
    if share is not None and verdict in ("stalled", "not learning"):
        if share < SCHEDULE_TIME_SHARE:
            c.support(3, f"the second half of the run got {share:.0%} of the training time (LR x steps): the schedule "
                         f"took the LR away while the loss was {verdict}")
            if not c.recommendations:
                c.recommendations.append(Recommendation("decay the LR smoothly over the whole run",
                                                        ["scheduler=cosine"] if run.cfg(SCHEDULER_NAME) != "cosine"
                                                        else ["scheduler=constant"]))
    cuts = find_cuts(run)
    if cuts and all(x.bought_loss is not None and x.bought_loss < 0 for x in cuts[:1]) and ev is None:
        c.oppose(1, "the first cut lowered the val loss")
    return c


NEGLECTED_CLASSES = ("majority_class_collapse", "class_never_predicted", "class_at_chance")  # rules/per_class.py


def _data_candidates(run: Run, fired: dict) -> list[Candidate]:
    out = []
    for fid, text, points in (
            ("label_out_of_range", "labels outside the model's outputs", 4),
            ("train_val_overlap", "validation images leak into training", 4),
            ("transforms_not_separated", "validation goes through the training pipeline", 4),
            ("input_not_normalized", "the inputs are not normalized", 3),
            ("class_imbalance", "the classes are badly imbalanced", 2)):
        if fid in fired:
            c = Candidate(f"data:{fid}", text, explains=(fid, "accuracy_at_chance", "val_above_train",
                                                         "loss_plateau_early", "val_far_below_train"))
            c.support(points, f"{fid} fired")
            if fid == "class_imbalance":  # the per-class results show whether the imbalance did harm
                c.explains += NEGLECTED_CLASSES
                neglected = [i for i in NEGLECTED_CLASSES if i in fired]
                if neglected:
                    c.support(2, f"the model neglects classes ({', '.join(neglected)})")
            c.recommendations.extend(fired[fid].recommendations)
            out.append(c)
    labels = Candidate("data", "the weights move normally, so the labels or the data cannot be learned",
                       explains=("accuracy_at_chance", "loss_plateau_early", "overtraining"))
    if at_chance(run) is not None:
        lo_r, hi_r = update_ratio_range(run)
        if np.isfinite(hi_r) and UPDATE_RATIO_TINY <= hi_r <= UPDATE_RATIO_HUGE:
            labels.support(2, "at chance while the weights move at a normal rate")
        if dead_relu_share(run) > DEAD_SHARE:
            labels.oppose(2, "dead ReLUs explain a run that learns nothing")
        steps = total_steps(run)
        if steps is not None and steps < FEW_STEPS:
            labels.oppose(2, f"only {steps} optimizer steps: too few to learn anything")
    labels.recommendations += [Recommendation(CHECK_LABELS, undo_fault(run)), Recommendation(CHECK_LOOP)]
    out.append(labels)
    return out


def _label_noise_candidate(run: Run, fired: dict) -> Candidate:
    """Wrong labels: the model contradicts them epoch after epoch while it learns the rest (rules/labels.py)."""
    c = Candidate("label_noise", "a share of the training labels is wrong",
                  explains=("label_noise_suspected", "val_above_train", "loss_plateau_early", "loss_oscillating",
                            "overfitting", "overtraining"))
    f = fired.get("label_noise_suspected")
    if f is not None:
        lo, hi = f.evidence["interval"]
        c.support(3, f"{f.evidence['share']:.0%} of the labels (95 % interval {lo:.0%} to {hi:.0%}) contradicted by "
                     "the model epoch after epoch before memorization")
        if "overfitting" in fired or "overtraining" in fired:
            c.support(1, "held-out results worsened as the training labels were memorized")
        c.recommendations.extend(f.recommendations)
    return c


def _model_candidates(run: Run, fired: dict) -> list[Candidate]:
    dead = Candidate("dead_relu", "dead ReLUs pass no gradient", explains=("dead_relu", "vanishing_gradients",
                                                                          "accuracy_at_chance", "loss_plateau_early"))
    share = dead_relu_share(run)
    if share > DEAD_SHARE:
        if updates_huge(run):
            dead.support(1, f"{share:.0%} of a layer's ReLUs dead, after huge updates (the LR killed them)")
        else:
            dead.support(3, f"{share:.0%} of a layer's ReLUs dead without large updates")
        dead.recommendations.append(dead_relu_fix(run))
    mism = Candidate("train_eval_mismatch", "what the model learns in training mode does not carry over to evaluation",
                     explains=("val_far_below_train", "accuracy_at_chance", "overfitting", "loss_oscillating"))
    ev = mismatch(run)
    if ev is not None:
        mism.support(2, "validation far below training from the first epochs" if ev["val_far_below_train"]
                     else "val loss above ln C while the train loss fell")
        eff, most = effective_lr(run), usual_effective_lr(run)[1]
        if eff is not None and most is not None and eff > most:
            mism.oppose(1, "the effective LR is high: large steps explain it better")
        mism.recommendations += [Recommendation(CHECK_EVAL, undo_fault(run))]
    return [dead, mism]


def _augmentation_fit_limit(run: Run) -> Optional[dict]:
    """progress.fit_limit for a run that used augmentation: what the augmented batches' fit says, else None."""
    return fit_limit(run) if run.cfg(AUGMENTATION_NAME) not in (None, "none") else None


def _regularization_candidates(run: Run, fired: dict) -> list[Candidate]:
    out = []
    # Flatter targets also make a weaker gradient between the classes: the loss falls slower (undertrained).
    smooth = Candidate("label_smoothing_too_strong", "label smoothing flattens the targets toward uniform",
                       explains=("loss_plateau_early", "over_regularization", "accuracy_at_chance", "undertrained",
                                 "far_from_converged"))
    e = _num(run, REGULARIZATION_LABEL_SMOOTHING)
    if e is not None and e > STRONG_SMOOTHING:
        smooth.support(2 if e >= 0.5 else 1, f"label_smoothing={e:g} (recipes use {USUAL_SMOOTHING:g})")
        smooth.recommendations.append(Recommendation("lower the label smoothing",
                                                     [override(REGULARIZATION_LABEL_SMOOTHING, USUAL_SMOOTHING)]))
    out.append(smooth)
    aug = Candidate("augmentation_too_strong", "augmentation distorts the training images beyond recognition",
                    explains=("loss_plateau_early", "over_regularization", "val_above_train"))
    m = _num(run, AUGMENTATION_MAGNITUDE)
    ops = _num(run, AUGMENTATION_NUM_OPS)
    if run.cfg(AUGMENTATION_NAME) == "randaugment" and ((m or 0) >= STRONG_MAGNITUDE or (ops or 0) >= 4):
        aug.support(1, f"RandAugment magnitude {m:g}, {ops:g} ops")
        tr, va = finite(run.train["accuracy"]), finite(run.val["accuracy"])
        if len(tr) and len(va) and tr[-1] < va[-1]:
            aug.support(1, "training accuracy below validation accuracy: the training images are harder")
        aug.recommendations.append(Recommendation("use milder augmentation", ["augmentation=basic"]))
    limit = _augmentation_fit_limit(run)
    if limit is not None:
        aug.support(3 if limit["gap"] >= FIT_GAP_WIDE else 2,
                    f"the augmented training batches fit no better than validation at the end (train accuracy "
                    f"{limit['train_accuracy']:.3f}, val {limit['val_accuracy']:.3f})")
        # Measured, not read from the config: this data does not survive this augmentation, and a milder one may
        # not either (on digits a flip alone costs 6 points). Training once without it settles it in one rerun.
        aug.recommendations.insert(0, Recommendation(
            "train without augmentation: if validation rises, the augmentation was the limit (then add milder "
            "transforms back one at a time)", ["augmentation=none"]))
    out.append(aug)
    if "over_regularization" in fired and "measured" not in fired["over_regularization"].evidence:
        combo = Candidate("over_regularization", "several strong regularizers together", explains=("over_regularization",
                                                                                                   "loss_plateau_early"))
        combo.support(2, "over_regularization fired")
        combo.recommendations.extend(fired["over_regularization"].recommendations)
        out.append(combo)
    few = Candidate("too_few_steps", "too few optimizer steps: the batch is so large that the run takes only a few",
                    explains=("loss_plateau_early", "accuracy_at_chance"))
    steps = total_steps(run)
    bs = _num(run, DATA_BATCH_SIZE)
    per_epoch = finite(run.train["num_batches"])
    if steps is not None and steps < FEW_STEPS and bs:
        few.support(3, f"{steps} optimizer steps in the whole run (< {FEW_STEPS})")
        if len(per_epoch) and float(np.median(per_epoch)) >= STEPS_PER_EPOCH_SMALL_BATCH:
            few.oppose(2, f"{float(np.median(per_epoch)):.0f} steps an epoch: the batch is not large, the epochs are few")
        # Enough steps: 4x FEW_STEPS over the run, the batch a power of two.
        samples = finite(run.train["num_samples"])
        epochs = run.planned_epochs or len(run.train)
        target = float(np.median(samples)) * epochs / (4 * FEW_STEPS) if len(samples) else bs / 16
        batch = int(2 ** math.floor(math.log2(max(8.0, min(target, bs / 2)))))
        few.recommendations.append(Recommendation("a smaller batch takes more steps per epoch",
                                                  [override(DATA_BATCH_SIZE, batch)]))
    out.append(few)
    return out


def _generalization_candidates(run: Run, fired: dict) -> list[Candidate]:
    over = Candidate("overfitting", "the model overfits the training set", explains=("overfitting", "overtraining"))
    if "overfitting" in fired:
        over.support(2, "val loss rising from its minimum with a real train-val gap")
        over.recommendations.extend(fired["overfitting"].recommendations)
    if "overtraining" in fired and fired["overtraining"].severity != "info":
        over.support(1, "val accuracy fell from its best")
        if not over.recommendations:
            over.recommendations.extend(fired["overtraining"].recommendations)
    return [over]


def _normal_step(run: Run) -> Optional[bool]:
    """The effective LR (shortened by a clip that cut every step) within the optimizer's usual range (1/LR_LOW_FACTOR
    of its usual LR up to its usual maximum); None when the optimizer or LR is not known."""
    eff, (usual, most) = effective_lr(run), usual_effective_lr(run)
    if eff is None or usual is None:
        return None
    eff *= clipped_step_share(run)  # a clip that cut every step shortened it
    return usual / LR_LOW_FACTOR <= eff <= most


def _epochs_fix(run: Run, p: dict) -> list[Recommendation]:
    """trainer.epochs enough for the rest of the way: at the run's average pace the remaining share r of the way takes
    N r / (1 - r) more epochs; twice that total, since an approach to the floor slows as it nears it."""
    n = _num(run, TRAINER_EPOCHS)
    r = p.get("remaining")
    if n is None or n < 1 or n >= 100_000 or r is None or not 0 <= r < 1:
        return []
    n = int(n)
    target = int(min(max(math.ceil(2 * n / (1 - r)), 2 * n), 100_000))
    return [Recommendation(f"train longer: {n} epochs left {r:.0%} of the way to the loss floor ahead",
                           [override(TRAINER_EPOCHS, target)])]


DECAYING_SHARE = 0.5  # an LR that ended at or below half its peak was decayed by the schedule


def _falling_in_time(run: Run, p: dict) -> bool:
    """The LR decayed (ended at or below DECAYING_SHARE x its peak) and the train loss's tail fell significantly
    against training time (progress's projection fits it)."""
    lr = finite(run.train["learning_rate"])
    fit = (p.get("projection") or {}).get("train_loss") or {}
    return bool(len(lr) >= 2 and lr.max() > 0 and lr[-1] <= DECAYING_SHARE * lr.max()
                and fit.get("projected") is not None)


def _progress_candidates(run: Run, fired: dict) -> list[Candidate]:
    """Causes of a run that ended far from converged with a normal step: it stopped too soon, or the model is too small."""
    p = progress(run)
    verdict, normal = p["verdict"], _normal_step(run)
    lo_r, hi_r = update_ratio_range(run)
    short = Candidate("too_few_epochs", "too few epochs: the loss was still falling when the run ended",
                      explains=("undertrained", "not_learning", "far_from_converged", "loss_plateau_early",
                                "accuracy_at_chance"))
    small = Candidate("too_little_capacity", "the model is too small for the task: normal steps, yet the train loss "
                      "stays high and the training set is not fitted",
                      explains=("far_from_converged", "undertrained", "not_learning", "loss_plateau_early"))
    if verdict == "still improving" and not (p.get("steep") or p.get("val_rising")):
        short.support(1, "the loss was still falling, slowly, at the end")
    elif verdict == "still improving":
        share, left = p["slope"]["share_of_way_per_epoch"], p["remaining"]
        short.support(2, "the loss was still falling steeply at the end" + (
            f" ({share:.0%} of the way per epoch, {left:.0%} of it ahead)" if share is not None and left is not None
            else ""))
    elif verdict == "stalled" and _falling_in_time(run, p):
        # A decaying schedule flattens the loss per epoch as it lowers the LR; against the training time it got
        # (LR x steps) the loss still fell: the run ended with the schedule, not at its floor.
        per = p["projection"]["train_loss"]["per_doubling"]
        short.support(1, f"the loss still fell {-per:.3g} per doubling of the training time (LR x steps) as the "
                         "decaying LR flattened it per epoch")
    elif verdict in ("stalled", "converged"):
        short.oppose(1, "the loss no longer fell steeply at the end")
    limit = _augmentation_fit_limit(run)
    if limit is not None:
        short.oppose(1, f"the augmented batches fit no better than validation (train accuracy {limit['train_accuracy']:.3f}, "
                        f"val {limit['val_accuracy']:.3f}): the augmentation holds the loss up, not only the epochs")
    steps, per_epoch = total_steps(run), finite(run.train["num_batches"])
    if steps is not None and steps < FEW_STEPS and len(per_epoch) and np.median(per_epoch) >= STEPS_PER_EPOCH_SMALL_BATCH:
        short.support(2, f"only {steps} optimizer steps, {float(np.median(per_epoch)):.0f} an epoch: few epochs")
    if normal:
        short.support(1, f"with a normal step (effective LR {effective_lr(run):.3g})")
        if verdict in ("stalled", "still improving"):
            small.support(1, f"a normal step (effective LR {effective_lr(run):.3g}) left the loss far from its floor")
    elif normal is False and effective_lr(run) < usual_effective_lr(run)[0]:
        short.oppose(2, "the LR is low: more epochs at it would crawl")
        small.oppose(1, "the LR is low: a small step explains the slow fall better")
    if np.isfinite(hi_r) and UPDATE_RATIO_SMALL <= hi_r <= UPDATE_RATIO_HUGE and verdict != "not learning":
        small.support(1, f"updates reach {hi_r:.2g} of the weights: the weights move normally")
    share = schedule_time_share(run)
    if share is not None and share < SCHEDULE_TIME_SHARE:
        small.oppose(2, f"the second half of the run got {share:.0%} of the training time: the schedule, not the model, "
                        "stopped the loss")
        short.oppose(1, "the schedule took the LR away: more epochs of it add little training")
    if at_chance(run) is not None:  # even a tiny model learns learnable labels above chance (width 1: 0.3 on digits)
        small.oppose(2, "at chance: a small model still learns something")
    params, images = (run.info or {}).get("num_parameters"), (run.info or {}).get("train_size")
    if isinstance(params, int) and isinstance(images, int) and params > 0 and images > 0:
        per_image = params / images
        if per_image < PARAMS_PER_IMAGE_FIT:
            small.support(2 if per_image < 1 else 1, f"{params} parameters for {images} training images "
                                                     f"({per_image:.2g} each; fitting any labels takes ~2)")
        else:
            small.oppose(2, f"{params} parameters, {per_image:.0f} per training image: enough to fit them")
    train_acc = finite(run.train["accuracy"])
    if len(train_acc) and verdict != "converged":
        if train_acc[-1] < CAPACITY_TRAIN_ACC and verdict in ("stalled", "still improving"):
            small.support(1, f"train accuracy {train_acc[-1]:.2f}: the model does not fit its own training set")
        elif train_acc[-1] >= FITS_TRAIN_ACC:
            small.oppose(3, f"train accuracy {train_acc[-1]:.2f}: it fits its training set")
    short.recommendations += _epochs_fix(run, p)
    bs = _num(run, DATA_BATCH_SIZE)
    if bs and bs >= 16:
        short.recommendations.append(Recommendation("or a smaller batch: more steps per epoch",
                                                    [override(DATA_BATCH_SIZE, int(bs // 2))]))
    width = run.cfg(MODEL_WIDTH)
    if isinstance(width, int) and not isinstance(width, bool) and width < 1024:
        small.recommendations.append(Recommendation("a wider model (4x the channels, about 16x the parameters)",
                                                    [override(MODEL_WIDTH, min(4 * width, 1024))]))
    if run.cfg(MODEL_NAME) == "small_cnn":
        small.recommendations.append(Recommendation("or a deeper one", ["model=resnet18"]))
    return [short, small]


def candidates(run: Run, findings: list[Finding]) -> list[Candidate]:
    fired = _fired(findings)
    cands = [*_lr_candidates(run, fired), _weight_decay_candidate(run, fired), *_clip_candidates(run, fired),
             _schedule_candidate(run, fired), *_data_candidates(run, fired), _label_noise_candidate(run, fired),
             *_model_candidates(run, fired),
             *_regularization_candidates(run, fired), *_generalization_candidates(run, fired),
             *_progress_candidates(run, fired)]
    order = {c.id: i for i, c in enumerate(cands)}
    # Equal evidence: the cause of the gravest finding comes first (one that explains only an info finding does not
    # outrank one that explains a warning), then the fixed order.
    return sorted(cands, key=lambda c: (-c.score, -_gravest(c, fired), order[c.id]))


_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def _gravest(c: Candidate, fired: dict[str, Finding]) -> int:
    """The rank of the gravest fired finding the cause explains; -1 when it explains none."""
    return max((_SEVERITY_RANK.get(fired[i].severity, 0) for i in c.explains if i in fired), default=-1)


def differential(run: Run, findings: list[Finding]) -> Optional[dict]:
    """The `cause` object of a report: the primary cause with its evidence, symptoms and fix, then the ranked
    alternatives; None for a run without a warning or critical finding."""
    if not any(f.severity in ("warning", "critical") for f in findings):
        return None
    ranked = [c for c in candidates(run, findings) if c.score > 0 and c.recommendations]
    primary = ranked[0] if ranked and ranked[0].score >= MIN_SCORE else None
    ids = [f.id for f in findings]
    symptoms = [i for i in ids if primary is not None and i in primary.explains]
    return {"primary": primary.as_dict() if primary else None,
            "symptoms": symptoms,
            "other_findings": [i for i in ids if i not in symptoms],
            "alternatives": [c.as_dict() for c in ranked[1:6] if primary is not None] or
                            [c.as_dict() for c in ranked[:5] if primary is None]}


# The rules whose findings are evidence for a cause and that take no advice from this module (so a rule that
# does, like accuracy_at_chance, can ask for the cause without recursion).
EVIDENCE_RULES = ("nonfinite_loss", "loss_diverging", "loss_oscillating", "exploding_gradients", "amp_scaled_gradients",
                  "lr_decayed_to_nothing", "lr_reduced_early", "lr_cut_premature", "label_out_of_range",
                  "train_val_overlap", "transforms_not_separated", "input_not_normalized", "class_imbalance",
                  *NEGLECTED_CLASSES,
                  "over_regularization", "overfitting", "overtraining", "val_far_below_train",
                  "label_noise_suspected")


def primary(run: Run, findings: Optional[list[Finding]] = None) -> Optional[Candidate]:
    """The highest-scoring cause with a fix. Without findings, the evidence rules run first (once per run)."""
    if findings is None:
        if "evidence_findings" not in run.memo:
            # The evidence rules are registered by the time any rule asks (rules/__init__ imports them all).
            run.memo["evidence_findings"] = run_rules(run, ids=list(EVIDENCE_RULES))
        findings = run.memo["evidence_findings"]
    ranked = [c for c in candidates(run, findings) if c.score >= MIN_SCORE and c.recommendations]
    return ranked[0] if ranked else None


def contradicts(run: Run, fix: list[str], other: list[str]) -> bool:
    """True when `other` moves a key the primary fix also moves, in the opposite direction (or sets a group
    the fix sets to another option)."""
    def parse(ov):
        k, _, v = ov.partition("=")
        try:
            return k, float(v)
        except ValueError:
            return k, v
    mine = dict(parse(o) for o in fix)
    for o in other:
        k, v = parse(o)
        if k not in mine:
            continue
        cur = _num(run, k)
        a = mine[k]
        if isinstance(a, float) and isinstance(v, float) and cur is not None:
            if (a - cur) * (v - cur) < 0:
                return True
        elif a != v and not (isinstance(a, float) or isinstance(v, float)):
            return True
    return False


def consistent(run: Run, findings: list[Finding], cause: Optional[dict]) -> list[Finding]:
    """Findings with every recommendation that contradicts the primary cause's fix removed."""
    if not cause or not cause.get("primary"):
        return findings
    fix = [o for r in cause["primary"]["recommendations"] for o in r["overrides"]]
    for f in findings:
        f.recommendations = [r for r in f.recommendations if not contradicts(run, fix, r.overrides)]
    return findings


# ── what rules that see a failed run (accuracy_at_chance, loss_plateau_early ...) say about its cause ──

def cause(run: Run) -> str:
    """The likeliest reason a run learned nothing, from the differential diagnosis on the run's own facts."""
    best = primary(run)
    return best.id if best is not None else "data"


STILL_IMPROVING = "none stands out: the loss was still falling when the run ended (more epochs or a larger step)"
STALLED = "none stands out in the run's own facts: it learned (val accuracy twice chance or more), then stalled"


def _learned(run: Run) -> bool:
    """Val accuracy reached CHANCE_CEILING x chance at some epoch: the model learned something (facts.at_chance's
    bound: never "at chance")."""
    p0, acc = chance_accuracy(run), finite(run.val["accuracy"])
    return p0 is not None and len(acc) > 0 and float(acc.max()) >= CHANCE_CEILING * p0


def cause_text(run: Run) -> str:
    best = primary(run)
    if best is not None:
        return best.text
    verdict = progress(run)["verdict"]
    if verdict == "still improving":  # it learns: neither its labels nor its loop are in doubt
        return STILL_IMPROVING
    if verdict == "stalled" and _learned(run):
        return STALLED  # "the labels cannot be learned" would be wrong
    # No cause scores: say what the run shows, never a fact it did not record (an imported log has no update ratios).
    hi_r = update_ratio_range(run)[1]
    if np.isfinite(hi_r) and UPDATE_RATIO_TINY <= hi_r <= UPDATE_RATIO_HUGE:
        return "the weights move normally, so the labels or the data cannot be learned"
    return "none stands out in what the run recorded (no weight updates to tell the LR from the data or the model)"


def dead_relu_fix(run: Run) -> Recommendation:
    """ReLUs dead without large updates were dead from the start: initialization, not the LR."""
    return Recommendation("the ReLUs are dead, so no gradient reaches the layers below and the LR cannot help: "
                          "fix their initialization (biases, BatchNorm shift) or the input scale", undo_fault(run))


def fixes(run: Run) -> list[Recommendation]:
    """The recommendations of the differential diagnosis, most likely fix first; the label and loop checks only
    for a run that was not still improving and (with a cause) did not learn."""
    best = primary(run)
    improving = progress(run)["verdict"] == "still improving"
    if improving or (best is not None and _learned(run)):  # it learned: its loop (and, improving, its labels) are sound
        return list(best.recommendations) if best is not None else []
    recs = list(best.recommendations) if best is not None else [Recommendation(CHECK_LABELS, undo_fault(run))]
    return recs + [Recommendation(CHECK_LOOP)]


__all__ = ["Candidate", "candidates", "differential", "primary", "consistent", "cause", "cause_text", "fixes",
           "dead_relu_fix", "mismatch", "effective_lr", "fmt"]
