"""Rules on generalization: overfitting, overtraining, over-regularization, val above train, failed runs."""

from __future__ import annotations


import numpy as np

from ..config_keys import (
    AUGMENTATION_MAGNITUDE, AUGMENTATION_NAME, REGULARIZATION_LABEL_SMOOTHING, REGULARIZATION_WEIGHT_DECAY,
    TRAINER_EPOCHS)
from ..facts import at_chance, finite, loss_floor, val_size
from ..findings import Finding, Recommendation
from ..overrides import lower_augmentation, lower_label_smoothing, lower_weight_decay, override
from rundir.read import Run
from ..stats import binomial_se, trend, window_size
from . import rule

OVERFIT_GAP = 0.1  # AUTOTRAINER: train - val accuracy >= 0.1
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


@rule("overfitting", section="Generalization", title="val loss rising while train loss falls, with a gap",
      source="AUTOTRAINER (train - val accuracy >= 0.1); SageMaker Debugger Overfit; trend test ours",
      thresholds={"val loss": "rising (Student t, 95%) over the last max(4, 20%) epochs", "accuracy gap": f">= {OVERFIT_GAP}"})
def overfitting(run: Run):
    y, e = run.val.finite("nll" if run.val.has("nll") else "loss")
    if len(y) < 5:
        return None
    w = window_size(len(y))
    tr_val = trend(y[-w:], e[-w:])
    train_loss, train_epochs = run.train.finite("loss")
    tr_train = trend(train_loss[-w:], train_epochs[-w:])
    train_acc, val_acc = finite(run.train["accuracy"]), finite(run.val["accuracy"])
    if not (len(train_acc) and len(val_acc)):
        return None
    gap = float(train_acc[-1] - val_acc[-1])
    if not (tr_val.rising() and not tr_train.rising() and gap >= OVERFIT_GAP):
        return None
    recs = []
    wd = run.cfg(REGULARIZATION_WEIGHT_DECAY)
    if isinstance(wd, (int, float)):
        recs.append(Recommendation("more weight decay", [override(REGULARIZATION_WEIGHT_DECAY, max(wd * 2, 1e-4))]))
    if run.cfg(AUGMENTATION_NAME) == "none":
        recs.append(Recommendation("augment the training data", ["augmentation=basic"]))
    if run.cfg(REGULARIZATION_LABEL_SMOOTHING) == 0:
        recs.append(Recommendation("label smoothing", ["regularization.label_smoothing=0.1"]))
    recs.append(_stop_at_best(run))
    return Finding("overfitting", "warning",
                   f"overfitting: val loss rising ({tr_val.slope:+.3g}/epoch, t={tr_val.t:.1f}) while train loss is not; "
                   f"train-val accuracy gap {gap:.2f}",
                   evidence={"val_loss_trend": tr_val.as_dict(), "train_loss_trend": tr_train.as_dict(),
                             "accuracy_gap": gap, "gap_threshold": OVERFIT_GAP},
                   recommendations=recs, epoch=int(e[-1]))


def _stop_at_best(run: Run) -> Recommendation:
    best = _best_epoch(run)
    if best is None or run.config is None:
        return Recommendation("stop at the best validation epoch and use checkpoints/best.pt", [])
    margin = max(2, int(round(0.1 * best[0])))
    return Recommendation("stop near the best validation epoch (checkpoints/best.pt holds its weights)",
                          [override(TRAINER_EPOCHS, best[0] + margin)])


