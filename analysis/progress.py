"""How far a run got, and whether it was finished: the progress verdict every report and sweep row carries.

Pure numpy of a `Run` (layer 2). The training loss is measured against the way it had to go: from its start
(the first epoch's mean, or ln C, an untrained model's loss, when that is higher) to its floor (0 without label
smoothing, the smoothed target's entropy with it; unknown when the smoothing is not recorded, never taken
as 0). Then: was it still falling at the end (a least-squares slope over the last window, with its 95%
interval), was validation still improving, and what would more epochs buy (the tail fitted against the
training time the LR schedule gave, so a longer run of the same schedule can be projected).

The verdict is one word: "not learning", "still improving", "stalled", "converged" or "unknown", and a sentence.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np

from rundir.read import Run
from .facts import (accuracy_se, chance_accuracy, chance_loss, finite, judged_loss_floor, known_loss_floor,
                    val_pipeline)
from .stats import noise, t_critical, trend, window_size

# The loss fell by under a tenth of its way to the floor: it barely moved (the differential diagnosis's "stuck").
NOT_LEARNING_SHARE = 0.1
# More than half of the way to the floor still ahead at the end: further from converged than from the start.
FAR_SHARE = 0.5
# Still falling steeply: the last window's slope covers >= 2% of the whole way per epoch (the rest of the way
# would take <= 50 more epochs at that rate). A converged run's tail covers a fraction of a percent (the digits
# reference: 0.65%/epoch at the end of 10 epochs); a run cut short covers several percent.
STEEP_SHARE_PER_EPOCH = 0.02
# A loss within a tenth of its way of the floor is done: no longer "still improving" (the digits reference ends at 6%).
CONVERGED_REMAINING = 0.1
# The undertrained warning: falling steeply with over a quarter of the way still ahead. On digits, 6 of the reference's
# 10 epochs leave 19% (0.958 against 0.98: inside the 5-point band a dose-response matrix calls healthy) and 3 epochs
# leave 55% (0.82).
UNDERTRAINED_REMAINING = 0.25
# Validation still improving materially: the val accuracy's last-window slope significantly > 0 and >= 1 point
# per epoch (a run whose accuracy still climbs a point an epoch was stopped while it paid).
VAL_RISING_PER_EPOCH = 0.01
# The projection: the tail (last half of the epochs, >= 3) fitted against log training time; projected to twice
# the run's training time (its epochs doubled, the schedule stretched), no further (an extrapolation).
PROJECTION_MIN_POINTS = 3
PROJECTION_FACTOR = 2.0
# More epochs pay: twice the training is projected to raise the val accuracy by >= 5 points even at the low end
# of the projection's 95% interval (the smallest damage the dose-response matrix calls broken). Under a decaying
# schedule the loss's last slope per epoch is small because the LR is, not because the run is done: the
# projection, fitted against training time, sees it.
PROJECTED_GAIN = 0.05


def _r(x: Optional[float], digits: int = 4) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else float(f"{x:.{digits}g}")


def training_time(run: Run, epochs: np.ndarray) -> tuple[np.ndarray, str]:
    """Training time at the middle of each epoch in `epochs`: the cumulative LR x steps (the distance gradient
    descent travels is proportional to it), so a run whose LR decayed has gone less far in its last epochs
    than in its first. Epoch counts when the LR is not recorded."""
    tr = run.train
    lr, lr_end, steps = tr["learning_rate"], tr["learning_rate_end"], tr["num_batches"]
    if not np.isfinite(lr).all() or not len(lr) or not (lr > 0).any():
        return epochs.astype(np.float64) - 0.5, "epochs (no learning rate recorded)"
    mean_lr = np.where(np.isfinite(lr_end), (lr + lr_end) / 2, lr)
    per_epoch = mean_lr * np.where(np.isfinite(steps) & (steps > 0), steps, 1.0)
    ends = np.cumsum(per_epoch)
    mids = ends - per_epoch / 2
    # Each epoch's time by its row (the train epochs are sorted and unique); NaN for an epoch without a train row.
    at = np.minimum(np.searchsorted(tr.epochs, epochs), len(mids) - 1)
    t = np.where(tr.epochs[at] == epochs, mids[at], math.nan)
    return t, "cumulative learning rate x steps"


def _log_time_fit(y: np.ndarray, t: np.ndarray) -> Optional[dict]:
    """y against log t over the tail: the change per doubling of the training time, with its standard error."""
    ok = np.isfinite(y) & np.isfinite(t) & (t > 0)
    y, t = y[ok], t[ok]
    k = max(PROJECTION_MIN_POINTS, len(y) // 2)
    if len(y) < PROJECTION_MIN_POINTS:
        return None
    y, t = y[-k:], t[-k:]
    x = np.log(t)
    if float(np.ptp(x)) <= 0:
        return None
    tr = trend(y, x)
    return {"per_doubling": tr.slope * math.log(2), "se": tr.se * math.log(2), "points": tr.n,
            "significant": tr.falling() or tr.rising(), "t": tr.t}


def _projection(run: Run, loss: np.ndarray, loss_epochs: np.ndarray, floor: Optional[float]) -> dict:
    """What twice the training time would buy: train loss and val accuracy, each from its tail's fit."""
    out: dict = {"factor": PROJECTION_FACTOR, "method": "the tail (last half of the epochs) fitted against log "
                 "training time; the run doubled, its schedule stretched"}
    t, time_source = training_time(run, loss_epochs)
    out["time"] = time_source
    fit = _log_time_fit(loss, t)
    statements = []
    if fit is None:
        statements.append(f"too few epochs ({len(loss)}) to fit the loss's tail")
    elif not fit["significant"] or fit["per_doubling"] >= 0:
        statements.append("the loss's tail is flat against training time: more epochs of this schedule buy no "
                          "measurable fall")
        out["train_loss"] = {"per_doubling": _r(fit["per_doubling"]), "se": _r(fit["se"])}
    else:
        change = fit["per_doubling"] * math.log2(PROJECTION_FACTOR)
        projected = float(loss[-1]) + change
        lowest = floor if floor is not None else 0.0
        out["train_loss"] = {"per_doubling": _r(fit["per_doubling"]), "se": _r(fit["se"]),
                             "projected": _r(max(projected, lowest)), "clipped_at_floor": projected < lowest}
    acc, acc_epochs = run.val.finite("accuracy")
    if len(acc) >= PROJECTION_MIN_POINTS:
        ta, _ = training_time(run, acc_epochs)
        afit = _log_time_fit(acc, ta)
        if afit is not None and afit["significant"] and afit["per_doubling"] > 0:
            gain = afit["per_doubling"] * math.log2(PROJECTION_FACTOR)
            t = t_critical(afit["points"] - 2) if afit["points"] >= 3 else math.inf
            low = (afit["per_doubling"] - t * afit["se"]) * math.log2(PROJECTION_FACTOR)
            out["val_accuracy"] = {"per_doubling": _r(afit["per_doubling"]), "se": _r(afit["se"]),
                                   "projected": _r(min(float(acc[-1]) + gain, 1.0)),
                                   "gain_lower95": _r(min(low, 1.0 - float(acc[-1])))}
        elif afit is not None:
            statements.append("the val accuracy's tail is flat against training time")
    out["statement"] = "; ".join(statements) if statements else None
    return out


