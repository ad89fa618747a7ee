"""Rules on the loss and accuracy curves: non-finite, diverging, oscillating, at chance, plateaued early."""

from __future__ import annotations

import math

import numpy as np

from rundir.config_keys import DATA_BATCH_SIZE, REGULARIZATION_GRAD_CLIP, TRAINER_AMP
from ..facts import CHANCE_LOSS_SHARE, CHANCE_MIN_EPOCHS, accuracy_se, at_chance, finite
from ..findings import Finding, Recommendation
from ..overrides import (lower_augmentation, lower_label_smoothing, lower_lr, lower_weight_decay, override, undo_fault,
                         uses)
from rundir.read import Run
from ..schedule import find_cuts, is_piecewise, relax_cuts
from ..stats import first_flat_window, median, oscillations, trend, window_size
from ..progress import progress
from . import causes
from .catalog import rule

DIVERGE_FACTOR = 1.5  # ours: the last loss above 1.5x the best, with a significantly rising trend
OSC_AMPLITUDE = 0.03  # AUTOTRAINER 'unstable': swings of val accuracy >= 0.03 ...
OSC_SHARE = 0.2  # ... at least 0.2 x epochs of them
OSC_SETTLED_EPOCHS = 3  # a run whose last 3 epochs stay within one swing, at its best, has settled
PLATEAU_EARLY_SHARE = 0.5  # a plateau starting in the first half of the run is early
PLATEAU_GAP_SHARE = 0.25  # ... while over 25% of the initial distance to the loss floor remains
PLATEAU_MIN_WINDOW = 4  # epochs in the flat window, at least
# Judged on the whole curve: after the flat stretch the loss fell by under a tenth of what it fell before it or of the
# way it had left to its floor, whichever is larger (the rest of the run bought little). signdigits_resnet18_const,
# flat at 0.80 accuracy from epoch 10: 8%; a flat stretch followed by a real fall (a quarter of the level again) is
# no plateau.
PLATEAU_PERSIST_SHARE = 0.1


def _clip_rec(run: Run) -> list[Recommendation]:
    if run.cfg(REGULARIZATION_GRAD_CLIP) is None and run.config is not None:
        return [Recommendation("clip the global gradient norm", [override(REGULARIZATION_GRAD_CLIP, 1.0)])]
    return []


@rule("nonfinite_loss", section="Loss", title="NaN or Inf in the loss or gradients",
      source="SageMaker Debugger ExplodingTensor; Lightning check_finite; fairseq overflow policy",
      thresholds={"nonfinite_steps": "> 0", "loss": "null (non-finite) in any epoch"})
def nonfinite_loss(run: Run):
    tr = run.train
    steps = tr["nonfinite_steps"]
    scaler = tr.has("amp_scale")
    grad_steps = tr["nonfinite_grad_steps"] if not scaler else np.zeros(len(tr))  # fp16 overflow skips are normal
    null_loss = np.array([r.get("loss", 0.0) is None or (isinstance(r.get("loss"), float) and not math.isfinite(r["loss"]))
                          for r in tr.records], dtype=bool)
    bad = (np.nan_to_num(steps) > 0) | (np.nan_to_num(grad_steps) > 0) | null_loss
    if not bad.any():
        return None
    first = int(tr.epochs[np.argmax(bad)])
    recorded = np.isfinite(steps).any()
    total = int(np.nansum(steps)) if recorded else None  # not recorded: unknown, never 0
    recs = [Recommendation("lower the learning rate", lower_lr(run, 10))] + _clip_rec(run)
    if run.cfg(TRAINER_AMP) == "fp16":
        recs.append(Recommendation("bf16 has fp32's range: no overflow", [*undo_fault(run), "trainer.amp=bf16"]))
    return Finding("nonfinite_loss", "critical",
                   f"non-finite loss or gradients from epoch {first} ("
                   + (f"{total} steps with a non-finite loss)" if total is not None
                      else "the number of non-finite steps was not recorded)"),
                   evidence={"first_epoch": first, "nonfinite_steps": total,
                             "epochs": [int(e) for e in tr.epochs[bad]][:20]},
                   recommendations=recs, epoch=first)


@rule("loss_diverging", section="Loss", title="training loss rising well above its best",
      source="ours (noise-aware slope); wandb-primary 'divergence' (mean delta over the last window)",
      thresholds={"trend": "rising (Student t, 95%) over the last max(4, 20%) epochs", "last/best": f"> {DIVERGE_FACTOR}"})
