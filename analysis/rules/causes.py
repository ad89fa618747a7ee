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

from ..facts import (DEAD_SHARE, UPDATE_RATIO_HUGE, UPDATE_RATIO_TINY, at_chance, chance_loss, dead_relu_share,
                     finite, update_ratio_range, updates_huge, updates_tiny)
from ..findings import Finding, Recommendation
from ..overrides import MAX_LR, USUAL_LR, fmt, lower_lr, override, raise_lr, undo_fault
from rundir.read import Run
from rundir.config_keys import (
    AUGMENTATION_MAGNITUDE, AUGMENTATION_NAME, AUGMENTATION_NUM_OPS, DATA_BATCH_SIZE, OPTIMIZER_LR,
    OPTIMIZER_MOMENTUM, OPTIMIZER_NAME, REGULARIZATION_GRAD_CLIP, REGULARIZATION_LABEL_SMOOTHING,
    REGULARIZATION_WEIGHT_DECAY)
from ..schedule import decayed_to_nothing, find_cuts

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
CLIP_FAR_BELOW = 10.0  # the median pre-clip norm over 10x the clip threshold: clipping sets the step size
MISMATCH_GAP_Z = 4.0  # val accuracy below train accuracy by > 4 SE of the gap, from the first epochs
MISMATCH_EPOCHS = 2  # judged on the first epochs after the first (BatchNorm statistics settle in one)
MISMATCH_KEPT = 0.5  # validation keeps less than half of training accuracy's rise above chance
LOSS_FELL = 0.5  # a train loss that fell by over half its distance to the floor was moved by the LR
LOSS_STUCK = 0.1  # ... and one that fell by under a tenth of it barely moved


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
        m = USUAL_MOMENTUM if m is None else m  # not recorded: the schema default, not 0
        return lr / max(1 - m, 1e-6)
    return lr


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
    ta, va = run.train["accuracy"], run.val["accuracy"]
    te, ve = run.train.epochs, run.val.epochs
    common = np.intersect1d(te, ve)
    if len(common) < 3:
        return None
    t = ta[np.isin(te, common)]
    v = va[np.isin(ve, common)]
    ok = np.isfinite(t) & np.isfinite(v)
    if ok.sum() < 3:
        return None
    t, v = t[ok], v[ok]
    gap = t - v
    from ..facts import val_size
    from ..stats import binomial_se, noise
    n = val_size(run)
    # Measurement noise: binomial when the val size is known (a swinging val curve is the symptom, not noise),
    # else the curve's own epoch-to-epoch noise.
    se = max(binomial_se(float(np.median(v)), n) if n else noise(v), 1e-3)
    early = gap[1:1 + MISMATCH_EPOCHS] if len(gap) > MISMATCH_EPOCHS else gap
    late_loss = finite(run.val["loss"])
    tr_loss = finite(run.train["loss"])
    l0 = chance_loss(run)
    loss_mismatch = (l0 is not None and len(late_loss) >= 2 and len(tr_loss) >= 2 and float(np.median(late_loss[-3:])) > l0
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


def _lr_candidates(run: Run, fired: dict) -> list[Candidate]:
    high = Candidate("lr_too_high", "the LR (the effective step) is too high",
                     explains=("nonfinite_loss", "loss_diverging", "loss_oscillating", "exploding_gradients",
                               "accuracy_at_chance", "val_far_below_train", "lr_out_of_range", "dead_relu",
                               "loss_plateau_early", "overtraining"))
    low = Candidate("lr_too_low", "the LR is too low to move the weights",
                    explains=("accuracy_at_chance", "loss_plateau_early", "vanishing_gradients", "weights_not_updating",
                              "lr_out_of_range"))
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
        elif eff < usual / 100:
            low.support(1, f"effective LR {eff:.3g} below 1/100 of the usual {usual:.3g}")
            high.oppose(2, f"effective LR {eff:.3g} is small")
        else:
            high.oppose(1, f"effective LR {eff:.3g} inside the usual range (up to {most:.3g})")
    loss = finite(run.train["loss"])
    if len(loss) >= 3 and loss[0] > 0:
        from ..facts import loss_floor
        progress = (loss[0] - loss[-1]) / max(loss[0] - loss_floor(run), 1e-12)
        if progress > LOSS_FELL:
            low.oppose(2, f"the train loss fell {progress:.0%} of the way to its floor")
        elif progress < LOSS_STUCK and not (np.nansum(run.train["nonfinite_steps"]) > 0):
            low.support(1, f"the train loss fell only {max(progress, 0):.0%} of the way to its floor")
    if updates_tiny(run):
        low.support(3, f"every update below {UPDATE_RATIO_TINY:g} of the weights")
        high.oppose(3, "updates are tiny")
    elif np.isfinite(hi_r) and hi_r > 1e-3:
        low.oppose(1, f"updates reach {hi_r:.2g} of the weights")
    for fid, pts in (("loss_diverging", 2), ("loss_oscillating", 1), ("exploding_gradients", 1)):
        if fid in fired:
            high.support(pts, f"{fid} fired")
    if "val_far_below_train" in fired and eff is not None and most is not None and eff > most:
        high.support(1, "evaluation far below training with a large step (BatchNorm statistics cannot keep up)")
    # The fix: an SGD run whose LR is usual but whose momentum is near 1 takes huge steps through the momentum.
    m = _num(run, OPTIMIZER_MOMENTUM)
    lr = _num(run, OPTIMIZER_LR)
    name = run.cfg(OPTIMIZER_NAME)
    if name == "sgd" and m is not None and m > HIGH_MOMENTUM and lr is not None and lr <= MAX_LR["sgd"]:
        high.recommendations.append(Recommendation(
            f"lower the momentum: lr / (1 - momentum) = {eff:.3g} is {eff / usual:.0f}x the usual effective step",
            [override(OPTIMIZER_MOMENTUM, USUAL_MOMENTUM)]))
    high.recommendations.append(Recommendation(
        "lower the learning rate" + (f" (effective step {eff:.3g}, usual up to {most:.3g})" if eff and most else ""),
        lower_lr(run, 10)))
    if raise_lr(run, 10):
        low.recommendations.append(Recommendation("raise the learning rate: the steps are too small to move the weights",
                                                  raise_lr(run, 10)))
    return [high, low]


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
    if clip and len(frac) and float(np.mean(frac)) >= 0.9:
        median = float(np.median(g)) if len(g) else math.nan
        if median > CLIP_FAR_BELOW * clip:
            tight.support(3, f"clipped on {np.mean(frac):.0%} of steps with the median norm {median:.3g} "
                             f"{median / clip:.0f}x the threshold {clip:g}")
        else:
            tight.support(1, f"clipped on {np.mean(frac):.0%} of steps")
        tight.recommendations.append(Recommendation("raise the clip threshold to the typical norm, so it only cuts spikes",
                                                    [override(REGULARIZATION_GRAD_CLIP, float(f"{2 * median:.2g}"))]
                                                    if math.isfinite(median) else ["regularization.grad_clip=null"]))
        tight.recommendations.append(Recommendation("or turn clipping off", ["regularization.grad_clip=null"]))
    return [tight, amp]


def _schedule_candidate(run: Run, fired: dict) -> Candidate:
    c = Candidate("lr_schedule", "the LR schedule cut the LR too early or decayed it to nothing",
                  explains=("lr_decayed_to_nothing", "lr_reduced_early", "lr_cut_premature", "loss_plateau_early",
                            "weights_not_updating", "accuracy_at_chance", "vanishing_gradients"))
    ev = decayed_to_nothing(run)
    if ev is not None and "lr_decayed_to_nothing" in fired:
        c.support(3, f"the LR fell below {ev['tiny_below']:.3g} for the last {ev['epochs_at_tiny_lr']} epochs")
        c.recommendations.extend(fired["lr_decayed_to_nothing"].recommendations)
    for fid in ("lr_reduced_early", "lr_cut_premature"):
        if fid in fired:
            c.support(1, f"{fid} fired")
            if not c.recommendations:
                c.recommendations.extend(fired[fid].recommendations)
    cuts = find_cuts(run)
    if cuts and all(x.bought_loss is not None and x.bought_loss < 0 for x in cuts[:1]) and ev is None:
        c.oppose(1, "the first cut lowered the val loss")
    return c


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
        eff, (_usual, most) = effective_lr(run), usual_effective_lr(run)
        if eff is not None and most is not None and eff > most:
            mism.oppose(1, "the effective LR is high: large steps explain it better")
        mism.recommendations += [Recommendation(CHECK_EVAL, undo_fault(run))]
    return [dead, mism]


def _regularization_candidates(run: Run, fired: dict) -> list[Candidate]:
    out = []
    smooth = Candidate("label_smoothing_too_strong", "label smoothing flattens the targets toward uniform",
                       explains=("loss_plateau_early", "over_regularization", "accuracy_at_chance"))
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
    out.append(aug)
    if "over_regularization" in fired:
        combo = Candidate("over_regularization", "several strong regularizers together", explains=("over_regularization",
                                                                                                   "loss_plateau_early"))
        combo.support(2, "over_regularization fired")
        combo.recommendations.extend(fired["over_regularization"].recommendations)
        out.append(combo)
    few = Candidate("too_few_steps", "too few optimizer steps: the batch is so large that the run takes only a few",
                    explains=("loss_plateau_early", "accuracy_at_chance"))
    steps = total_steps(run)
    bs = _num(run, DATA_BATCH_SIZE)
    if steps is not None and steps < FEW_STEPS and bs:
        few.support(3, f"{steps} optimizer steps in the whole run (< {FEW_STEPS})")
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


def candidates(run: Run, findings: list[Finding]) -> list[Candidate]:
    fired = _fired(findings)
    cands = [*_lr_candidates(run, fired), _weight_decay_candidate(run, fired), *_clip_candidates(run, fired),
             _schedule_candidate(run, fired), *_data_candidates(run, fired), _label_noise_candidate(run, fired),
             *_model_candidates(run, fired),
             *_regularization_candidates(run, fired), *_generalization_candidates(run, fired)]
    order = {c.id: i for i, c in enumerate(cands)}
    return sorted(cands, key=lambda c: (-c.score, order[c.id]))


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
                  "over_regularization", "overfitting", "overtraining", "val_far_below_train", "label_noise_suspected")