def _val_trend(run: Run) -> Optional[dict]:
    """Validation at the end: the accuracy's (else the loss's) last-window trend, and whether it still improved."""
    for field, better in (("accuracy", 1.0), ("loss", -1.0)):
        y, e = run.val.finite(field)
        if len(y) >= 3:
            w = min(window_size(len(y)), len(y))
            tr = trend(y[-w:], e[-w:])
            improving = tr.rising() if better > 0 else tr.falling()
            material = better * tr.slope >= VAL_RISING_PER_EPOCH if field == "accuracy" else improving
            return {"metric": field, "trend": tr.as_dict(), "still_improving": bool(improving),
                    "materially": bool(improving and material), "last": _r(float(y[-1])),
                    "best": _r(float(y.max() if better > 0 else y.min()))}
    return None


def progress(run: Run) -> dict:
    """The progress verdict of a run, as plain data (see the module docstring)."""
    if "progress" not in run.memo:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                run.memo["progress"] = _progress(run)
            except (ValueError, TypeError, ArithmeticError, IndexError) as e:  # a hostile file's values
                run.warnings.append(f"progress verdict skipped: {type(e).__name__}: {e}")
                run.memo["progress"] = {"verdict": "unknown", "sentence": "unknown: the loss values could not be "
                                        "judged", "loss_progress": None, "still_falling": None, "val": None}
    return run.memo["progress"]