def loss_diverging(run: Run):
    y, e = run.train.finite("loss")
    if len(y) < 4:
        return None
    w = window_size(len(y))
    tr = trend(y[-w:], e[-w:])
    best = float(y.min())
    if not (tr.rising() and y[-1] > DIVERGE_FACTOR * best and y[-1] > y[0] * 0.9):
        return None
    return Finding("loss_diverging", "critical",
                   f"training loss rising: {y[-1]:.4g} at epoch {int(e[-1])} against a best of {best:.4g} "
                   f"(epoch {int(e[np.argmin(y)])}); slope {tr.slope:+.3g}/epoch, t={tr.t:.1f}",
                   evidence={"trend": tr.as_dict(), "best_loss": best, "best_epoch": int(e[np.argmin(y)]),
                             "last_loss": float(y[-1]), "factor": DIVERGE_FACTOR},
                   recommendations=[Recommendation("lower the learning rate", lower_lr(run, 3))] + _clip_rec(run),
                   epoch=int(e[-1]))


@rule("loss_oscillating", section="Loss", title="validation accuracy swinging up and down to the end",
      source="AUTOTRAINER 'unstable' (amplitude 0.03, count >= 0.2 x epochs); noise floor and persistence ours",
      thresholds={"swing": f">= max({OSC_AMPLITUDE}, 2 sqrt(2) x the per-epoch noise: binomial SE at the val size, "
                           "recorded or inferred from the accuracies, else at an assumed 100 images)",
                  "swings": f">= max(3, {OSC_SHARE} x epochs), and >= 2 in the late part (the second half, or after "
                            "the last LR cut when later)",
                  "settled": f"not when the last {OSC_SETTLED_EPOCHS} epochs stay within one swing of each other and of "
                             "the best (a run that settles at its best)"})
def loss_oscillating(run: Run):
    acc = finite(run.val["accuracy"])
    if len(acc) < 5:
        return None
    # A swing between two epochs must beat the noise of two accuracies: the binomial SE at the recorded or inferred
    # val size, else at an assumed small val set (facts.accuracy_se), never the curve's own epoch-to-epoch noise,
    # which the oscillation itself inflates (it would set its own bar: two published oscillating runs were missed).
    sigma, noise_source = accuracy_se(run, median(acc))
    amplitude = max(OSC_AMPLITUDE, 2 * math.sqrt(2) * sigma)
    n = oscillations(acc, amplitude)
    late_start = len(acc) // 2
    cuts = [c.epoch for c in find_cuts(run)]
    if cuts:
        after_cut = int(np.searchsorted(run.val.epochs[np.isfinite(run.val["accuracy"])], cuts[-1]))
        late_start = max(late_start, after_cut)
    # Reversals whose turning point lies in the late part: counting from one epoch earlier gives the direction of
    # a swing already under way when the late part begins, so a crash right after its first epoch is a turn too.
    late = oscillations(acc[max(late_start - 1, 0):], amplitude)
    needed = max(3, int(math.ceil(OSC_SHARE * len(acc))))
    tail = acc[-OSC_SETTLED_EPOCHS:]
    settled = float(tail.max() - tail.min()) < amplitude and acc[-1] >= acc.max() - amplitude
    if n < needed or late < 2 or settled:  # early instability that settled is not what this rule reports
        return None
    recs = [Recommendation("lower the learning rate", lower_lr(run, 2))]
    bs = run.cfg(DATA_BATCH_SIZE)
    if isinstance(bs, int):
        recs.append(Recommendation("a larger batch averages out gradient noise", [override(DATA_BATCH_SIZE, bs * 2)]))
    if not uses(run, "scheduler", "cosine") and run.config is not None:
        recs.append(Recommendation("decay the LR smoothly", ["scheduler=cosine"]))
    return Finding("loss_oscillating", "warning",
                   f"validation accuracy reversed direction {n} times by >= {amplitude:.1%} over {len(acc)} epochs, "
                   f"{late} of them late in the run, ending {acc.max() - acc[-1]:.3f} below its best",
                   evidence={"reversals": n, "reversals_late": late, "needed": needed, "amplitude": amplitude,
                             "noise": sigma, "noise_source": noise_source,
                             "accuracy_std": float(np.std(acc))},
                   recommendations=recs, epoch=int(run.val.epochs[-1]))


@rule("accuracy_at_chance", section="Accuracy", title="accuracy near 1/C and loss near ln C",
      source="recipe ('loss around ln(100) for CIFAR-100'); chance from the run's C (ours)",
      thresholds={"val accuracy": "mean of the last max(4, 20%) epochs <= 1/C + max(2 SE, 0.02)",
                  "loss": f">= {CHANCE_LOSS_SHARE} ln C", "after": f"{CHANCE_MIN_EPOCHS} epochs"})
