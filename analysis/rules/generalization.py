"""Rules on generalization: overfitting, overtraining, over-regularization, val above train, failed runs."""

from __future__ import annotations

import math

import numpy as np

from rundir.config_keys import (
    AUGMENTATION_MAGNITUDE, AUGMENTATION_NAME, OPTIMIZER_MOMENTUM, OPTIMIZER_NAME, REGULARIZATION_LABEL_SMOOTHING, REGULARIZATION_WEIGHT_DECAY, TRAINER_EPOCHS)
from ..facts import at_chance, common_epochs, finite, loss_floor, val_size
from ..progress import CONVERGED_REMAINING, FIT_LIMIT_GAP, FIT_LIMIT_GAP_IMPROVING, UNDERTRAINED_REMAINING, fit_limit
from ..findings import Finding, Recommendation
from ..overrides import lower_augmentation, lower_label_smoothing, lower_lr, lower_weight_decay, override, undo_fault
from rundir.read import Run
from ..stats import binomial_se, decline_from_best, median, noise, trend, window_size
from .catalog import rule
from .causes import CHECK_EVAL, HIGH_MOMENTUM, effective_lr, mismatch, usual_effective_lr

OVERTRAIN_MIN = 5  # ours: at least 5 epochs ...
OVERTRAIN_SHARE = 0.25  # ... and 25% of the run after the best validation epoch
VAL_ABOVE_TRAIN = 0.05  # UMLAUT OverconfidentValAccuracy: val - train > 0.05 ...
VAL_ABOVE_FROM = 3  # ... from epoch 3
STRONG = {"label_smoothing": 0.1, "weight_decay": 5e-4, "randaugment_magnitude": 10}  # seed's recipe values


def _best_epoch(run: Run) -> tuple[int, float] | None:
    acc = run.val["accuracy"]
    if not np.isfinite(acc).any():
        return None
    i = int(np.nanargmax(acc))
    return int(run.val.epochs[i]), float(acc[i])


GAP_Z = 3.0  # ours: a train-val accuracy gap counts when it exceeds 3 standard errors of the gap


def accuracy_noise(run: Run, acc: np.ndarray) -> float:
    """Per-epoch noise of a val-accuracy curve: the binomial SE at its median when the val size is known,
    or the curve's own epoch-to-epoch noise when that is larger or the size is unknown (never inf)."""
    acc = acc[np.isfinite(acc)]
    n = val_size(run)
    binom = binomial_se(median(acc), n) if n and len(acc) else 0.0
    return max(binom, noise(acc))


def _gap_noise(run: Run, train_acc: np.ndarray, val_acc: np.ndarray) -> float:
    """Standard error of one epoch's train - val accuracy gap: both accuracies' binomial noise, or the gap
    curve's own noise when larger (or when the sizes are unknown)."""
    n_val = val_size(run)
    n_train = finite(run.train["num_samples"])
    se = 0.0
    if n_val:
        se += binomial_se(float(val_acc[-1]), n_val) ** 2
    if len(n_train):
        se += binomial_se(float(train_acc[-1]), int(n_train[-1])) ** 2
    k = min(len(train_acc), len(val_acc))
    return max(math.sqrt(se), noise(train_acc[-k:] - val_acc[-k:]))


@rule("overfitting", section="Generalization", title="val loss rising from its minimum while train loss falls, with a gap",
      source="SageMaker Debugger Overfit; AUTOTRAINER (train - val accuracy gap); best-vs-last windows calibrated "
             "by simulation and gap against its noise (ours)",
      thresholds={"val loss": "last max(4, 20%)-epoch window above the best window by more than the 95% quantile of "
                              "that difference on i.i.d. noise (simulated at the run's epoch count)",
                  "train loss": "fell over the run and is not rising (Student t, 95%) over the last window",
                  "accuracy gap": f"train - val > {GAP_Z:g} standard errors of the gap"})