def _progress(run: Run) -> dict:
    y, e = run.train.finite("loss")
    val = _val_trend(run)
    if not len(y):
        return {"verdict": "unknown", "sentence": "no training loss recorded: how far the run got is unknown",
                "loss_progress": None, "still_falling": None, "val": val}
    floor, floor_source = known_loss_floor(run)
    judged, judged_source = judged_loss_floor(run)
    if judged is not None and float(y.min()) < judged:
        # The loss went below the floor assumed (or computed: a KL loss with smoothed targets reaches 0): the floor
        # is at most the lowest training loss.
        judged, judged_source = float(y.min()), f"{judged_source}; the loss went below it: at most its lowest value"
        floor = None if floor is not None else floor
        floor_source = judged_source if floor is None else floor_source
    l0 = chance_loss(run)
    start = float(y[0])
    start_source = "the first epoch's mean"
    if l0 is not None and l0 > start and len(y) >= 1:
        start, start_source = l0, f"ln {run.num_classes}, an untrained model's loss"
    end = float(y[-1])
    way = start - judged if judged is not None else math.nan
    done = (start - end) / way if way > 0 else math.nan
    if l0 is not None and judged is not None and l0 > judged and math.isfinite(done):
        # Measured from an untrained model's loss too, and the lesser share kept: a first epoch that diverged (a mean
        # of 5e14) would otherwise make a run that ended at 10, far above ln C, look all the way there.
        from_chance = (l0 - end) / (l0 - judged)
        if from_chance < done:
            done, way = from_chance, l0 - judged
            start, start_source = l0, (f"ln {run.num_classes}, an untrained model's loss (the first epoch's mean, "
                                       f"{float(y[0]):.4g}, is higher: the loss rose within it)")
    # With the floor unknown, the share of the way is at least the fall relative to the start (floor >= 0).
    lower = (start - end) / start if start > 0 else math.nan
    remaining = 1 - done if math.isfinite(done) else math.nan
    w = min(window_size(len(y)), len(y))
    tail = trend(y[-w:], e[-w:])
    t_crit = t_critical(tail.n - 2) if tail.n >= 3 else math.inf
    interval = [tail.slope - t_crit * tail.se, tail.slope + t_crit * tail.se] if tail.n >= 3 else [None, None]
    # The last epoch's own fall, observed rather than extrapolated: >= STEEP_SHARE_PER_EPOCH of the way and beyond
    # the loss's epoch-to-epoch noise is still falling steeply, however few epochs there are to fit a slope to
    # (3 epochs give the t-test one degree of freedom: it needs |t| > 12.7).
    last_drop = float(y[-2] - y[-1]) if len(y) >= 2 else math.nan
    dropped = (len(y) >= 2 and way > 0 and last_drop >= STEEP_SHARE_PER_EPOCH * way
               and last_drop > 2 * noise(y))
    if tail.n >= 3:
        still_falling = tail.falling() or dropped
    elif len(y) == 2:
        still_falling = bool(y[1] < y[0])  # two epochs: a fall, with no interval to judge it by
    else:
        still_falling = None
    share_per_epoch = -tail.slope / way if way > 0 and math.isfinite(tail.slope) else math.nan
    steep = bool(still_falling) and (dropped or (math.isfinite(share_per_epoch)
                                                 and share_per_epoch >= STEEP_SHARE_PER_EPOCH))
    one_epoch = len(y) == 1
    # One epoch has no slope: the val loss, measured after the epoch, shows where the model ended against the
    # train loss's epoch mean (lower: it was still falling within the epoch).
    vloss = finite(run.val["loss"])
    if one_epoch and len(vloss) and math.isfinite(way) and way > 0:
        end_state = min(end, float(vloss[-1]))
        remaining = 1 - (start - end_state) / way
        done = 1 - remaining
        steep = still_falling = bool(float(vloss[-1]) < end)
    at_chance_loss = l0 is not None and end >= 0.9 * l0
    not_learning = (math.isfinite(done) and done < NOT_LEARNING_SHARE and (floor is not None or at_chance_loss))
    val_rising = bool(val and val["materially"])
    far_left = math.isfinite(remaining) and remaining > CONVERGED_REMAINING
    if not_learning:
        verdict = "not learning"
    elif (steep and far_left) or val_rising:
        verdict = "still improving"
    elif math.isfinite(remaining) and remaining > FAR_SHARE:
        verdict = "stalled"  # crawling or flat, more than half the way left (far_from_converged warns)
    elif still_falling and far_left:
        verdict = "still improving"  # slowly: no warning (undertrained needs a steep fall)
    elif math.isfinite(remaining) and remaining > UNDERTRAINED_REMAINING:
        verdict = "stalled"  # flat with over a quarter of the way left (e.g. the LR was cut away): not converged
    elif math.isfinite(remaining):
        verdict = "converged"
    else:
        verdict = "unknown"
    out = {
        "verdict": verdict,
        "loss_progress": _r(done),
        "loss_progress_lower_bound": _r(lower),
        "remaining": _r(remaining),
        "start": _r(start), "start_source": start_source, "end": _r(end),
        "floor": _r(floor) if floor is not None else None, "floor_source": floor_source,
        "judged_floor": _r(judged) if judged is not None else None, "judged_floor_source": judged_source,
        "still_falling": still_falling, "steep": steep, "val_rising": val_rising, "last_epoch_fall": _r(last_drop),
        "slope": {**tail.as_dict(), "interval95": [_r(v) for v in interval],
                  "share_of_way_per_epoch": _r(share_per_epoch)},
        "val": val,
        "epochs": len(y),
    }
    out["projection"] = _projection(run, y, e, judged)
    if math.isfinite(done) and done < 0:  # ended above where it started (diverged): its tail is no trend to extend
        out["projection"] = {"factor": PROJECTION_FACTOR, "statement": "the loss ended above where it started: "
                             "nothing to project"}
    low = (out["projection"].get("val_accuracy") or {}).get("gain_lower95")
    out["more_epochs_pay"] = bool(low is not None and low >= PROJECTED_GAIN)
    out["sentence"] = _sentence(out)
    return out