def accuracy_at_chance(run: Run):
    ev = at_chance(run)
    if ev is None:
        return None
    # The advice follows the run's own evidence (causes: the differential diagnosis): tiny updates, dead units,
    # huge steps, a clip far below the norm, decay that shrinks the weights, or labels that cannot be learned.
    why = causes.cause(run)
    return Finding(
        "accuracy_at_chance", "critical",
        f"stuck at chance: val accuracy {ev['recent_val_accuracy']:.3f} over the last epochs "
        f"(chance 1/{run.num_classes} = {ev['chance_accuracy']:.3f}), loss {ev['last_loss']:.3f} "
        f"(ln {run.num_classes} = {ev['chance_loss']:.3f}); likely cause: {causes.cause_text(run)}",
        evidence={**ev, "cause": why}, recommendations=causes.fixes(run), epoch=int(run.val.epochs[-1]))


@rule("loss_plateau_early", section="Loss", title="training loss stopped falling early, far above its floor",
      source="recipe ('loss improves for 3-6 epochs then stops'); noise-aware window (ours); floor from label smoothing",
      thresholds={"flat window": "slope not significantly < 0 and fall < 1% of the gap to the floor",
                  "early": f"starts in the first {PLATEAU_EARLY_SHARE:.0%} of the run",
                  "far": f"> {PLATEAU_GAP_SHARE:.0%} of the way to the floor remains, the way as the progress verdict "
                         "measures it (from ln C when the first epoch's loss is already below it; floor unknown: the "
                         "floor at label smoothing 0.1, the recipe's)",
                  "held": f"after the flat stretch the loss fell < {PLATEAU_PERSIST_SHARE:.0%} of its fall before it or of "
                          "the way left to the floor, whichever is larger"})
def loss_plateau_early(run: Run):
    y, e = run.train.finite("loss")
    if len(y) < 6:
        return None
    planned = run.planned_epochs or int(e[-1])
    # The floor as the progress verdict judges it: known from the smoothing, else assumed conservatively (never 0
    # for an unknown smoothing); no floor at all (class count unknown too), no claim of "far above" it.
    floor = progress(run).get("judged_floor")
    if floor is None:
        return None
    # 4 epochs at least: a 3-epoch window has one degree of freedom, and a noisy curve looks flat on it.
    width = window_size(planned, share=0.1, minimum=PLATEAU_MIN_WINDOW)
    start = first_flat_window(y, width, floor=floor)
    if start is None:
        return None
    plateau_epoch = int(e[start])
    level = float(np.mean(y[start:start + width]))
    # The way to the floor starts where the progress verdict starts it (ln C, an untrained model's loss, when the
    # first epoch's mean is already below it): a fine-tune that covered most of the way in its first epoch is
    # judged on the whole way, not on the last stretch of it.
    gap0 = float(progress(run).get("start") or y[0]) - floor
    if plateau_epoch > PLATEAU_EARLY_SHARE * planned or gap0 <= 0 or (level - floor) < PLATEAU_GAP_SHARE * gap0:
        return None
    # A plateau holds: the loss at the end is not far below the plateau level (a dip that the loss later
    # left behind was a noisy window, not a plateau).
    end_level = float(np.mean(y[-width:]))
    if level - end_level > PLATEAU_PERSIST_SHARE * max(float(y[0]) - level, level - floor):
        return None
    return Finding(
        "loss_plateau_early", "warning",
        f"training loss flat from epoch {plateau_epoch} at {level:.4g}, far above its floor {floor:.3g} "
        f"({progress(run)['judged_floor_source']}) "
        f"(started at {float(y[0]):.4g})",
        evidence={"plateau_start_epoch": plateau_epoch, "window": width, "level": level, "floor": floor,
                  "floor_source": progress(run)["judged_floor_source"], "end_level": end_level,
                  "initial_loss": float(y[0]), "trend": trend(y[start:start + width]).as_dict()},
        recommendations=_plateau_fixes(run, plateau_epoch + width - 1), epoch=plateau_epoch + width - 1)


def _plateau_fixes(run: Run, by_epoch: int) -> list[Recommendation]:
    """A run at chance never learned: regularization is not what holds it (causes.fixes). LR cuts before
    the plateau ended are the likelier brake than regularization: the scheduler fixes come first."""
    if at_chance(run) is not None:
        return causes.fixes(run)
    cut = any(c.epoch <= by_epoch for c in find_cuts(run))
    recs = relax_cuts(run) if cut else []
    for text, ov in (("less label smoothing", lower_label_smoothing(run)),
                     ("less weight decay", lower_weight_decay(run)),
                     ("weaker augmentation", lower_augmentation(run))):
        if ov:
            recs.append(Recommendation(text, ov))
    if is_piecewise(run) and not cut:
        recs.append(Recommendation("a schedule without early cuts", ["scheduler=cosine"]))
    recs.append(Recommendation("check the data pipeline (transforms separated, labels right)", []))
    return recs