def primary(run: Run, findings: Optional[list[Finding]] = None) -> Optional[Candidate]:
    """The highest-scoring cause with a fix. Without findings, the evidence rules run first (once per run)."""
    if findings is None:
        if "evidence_findings" not in run.memo:
            from . import diagnose
            run.memo["evidence_findings"] = diagnose(run, ids=list(EVIDENCE_RULES))
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


def cause_text(run: Run) -> str:
    best = primary(run)
    return best.text if best is not None else "the weights move normally, so the labels or the data cannot be learned"


def dead_relu_fix(run: Run) -> Recommendation:
    """ReLUs dead without large updates were dead from the start: initialization, not the LR."""
    return Recommendation("the ReLUs are dead, so no gradient reaches the layers below and the LR cannot help: "
                          "fix their initialization (biases, BatchNorm shift) or the input scale", undo_fault(run))


def fixes(run: Run) -> list[Recommendation]:
    """The recommendations for a run that learned nothing, most likely fix first."""
    best = primary(run)
    recs = list(best.recommendations) if best is not None else [Recommendation(CHECK_LABELS, undo_fault(run))]
    return recs + [Recommendation(CHECK_LOOP)]


__all__ = ["Candidate", "candidates", "differential", "primary", "consistent", "cause", "cause_text", "fixes",
           "dead_relu_fix", "mismatch", "effective_lr", "fmt"]