def _pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _sentence(p: dict) -> str:
    floor = (f"floor {p['floor']:.3g} ({p['floor_source']})" if p["floor"] is not None else
             f"floor unknown ({p['floor_source']}; judged against {p['judged_floor']:.3g})"
             if p["judged_floor"] is not None else f"floor unknown ({p['floor_source']})")
    way = (f"the training loss ended at {p['end']:.4g}, above where it started ({p['start']:.4g}): none of the way "
           f"to its {floor}" if p["loss_progress"] is not None and p["loss_progress"] < 0 else
           f"the training loss went {_pct(p['loss_progress'])} of the way from {p['start']:.4g} to its {floor}"
           if p["loss_progress"] is not None else
           f"the training loss fell {_pct(p['loss_progress_lower_bound'])} of its start {p['start']:.4g}; {floor}")
    s = p["slope"]
    if p["still_falling"] is None:
        tail = "one epoch: no slope"
    elif s["epochs"] < 3:
        tail = "two epochs: " + ("it fell between them" if p["still_falling"] else "it did not fall between them")
    else:
        lo, hi = s["interval95"]
        tail = (f"{'still falling' if p['still_falling'] else 'not falling significantly'} at the end "
                f"(slope {s['slope_per_epoch']:+.3g}/epoch, 95% interval [{lo:+.3g}, {hi:+.3g}] over the last "
                f"{s['epochs']} epochs)")
    val = p.get("val")
    vtext = ""
    if val:
        vtext = f"; val {val['metric']} {'still improving' if val['still_improving'] else 'no longer improving'}"
    proj = p.get("projection") or {}
    ptext = ""
    if proj.get("val_accuracy"):
        ptext = f"; twice the training would reach val accuracy ~{proj['val_accuracy']['projected']:.3f}"
    elif (proj.get("train_loss") or {}).get("projected") is not None:
        ptext = f"; twice the training would bring the train loss to ~{proj['train_loss']['projected']:.3g}"
    elif proj.get("statement"):
        ptext = f"; {proj['statement']}"
    return f"{p['verdict']}: {way}; {tail}{vtext}{ptext}"


def unfinished(p: dict) -> bool:
    """Still paying for more epochs at the end (the undertrained warning): still improving, and either falling
    with over UNDERTRAINED_REMAINING of the way ahead (steeply, or at any significant rate when the floor is known:
    a run flat at that distance is stalled, so one still falling there is no more finished; or val accuracy still
    rising materially), or projected to gain from twice the training."""
    if p.get("verdict") != "still improving":
        return False
    remaining = p.get("remaining")
    falling = bool(p.get("steep") or p.get("val_rising") or (p.get("still_falling") and p.get("floor") is not None))
    return bool((falling and remaining is not None and remaining > UNDERTRAINED_REMAINING) or p.get("more_epochs_pay"))