def overfitting(run: Run):
    y, e = run.val.finite("nll" if run.val.has("nll") else "loss")
    train_loss, train_epochs = run.train.finite("loss")
    if len(y) < 5 or len(train_loss) < 3:
        return None
    w = window_size(len(y))
    rise = decline_from_best(y, w, noise(y), higher_is_better=False)
    tr_train = trend(train_loss[-w:], train_epochs[-w:])
    train_acc, val_acc = finite(run.train["accuracy"]), finite(run.val["accuracy"])
    if rise is None or not (len(train_acc) and len(val_acc)):
        return None
    gap = float(np.mean(train_acc[-w:]) - np.mean(val_acc[-w:]))
    gap_se = _gap_noise(run, train_acc, val_acc)
    if not (rise.significant and not tr_train.rising() and train_loss[-1] < train_loss[0] and gap > GAP_Z * gap_se):
        return None
    recs = []
    wd = run.cfg(REGULARIZATION_WEIGHT_DECAY)
    if isinstance(wd, (int, float)):
        recs.append(Recommendation("more weight decay", [override(REGULARIZATION_WEIGHT_DECAY, max(wd * 2, 1e-4))]))
    if run.cfg(AUGMENTATION_NAME) == "none":
        recs.append(Recommendation("augment the training data", ["augmentation=basic"]))
    if run.cfg(REGULARIZATION_LABEL_SMOOTHING) == 0:
        recs.append(Recommendation("label smoothing", ["regularization.label_smoothing=0.1"]))
    stop = _stop_at_best(run)
    if stop is not None:
        recs.append(stop)
    if not recs:  # nothing in the config to turn, and the best epoch is the last: regularizing is what is left
        recs.append(Recommendation("regularize: more weight decay, data augmentation, dropout or label smoothing", []))
    min_epoch = int(e[rise.best_start + int(np.argmin(y[rise.best_start:rise.best_start + w]))])
    return Finding("overfitting", "warning",
                   f"overfitting: val loss rose from {float(y.min()):.4g} (epoch {min_epoch}) to a last-{w}-epoch mean of "
                   f"{rise.last_mean:.4g} (+{rise.drop:.3g}, noise threshold {rise.threshold:.2g}) while train loss fell "
                   f"to {float(train_loss[-1]):.4g}; train-val accuracy gap {gap:.2f} ({gap / gap_se:.0f} SE)",
                   evidence={"val_loss_rise": rise.as_dict(), "val_loss_min_epoch": min_epoch,
                             "train_loss_trend": tr_train.as_dict(), "accuracy_gap": gap, "gap_se": gap_se,
                             "gap_threshold_se": GAP_Z},
                   recommendations=recs, epoch=int(e[-1]))


def _stop_at_best(run: Run) -> Recommendation | None:
    """Stop a few epochs after the best val accuracy; None when that would not shorten the run (the best epoch
    is at its end: a "stop at epoch 9" for a 7-epoch run changes nothing)."""
    best = _best_epoch(run)
    margin = max(2, int(round(0.1 * best[0]))) if best is not None else 0
    if best is not None and best[0] + margin >= run.last_epoch:
        return None
    if best is None or run.config is None:
        return Recommendation("stop at the best validation epoch and use checkpoints/best.pt", [])
    return Recommendation("stop near the best validation epoch (checkpoints/best.pt holds its weights)",
                          [override(TRAINER_EPOCHS, best[0] + margin)])


@rule("overtraining", section="Generalization", title="many epochs trained after the best validation epoch",
      source="SageMaker Debugger Overtraining (patience 10 on val); compute-waste accounting and the "
             "simulation-calibrated best-vs-last window test ours",
      thresholds={"epochs after best": f">= max({OVERTRAIN_MIN}, {OVERTRAIN_SHARE:.0%} of the run) (info)",
                  "worse (warning)": "last max(4, 20%)-epoch window mean below the best window's by more than the 95% "
                                     "quantile of that difference on i.i.d. noise at the run's epoch count "
                                     "(at most 5% false alarms on a flat noisy curve)",
                  "learned": "not at chance (as accuracy_at_chance judges it)"})
def overtraining(run: Run):
    best = _best_epoch(run)
    # A run at chance never learned: its "best epoch" is noise, and fewer epochs would fix nothing.
    if best is None or at_chance(run) is not None:
        return None
    best_epoch, best_acc = best
    last = int(run.val.epochs[-1])
    after = last - best_epoch
    planned = run.planned_epochs or last
    acc = finite(run.val["accuracy"])
    decline = decline_from_best(acc, window_size(len(acc)), accuracy_noise(run, acc))
    worse = decline is not None and decline.significant
    if not worse and after < max(OVERTRAIN_MIN, OVERTRAIN_SHARE * planned):
        return None
    share = after / last
    return Finding(
        "overtraining", "warning" if worse else "info",
        f"best val accuracy {best_acc:.4f} at epoch {best_epoch}; {after} epochs ({share:.0%} of the run) were trained "
        f"after it" + (f"; the last {window_size(len(acc))} epochs average {decline.drop:.3f} below the best stretch "
                       f"(noise threshold {decline.threshold:.3f})" if worse
                       else " without beating it (the later epochs are within noise of the best)"),
        evidence={"best_epoch": best_epoch, "best_val_accuracy": best_acc, "last_epoch": last,
                  "epochs_after_best": after, "share_after_best": share,
                  "decline": decline.as_dict() if decline is not None else None},
        recommendations=[r for r in [_stop_at_best(run)] if r is not None], epoch=last)


