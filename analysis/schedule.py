"""Learning-rate cuts and their attribution: was the validation loss really stuck, and what did the cut buy?

Used by the Learning Rate section of the report and by the `lr_reduced_early`, `lr_cut_premature`,
`weights_not_updating` and `loss_plateau_early` rules, so all say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from rundir.config_keys import SCHEDULER_NAME, SCHEDULER_PATIENCE, SCHEDULER_THRESHOLD
from .findings import Recommendation
from .overrides import lower_plateau_threshold, raise_min_lr, raise_patience, uses
from rundir.read import Run
from .stats import noise, trend

CUT_RATIO = 0.9  # an epoch whose LR is below 0.9x the previous one's is a cut (piecewise schedules)
PIECEWISE = ("plateau", "step", "multistep")  # schedulers whose LR moves in cuts; cosine/onecycle glide
PLANNED = ("step", "multistep")  # cuts fixed in advance by the schedule, not triggered by the val loss
HURT_Z = 2.0  # a cut "hurt" when the val loss after it is worse than before by > 2 noise SE of the difference
DECAYED_SHARE = 1e-3  # an LR below 1e-3 x the run's peak LR ...
DECAYED_MIN_EPOCHS = 3  # ... for at least max(3, 25% of the run) epochs has decayed to nothing
DECAYED_RUN_SHARE = 0.25
RISE_RATIO = 1.5  # an epoch whose LR is above 1.5x the previous one's, after the LR had fallen below its peak
# so far by that same factor, is a jump back up: a schedule restarted (a resume that changed its length)


@dataclass
class Cut:
    epoch: int  # first epoch trained at the lower LR
    lr_before: float
    lr_after: float
    verdict: str  # "stalled", "still improving", "unclear" (falling, but not significantly), or "unknown"
    val_slope: Optional[float]  # val-loss slope per epoch over the epochs before the cut
    val_slope_t: Optional[float]
    val_noise: Optional[float]  # epoch-to-epoch noise of the val loss (std)
    bought_loss: Optional[float]  # val loss: mean over the window after the cut minus the one before (None: unknown)
    bought_accuracy: Optional[float]  # val accuracy: same difference (a before/after difference, not a proven effect)
    planned: bool = False  # a step/multistep cut, fixed before training
    hurt: bool = False  # the val loss (or accuracy) after the cut is worse than before, beyond noise

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else None if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}

    def after_text(self) -> str:
        """What changed after the cut, neutrally: a before/after difference, not a cause ('' when unknown)."""
        parts = [f"{what} {v:+.3g}" for what, v in (("val loss", self.bought_loss), ("accuracy", self.bought_accuracy))
                 if v is not None]
        return "after the cut: " + ", ".join(parts) if parts else ""


def is_planned(run: Run) -> bool:
    """Cuts of a step/multistep schedule were planned before training; they are not reactions to the val loss."""
    return run.cfg(SCHEDULER_NAME) in PLANNED


def is_piecewise(run: Run) -> bool:
    name = run.cfg(SCHEDULER_NAME)
    if name is not None:
        return name in PIECEWISE
    # No config (a lone JSONL file): piecewise when the LR only ever holds or drops by a real cut.
    lr = run.train["learning_rate"]
    lr = lr[np.isfinite(lr)]
    if len(lr) < 2:
        return False
    ratios = lr[1:] / np.maximum(lr[:-1], 1e-300)
    holds = (ratios >= 0.999) & (ratios <= 1.001)
    cuts = ratios < CUT_RATIO
    # A step schedule holds the LR longer than it cuts it; an LR that drops at every epoch is a smooth decay
    # (linear, cosine, exponential) sampled once per epoch, not a series of cuts.
    return bool(np.all(holds | cuts) and holds.sum() >= cuts.sum() > 0)


def find_cuts(run: Run) -> list[Cut]:
    """Every LR cut of a piecewise schedule, each judged against the val loss around it (computed once)."""
    if "cuts" not in run.memo:
        run.memo["cuts"] = _find_cuts(run)
    return run.memo["cuts"]


def _find_cuts(run: Run) -> list[Cut]:
    if not is_piecewise(run):
        return []
    epochs = run.train.epochs
    lr = run.train["learning_rate"]
    patience = run.cfg(SCHEDULER_PATIENCE)
    window = max(5, (patience + 1) if isinstance(patience, int) else 5)  # ReduceLROnPlateau's own window, >= 5
    before, after = lr[:-1], lr[1:]
    with np.errstate(invalid="ignore"):
        cut = np.isfinite(before) & np.isfinite(after) & (after < CUT_RATIO * before)
    return [_judge(run, int(epochs[i]), float(lr[i - 1]), float(lr[i]), window) for i in np.flatnonzero(cut) + 1]


def _mean(values: np.ndarray) -> Optional[float]:
    v = values[np.isfinite(values)]
    return float(v.mean()) if len(v) else None


def _judge(run: Run, epoch: int, before: float, after: float, window: int) -> Cut:
    """The val loss over the `window` epochs before the cut: still falling beyond its noise, or stalled?
    A fall that is large but not significant on few points is "unclear", never "stalled"."""
    ve, vl, va = run.val.epochs, run.val["loss"], run.val["accuracy"]
    pre = (ve < epoch) & (ve >= epoch - window)
    post = (ve >= epoch) & (ve < epoch + window)
    slope = t = sigma = None
    verdict = "unknown"
    if np.isfinite(vl[pre]).sum() >= 3:
        tr = trend(vl[pre], ve[pre])
        sigma = noise(vl[ve < epoch])
        slope, t = tr.slope, tr.t
        predicted_fall = -tr.slope * window
        # Still improving: the slope is significantly negative *and* the fall it predicts over the
        # window is larger than the epoch-to-epoch noise (a "cut on noise" is ReduceLROnPlateau's
        # typical premature trigger: threshold_mode='rel' with a tiny threshold).
        if tr.falling() and predicted_fall > sigma:
            verdict = "still improving"
        elif predicted_fall <= max(sigma, 0.0):
            verdict = "stalled"
        else:
            verdict = "unclear"
    bought_loss = bought_acc = None
    if pre.any() and post.any():
        lp, la = _mean(vl[post]), _mean(vl[pre])
        bought_loss = lp - la if lp is not None and la is not None else None
        ap, aa = _mean(va[post]), _mean(va[pre])
        bought_acc = ap - aa if ap is not None and aa is not None else None
    hurt = _hurt(run, pre, post, bought_loss, bought_acc)
    return Cut(epoch, before, after, verdict, slope, t, sigma, bought_loss, bought_acc, is_planned(run), hurt)


def _hurt(run: Run, pre: np.ndarray, post: np.ndarray, d_loss: Optional[float], d_acc: Optional[float]) -> bool:
    """The val loss rose (or the accuracy fell) across the cut by more than HURT_Z standard errors of the
    difference of two window means, the noise taken from the curve itself."""
    for values, delta, sign in ((run.val["loss"], d_loss, 1.0), (run.val["accuracy"], d_acc, -1.0)):
        if delta is None:
            continue
        sigma = noise(values[np.isfinite(values)])
        n_pre, n_post = int(np.isfinite(values[pre]).sum()), int(np.isfinite(values[post]).sum())
        if sigma > 0 and n_pre and n_post and sign * delta > HURT_Z * sigma * math.sqrt(1 / n_pre + 1 / n_post):
            return True
    return False


@dataclass
class Rise:
    epoch: int  # first epoch at the higher LR
    lr_before: float
    lr_after: float
    peak_before: float  # the highest LR of the epochs before it

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def lr_rises(run: Run) -> list[Rise]:
    """Epochs where the LR jumped back up after it had decayed: warmup and one-cycle rise before they fall,
    never after, so any such jump is a schedule that restarted (e.g. a finished cosine run resumed with more
    epochs: its LR goes from the floor back to half its peak). A smooth schedule has none."""
    if "rises" not in run.memo:
        lr = run.train["learning_rate"]
        epochs = run.train.epochs
        rises, peak = [], -math.inf
        for i in range(1, len(lr)):
            if np.isfinite(lr[i - 1]):
                peak = max(peak, float(lr[i - 1]))
            if not (np.isfinite(lr[i]) and np.isfinite(lr[i - 1])) or lr[i] <= 0:
                continue
            decayed = lr[i - 1] * RISE_RATIO < peak
            if decayed and lr[i] > RISE_RATIO * lr[i - 1]:
                rises.append(Rise(int(epochs[i]), float(lr[i - 1]), float(lr[i]), peak))
        run.memo["rises"] = rises
    return run.memo["rises"]


def decayed_to_nothing(run: Run) -> Optional[dict]:
    """The LR spent the end of the run below DECAYED_SHARE x its peak, for at least max(3, 25%) of the epochs:
    the weights froze. None when the LR was not recorded or did not decay that far."""
    lr = run.train["learning_rate"]
    e = run.train.epochs
    ok = np.isfinite(lr)
    if ok.sum() < 2:
        return None
    peak = float(np.nanmax(lr))
    if peak <= 0:
        return None
    tiny = ok & (lr < DECAYED_SHARE * peak)
    # the final stretch of consecutive tiny epochs
    stretch = 0
    for is_tiny in tiny[::-1]:
        if not is_tiny:
            break
        stretch += 1
    planned = run.planned_epochs or int(e[-1])
    if stretch < max(DECAYED_MIN_EPOCHS, DECAYED_RUN_SHARE * planned):
        return None
    first = int(e[len(e) - stretch])
    return {"peak_lr": peak, "final_lr": float(lr[ok][-1]), "tiny_below": DECAYED_SHARE * peak,
            "tiny_from_epoch": first, "epochs_at_tiny_lr": stretch, "scheduler": run.cfg(SCHEDULER_NAME)}


def early_limit(run: Run) -> int:
    """The last epoch at which a first cut counts as early: the seed's 'within the first 5-10 epochs',
    scaled down for short runs (a quarter of the planned epochs)."""
    planned = run.planned_epochs or max(run.last_epoch, 1)
    return max(1, min(10, int(math.ceil(planned * 0.25))))


def relax_cuts(run: Run, floor: bool = False) -> list[Recommendation]:
    """The fixes for LR cuts that came too soon or too often, the most direct first: a relative threshold
    no epoch can meet, then patience, then (floor=True, when the cuts froze the weights) a min_lr."""
    recs = []
    if threshold := lower_plateau_threshold(run):
        share = run.cfg(SCHEDULER_THRESHOLD)
        recs.append(Recommendation(f"scheduler.threshold={share:g} asks each epoch to beat the best val loss by "
                                   f"{share * 100:g}%, so ReduceLROnPlateau cuts on almost every epoch: lower it",
                                   threshold))
    if uses(run, "scheduler", "plateau"):
        recs.append(Recommendation("give ReduceLROnPlateau more patience", raise_patience(run)))
    if floor and (min_lr := raise_min_lr(run)):
        recs.append(Recommendation("floor the LR, so the cuts stop before the weights freeze", min_lr))
    recs.append(Recommendation("use a schedule without early cuts (cosine decay over the whole run)",
                               ["scheduler=cosine"]))
    return recs