def summary_fields(p: dict) -> dict:
    """The progress columns a sweep table and runs.csv carry."""
    return {"progress_verdict": p.get("verdict"), "loss_progress": p.get("loss_progress"),
            "still_falling": p.get("still_falling")}


# The training task fits no better than the held-out one: at the end of a run no longer improving, the training
# accuracy (measured on augmented, regularized batches) not above the validation accuracy (val - train >=
# FIT_LIMIT_GAP), with the loss over a tenth of its way above the floor. A model fits its own training images better
# than unseen ones (the digits reference: train 0.995, val 0.983); when it fits them no better while its loss is
# still far from the floor, what the training adds (augmentation, smoothing, dropout) limits it. On digits at 32 px
# crop + flip end at train 0.881, val 0.886, 24% of the way left (0.886 against 0.983 without them).
FIT_LIMIT_GAP = 0.0
# A run still improving: its training accuracy is an epoch's average, so it lags the val accuracy measured after
# the epoch by up to the epoch's own rise (without augmentation, digits runs still improving end 0-1 point below
# val). It counts only past that lag, FIT_LIMIT_GAP_IMPROVING and 2 SE (binomial at the val size), and only with
# over UNDERTRAINED_REMAINING of the way left, where more epochs are the other answer (a flip alone on digits ends
# 2.4 points below val with 15% left, 0.964: within the reference's noise). RandAugment at magnitude 5 on digits
# ends at train 0.756, val 0.830, still falling with 40% of the way left.
FIT_LIMIT_GAP_IMPROVING = 0.02


# A level held, not a rescue: the val accuracy's range over the last window spans under half of its final gain above
# chance. A schedule's rescue of a run that sat at chance makes most of its gain there (Adam at LR 1 on digits:
# 0.32 -> 0.97 in its last 4 epochs, 74% of the gain); a run that rose steadily and kept rising a little does not
# (SGD at LR 1.5 at 32 px: 0.953 -> 0.986, 4%).
HELD_LEVEL_SHARE = 0.5


def settled(run: Run) -> bool:
    """The run converged and held its level: the loss within CONVERGED_REMAINING of its way to the floor, and the val
    accuracy's range over the last window under HELD_LEVEL_SHARE of its gain above chance. A level reached before the
    last epochs and kept, not made in them (a schedule's rescue of a run that sat at chance)."""
    p = progress(run)
    remaining = p.get("remaining")
    if p["verdict"] != "converged" or remaining is None or remaining > CONVERGED_REMAINING:
        return False
    acc = finite(run.val["accuracy"])
    w = window_size(len(acc))
    if len(acc) <= w:
        return False
    gain = float(acc[-1]) - (chance_accuracy(run) or 0.0)
    return bool(gain > 0 and float(np.ptp(acc[-w:])) < HELD_LEVEL_SHARE * gain)


def fit_limit(run: Run) -> Optional[dict]:
    """Evidence that the training task, as augmented and regularized, is what stopped the run or holds back one
    still improving far from its floor (None when not)."""
    p = progress(run)
    remaining = p.get("remaining")
    if p["verdict"] not in ("converged", "stalled", "still improving") or remaining is None or \
            remaining <= CONVERGED_REMAINING:
        return None
    if any(val_pipeline(run)):  # validation augmented too: it is no clean measure to hold the training fit against
        return None
    train, val = finite(run.train["accuracy"]), finite(run.val["accuracy"])
    if len(train) < 3 or len(val) < 3:
        return None
    gap = float(val[-1] - train[-1])
    se, source = accuracy_se(run, float(val[-1]))
    if p["verdict"] == "still improving":
        lag = max(float(train[-1] - train[-2]), 0.0)
        if remaining <= UNDERTRAINED_REMAINING or gap <= max(FIT_LIMIT_GAP_IMPROVING, 2 * se, lag):
            return None
    elif gap < FIT_LIMIT_GAP:
        return None
    return {"train_accuracy": _r(float(train[-1])), "val_accuracy": _r(float(val[-1])), "gap": _r(gap),
            "se": _r(se), "se_source": source, "remaining": remaining}