def _strong_regularizers(run: Run) -> dict:
    strong = {}
    e = run.cfg(REGULARIZATION_LABEL_SMOOTHING)
    # Strong means past the recipe's value: the usual settings (smoothing 0.1, weight decay 5e-4, the schema's
    # defaults) are what healthy runs use (the fault matrix's healthy variants), not over-regularization.
    if isinstance(e, (int, float)) and e > STRONG["label_smoothing"]:
        strong[REGULARIZATION_LABEL_SMOOTHING] = e
    wd = run.cfg(REGULARIZATION_WEIGHT_DECAY)
    if isinstance(wd, (int, float)) and wd > STRONG["weight_decay"]:
        strong[REGULARIZATION_WEIGHT_DECAY] = wd
    aug = run.cfg(AUGMENTATION_NAME)
    m = run.cfg(AUGMENTATION_MAGNITUDE)
    if aug == "trivialaugment" or (aug == "randaugment" and isinstance(m, (int, float)) and m > STRONG["randaugment_magnitude"]):
        strong["augmentation"] = aug if aug == "trivialaugment" else f"randaugment magnitude {m}"
    return strong


FAR = {"label_smoothing": 0.3, "weight_decay": 1e-2, "randaugment_magnitude": 20}  # 3x, 20x, 2x the recipe values
# AdamW decouples the decay from the gradient: its recipes use 0.01-0.3 (torch's default 0.01), so "far past" starts
# at 1.0 there.
FAR_ADAMW_WEIGHT_DECAY = 1.0
USUAL = {REGULARIZATION_LABEL_SMOOTHING: STRONG["label_smoothing"], REGULARIZATION_WEIGHT_DECAY: STRONG["weight_decay"],
         AUGMENTATION_MAGNITUDE: STRONG["randaugment_magnitude"]}


def _far_regularizers(run: Run) -> dict:
    """One regularizer pushed far past its usual range holds a run back on its own (the fault matrix's cases:
    smoothing 0.9, weight decay x100, RandAugment 30)."""
    far = {}
    e, wd = run.cfg(REGULARIZATION_LABEL_SMOOTHING), run.cfg(REGULARIZATION_WEIGHT_DECAY)
    m = run.cfg(AUGMENTATION_MAGNITUDE)
    if isinstance(e, (int, float)) and e >= FAR["label_smoothing"]:
        far[REGULARIZATION_LABEL_SMOOTHING] = e
    far_wd = FAR_ADAMW_WEIGHT_DECAY if run.cfg(OPTIMIZER_NAME) == "adamw" else FAR["weight_decay"]
    if isinstance(wd, (int, float)) and wd >= far_wd:
        far[REGULARIZATION_WEIGHT_DECAY] = wd
    if run.cfg(AUGMENTATION_NAME) == "randaugment" and isinstance(m, (int, float)) and m >= FAR["randaugment_magnitude"]:
        far[AUGMENTATION_MAGNITUDE] = m
    return far


@rule("over_regularization", section="Generalization", title="strong regularization and underfitting",
      source="recipe ('label smoothing + weight decay + strong augmentation may be too much')",
      thresholds={"strong": "label_smoothing > 0.1, weight_decay > 5e-4, RandAugment magnitude > 10 or "
                            "TrivialAugment; at least 2 of them, or one far past its usual range (label_smoothing >= 0.3, "
                            "weight_decay >= 1e-2 (AdamW: >= 1.0), RandAugment magnitude >= 20)",
                  "underfitting": "train accuracy <= val accuracy + 0.02 and train loss > floor + 50% of its start",
                  "or measured": f"any augmentation or label smoothing, over {CONVERGED_REMAINING:.0%} of the loss's "
                                 f"way left, and at the end the train accuracy not above val (val - train >= "
                                 f"{FIT_LIMIT_GAP:g}); in a run still improving, with over {UNDERTRAINED_REMAINING:.0%} of the way left, below val by > "
                                 f"{FIT_LIMIT_GAP_IMPROVING:.0%}, 2 SE and the last epoch's rise in train accuracy "
                                 "(an epoch's average lags) (analysis/progress.py fit_limit)"})