@rule("overtraining", section="Generalization", title="many epochs trained after the best validation epoch",
      source="SageMaker Debugger Overtraining (patience 10 on val); compute-waste accounting and noise test ours",
      thresholds={"epochs after best": f">= max({OVERTRAIN_MIN}, {OVERTRAIN_SHARE:.0%} of the run)",
                  "worse": "last-window mean val accuracy below best by > 2 binomial SE",
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
    if after < max(OVERTRAIN_MIN, OVERTRAIN_SHARE * planned):
        return None
    acc = run.val["accuracy"]
    tail = acc[run.val.epochs > best_epoch]
    tail = tail[np.isfinite(tail)][-window_size(after):]
    se = binomial_se(best_acc, val_size(run))
    drop = best_acc - float(np.mean(tail)) if len(tail) else 0.0
    worse = drop > 2 * se
    share = after / last
    return Finding(
        "overtraining", "warning" if worse else "info",
        f"best val accuracy {best_acc:.4f} at epoch {best_epoch}; {after} epochs ({share:.0%} of the run) were trained "
        f"after it" + (f", ending {drop:.3f} lower (more than 2 SE = {2 * se:.3f})" if worse
                       else " without beating it (the later epochs are within noise of the best)"),
        evidence={"best_epoch": best_epoch, "best_val_accuracy": best_acc, "last_epoch": last,
                  "epochs_after_best": after, "share_after_best": share, "tail_mean_drop": drop,
                  "binomial_se": se},
        recommendations=[_stop_at_best(run)], epoch=last)


def _strong_regularizers(run: Run) -> dict:
    strong = {}
    e = run.cfg(REGULARIZATION_LABEL_SMOOTHING)
    if isinstance(e, (int, float)) and e >= STRONG["label_smoothing"]:
        strong[REGULARIZATION_LABEL_SMOOTHING] = e
    wd = run.cfg(REGULARIZATION_WEIGHT_DECAY)
    if isinstance(wd, (int, float)) and wd >= STRONG["weight_decay"]:
        strong[REGULARIZATION_WEIGHT_DECAY] = wd
    aug = run.cfg(AUGMENTATION_NAME)
    m = run.cfg(AUGMENTATION_MAGNITUDE)
    if aug == "trivialaugment" or (aug == "randaugment" and isinstance(m, (int, float)) and m >= STRONG["randaugment_magnitude"]):
        strong["augmentation"] = aug if aug == "trivialaugment" else f"randaugment magnitude {m}"
    return strong


@rule("over_regularization", section="Generalization", title="several strong regularizers and underfitting",
      source="seed ('label smoothing + weight decay + strong augmentation may be too much')",
      thresholds={"strong": "label_smoothing >= 0.1, weight_decay >= 5e-4, RandAugment magnitude >= 10 or "
                            "TrivialAugment; at least 2 of them",
                  "underfitting": "train accuracy <= val accuracy + 0.02 and train loss > floor + 50% of its start"})
def over_regularization(run: Run):
    strong = _strong_regularizers(run)
    if len(strong) < 2:
        return None
    train_acc, val_acc = finite(run.train["accuracy"]), finite(run.val["accuracy"])
    loss = finite(run.train["loss"])
    if len(train_acc) < 3 or not len(val_acc) or len(loss) < 3:
        return None
    floor = loss_floor(run)
    underfit = train_acc[-1] <= val_acc[-1] + 0.02 and (loss[-1] - floor) > 0.5 * (loss[0] - floor)
    if not underfit:
        return None
    recs = [Recommendation(text, ov) for text, ov in (
        ("less label smoothing", lower_label_smoothing(run)), ("less weight decay", lower_weight_decay(run)),
        ("weaker augmentation", lower_augmentation(run))) if ov]
    return Finding("over_regularization", "warning",
                   f"{len(strong)} strong regularizers ({', '.join(f'{k}={v}' for k, v in strong.items())}) and the "
                   f"model underfits: train accuracy {train_acc[-1]:.3f} vs val {val_acc[-1]:.3f}, "
                   f"train loss {loss[-1]:.3g} (floor {floor:.3g})",
                   evidence={"strong": strong, "train_accuracy": float(train_acc[-1]), "val_accuracy": float(val_acc[-1]),
                             "train_loss": float(loss[-1]), "loss_floor": floor},
                   recommendations=recs, epoch=int(run.train.epochs[-1]))


@rule("val_above_train", section="Generalization", title="validation accuracy above training accuracy",
      source="UMLAUT OverconfidentValAccuracy (val - train > 0.05 from epoch 3)",
      thresholds={"val - train accuracy": f"> {VAL_ABOVE_TRAIN} on average and in >= 75% of epochs",
                  "from epoch": VAL_ABOVE_FROM, "epochs": ">= 3"})
def val_above_train(run: Run):
    te, ve = run.train.epochs, run.val.epochs
    common = np.intersect1d(te[te >= VAL_ABOVE_FROM], ve)
    if len(common) < 3:
        return None
    t = run.train["accuracy"][np.isin(te, common)]
    v = run.val["accuracy"][np.isin(ve, common)]
    above = (v - t) > VAL_ABOVE_TRAIN
    # Train accuracy is a running mean over the epoch and lags a fast-learning model, so one epoch
    # above is no evidence: most epochs, and the mean gap, must exceed the threshold.
    if above.mean() < 0.75 or np.nanmean(v - t) <= VAL_ABOVE_TRAIN:
        return None
    augmented = run.cfg(AUGMENTATION_NAME) not in (None, "none")
    gap = float(np.nanmean(v - t))
    return Finding("val_above_train", "info" if augmented else "warning",
                   f"validation accuracy exceeds training accuracy by {gap:.3f} on average from epoch {VAL_ABOVE_FROM}"
                   + (" (expected with training augmentation)" if augmented
                      else ": with no augmentation this suggests leakage or a preprocessing mismatch"),
                   evidence={"mean_gap": gap, "epochs": [int(x) for x in common[above]][:20],
                             "augmentation": run.cfg(AUGMENTATION_NAME)},
                   recommendations=[] if augmented else [Recommendation(
                       "check train/val overlap and that both splits get the same preprocessing "
                       "(python -m trainer.check_data <same overrides>)", [])],
                   epoch=int(common[above][0]) if above.any() else None)


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