def over_regularization(run: Run):
    strong = _strong_regularizers(run)
    far = _far_regularizers(run)
    if len(strong) < 2 and not far:
        return _fit_limited(run)
    train_acc, val_acc = finite(run.train["accuracy"]), finite(run.val["accuracy"])
    loss = finite(run.train["loss"])
    if len(train_acc) < 3 or not len(val_acc) or len(loss) < 3:
        return None
    floor = loss_floor(run)
    underfit = train_acc[-1] <= val_acc[-1] + 0.02 and (loss[-1] - floor) > 0.5 * (loss[0] - floor)
    if not underfit:
        return None
    # The regularizer farthest past its usual range first, back to its usual value; then the gentler steps.
    recs = [Recommendation(f"{key.split('.')[-1].replace('_', ' ')} {value:g} is far past its usual range: back to "
                           f"{USUAL[key]:g}", [override(key, USUAL[key])]) for key, value in far.items()]
    recs += [Recommendation(text, ov) for text, ov in (
        ("less label smoothing", lower_label_smoothing(run)), ("less weight decay", lower_weight_decay(run)),
        ("weaker augmentation", lower_augmentation(run))) if ov and ov[0].split("=")[0] not in far]
    what = (f"{len(strong)} strong regularizers" if len(strong) >= 2 else
            "a regularizer far past its usual range")
    return Finding("over_regularization", "warning",
                   f"{what} ({', '.join(f'{k}={v}' for k, v in {**strong, **far}.items())}) and the "
                   f"model underfits: train accuracy {train_acc[-1]:.3f} vs val {val_acc[-1]:.3f}, "
                   f"train loss {loss[-1]:.3g} (floor {floor:.3g})",
                   evidence={"strong": strong, "far_past_usual": far, "train_accuracy": float(train_acc[-1]), "val_accuracy": float(val_acc[-1]),
                             "train_loss": float(loss[-1]), "loss_floor": floor},
                   recommendations=recs, epoch=int(run.train.epochs[-1]))


def _fit_limited(run: Run):
    """over_regularization measured rather than read from the config: the training batches, as augmented and
    smoothed, fit no better than validation (progress.fit_limit: a run no longer improving, or one still improving
    far from its floor past an epoch's lag)."""
    active = {k: v for k, v in ((AUGMENTATION_NAME, run.cfg(AUGMENTATION_NAME)),
                                (REGULARIZATION_LABEL_SMOOTHING, run.cfg(REGULARIZATION_LABEL_SMOOTHING)))
              if v not in (None, "none", 0, 0.0, False)}
    limit = fit_limit(run) if active else None
    if limit is None:
        return None
    recs = [Recommendation(text, ov) for text, ov in (
        ("weaker augmentation", lower_augmentation(run)), ("less label smoothing", lower_label_smoothing(run))) if ov]
    if not recs:
        return None
    adds = ", ".join(f"{k.removesuffix('.name')}={v}" for k, v in active.items())
    return Finding("over_regularization", "warning",
                   f"the training batches fit no better than validation at the end (train accuracy "
                   f"{limit['train_accuracy']:.3f}, val {limit['val_accuracy']:.3f}: {limit['gap']:.3f} apart, SE "
                   f"{limit['se']:.3f}) with the loss {limit['remaining']:.0%} of the way above its floor: "
                   f"what training adds ({adds}) "
                   "limits the fit",
                   evidence={"measured": limit, "active": active}, recommendations=recs,
                   epoch=int(run.train.epochs[-1]))


@rule("val_above_train", section="Generalization", title="validation accuracy above training accuracy",
      source="UMLAUT OverconfidentValAccuracy (val - train > 0.05 from epoch 3)",
      thresholds={"val - train accuracy": f"> {VAL_ABOVE_TRAIN} on average and in >= 75% of epochs",
                  "from epoch": VAL_ABOVE_FROM, "epochs": ">= 3"})
def val_above_train(run: Run):
    common, train_rows, val_rows = common_epochs(run)
    late = common >= VAL_ABOVE_FROM
    common, train_rows, val_rows = common[late], train_rows[late], val_rows[late]
    if len(common) < 3:
        return None
    t = run.train["accuracy"][train_rows]
    v = run.val["accuracy"][val_rows]
    above = (v - t) > VAL_ABOVE_TRAIN
    # Train accuracy is a running mean over the epoch and lags a fast-learning model, so one epoch
    # above is no evidence: most epochs, and the mean gap, must exceed the threshold.
    if above.mean() < 0.75 or np.nanmean(v - t) <= VAL_ABOVE_TRAIN:
        return None
    aug = run.cfg(AUGMENTATION_NAME)
    augmented = aug not in (None, "none")
    # Only a run known to train without augmentation makes val > train suspicious; unknown is not "none".
    suspicious = aug == "none"
    gap = float(np.nanmean(v - t))
    why = (" (expected with training augmentation)" if augmented
           else ": with no augmentation this suggests leakage, a preprocessing mismatch, or wrong labels in the "
                "training set only (a model cannot fit labels that validation does not share)" if suspicious
           else " (augmentation not recorded: expected if the training data is augmented or regularized)")
    return Finding("val_above_train", "warning" if suspicious else "info",
                   f"validation accuracy exceeds training accuracy by {gap:.3f} on average from epoch {VAL_ABOVE_FROM}"
                   + why,
                   evidence={"mean_gap": gap, "epochs": [int(x) for x in common[above]][:20],
                             "augmentation": run.cfg(AUGMENTATION_NAME)},
                   recommendations=[] if not suspicious else [Recommendation(
                       "check train/val overlap, that both splits get the same preprocessing, and the training "
                       "labels (python -m trainer.check_data <same overrides>)", [])],
                   epoch=int(common[above][0]) if above.any() else None)


@rule("val_far_below_train", section="Generalization", title="evaluation far below training from the start",
      source="ours: a broken run must not get a clean report (train/eval mismatch: BatchNorm statistics wrecked by "
             "huge steps, an eval-mode bug, a transform mismatch)",
      thresholds={"gap": "train - val accuracy > 4 SE of the gap in the first epochs after the first and at the end",
                  "and kept": "validation keeps < 50% of training accuracy's rise above chance, early and at the end",
                  "or loss": "val loss above ln C at the end while the train loss fell below half of it",
                  "info": "when the last epoch recovered (val within 4 SE of train)"})
def val_far_below_train(run: Run):
    ev = mismatch(run)
    if ev is None or at_chance(run) is not None:
        return None  # a run at chance everywhere is accuracy_at_chance's
    eff, (_, most) = effective_lr(run), usual_effective_lr(run)
    recs = []
    if eff is not None and most is not None and eff > most:
        m = run.cfg(OPTIMIZER_MOMENTUM)
        if run.cfg(OPTIMIZER_NAME) == "sgd" and isinstance(m, (int, float)) and m > HIGH_MOMENTUM:
            recs.append(Recommendation(f"lower the momentum: lr / (1 - momentum) = {eff:.3g} takes steps too large for "
                                       "BatchNorm's running statistics", [override(OPTIMIZER_MOMENTUM, 0.9)]))
        recs.append(Recommendation(f"lower the learning rate (effective step {eff:.3g}, usual up to {most:.3g})",
                                   lower_lr(run, 10)))
    recs.append(Recommendation(CHECK_EVAL, undo_fault(run)))
    what = (f"validation accuracy is {ev['final_gap']:.2f} below training accuracy and was far below it from the first "
            f"epochs ({ev['final_gap'] / ev['gap_se']:.0f} SE)" if ev["val_far_below_train"] else
            f"the val loss ends at {ev['final_val_loss']:.3g}, above ln C = {ev['chance_loss']:.3g}, while the train loss "
            f"fell to {ev['final_train_loss']:.3g}")
    if ev["recovered_at_last_epoch"]:
        what += f"; it recovered at the last epoch (val accuracy {float(finite(run.val['accuracy'])[-1]):.3f})"
    # A run that ends where it should is not broken: the episode is worth knowing (info), not a warning.
    return Finding("val_far_below_train", "info" if ev["recovered_at_last_epoch"] else "warning",
                   what + ": what the model learns in training mode does not carry over to evaluation",
                   evidence=ev, recommendations=recs, epoch=int(run.val.epochs[-1]))


@rule("run_failed", section="Run", title="the run ended with an error", source="status.json",
      thresholds={"status": "failed"})
def run_failed(run: Run):
    if run.state != "failed":
        return None
    status = run.status or {}
    finding = status.get("finding")
    return Finding("run_failed", "critical",
                   f"the run failed at epoch {status.get('epoch')}: {status.get('error')}",
                   evidence={"error": status.get("error"), "finding": finding, "epoch": status.get("epoch")},
                   recommendations=[], epoch=status.get("epoch") if isinstance(status.get("epoch"), int) else None)


