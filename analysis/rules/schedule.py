"""Rules on the learning-rate schedule: early cuts, cuts made on noise, a learning rate out of range."""

from __future__ import annotations

from rundir.config_keys import (OPTIMIZER_LR, OPTIMIZER_NAME, SCHEDULER_COOLDOWN, SCHEDULER_NAME, SCHEDULER_PATIENCE,
                                SCHEDULER_STEP_SIZE, TRAINER_EPOCHS)
from ..findings import Finding, Recommendation
from ..overrides import lower_lr, override, raise_lr
from rundir.read import Run
from ..facts import ended_near_best
from ..progress import UNDERTRAINED_REMAINING, progress
from ..stats import trend
from ..schedule import CUT_RATIO, DECAYED_SHARE, decayed_to_nothing, early_limit, find_cuts, relax_cuts
from .catalog import rule

# UMLAUT LRHigh/LRLow bounds for Adam; the SGD band is ours (CIFAR recipes use 0.01-0.4).
LR_BANDS = {"adam": (1e-5, 1e-2), "adamw": (1e-5, 1e-2), "sgd": (1e-4, 1.0)}


@rule("lr_reduced_early", section="Learning Rate", title="the LR was cut within the first quarter of the run",
      source="recipe ('LR drops within first 5-10 epochs')",
      thresholds={"first cut": "at epoch <= min(10, 25% of trainer.epochs)", "cut": f"LR < {CUT_RATIO} x previous epoch's"})
def lr_reduced_early(run: Run):
    cuts = find_cuts(run)
    limit = early_limit(run)
    if not cuts or cuts[0].epoch > limit:
        return None
    first = cuts[0]
    if first.planned and not first.hurt:
        return None  # a step schedule's cut was planned, not a reaction to noise: judged only by what followed
    recs = relax_cuts(run) + [Recommendation("or start from a higher LR, so the cuts come later and matter", [])]
    stalled = first.verdict == "stalled"
    return Finding(
        "lr_reduced_early", "warning",
        f"LR cut at epoch {first.epoch} ({first.lr_before:.3g} -> {first.lr_after:.3g}), within the first "
        f"{limit} epochs; {len(cuts)} cut(s) in all"
        + ("" if first.verdict == "unknown" else f"; the val loss was {first.verdict} before it")
        + (f"; {first.after_text()}" if first.after_text() else ""),
        evidence={"cuts": [c.as_dict() for c in cuts], "early_limit_epoch": limit,
                  "scheduler": run.cfg(SCHEDULER_NAME), "patience": run.cfg(SCHEDULER_PATIENCE),
                  "val_loss_stalled_before_first_cut": stalled},
        recommendations=recs, epoch=first.epoch)


@rule("lr_cut_premature", section="Learning Rate", title="a cut came while the val loss was still falling",
      source="ours: scheduler-event attribution (val-loss slope vs its own noise, Student t at 95%)",
      thresholds={"still falling": "slope significantly < 0 (Student t, 95%) and predicted fall over the window > val-loss noise",
                  "cost": "not when the val loss fell after the cut, the run ended within noise of its best "
                          "(the best-vs-last window test) and the loss got within 25% of the way to its floor"})
def lr_cut_premature(run: Run):
    # A planned (step) cut is not premature by design; it counts only when the val loss measurably worsened.
    premature = [c for c in find_cuts(run) if c.verdict == "still improving" and (not c.planned or c.hurt)]
    # A cut that cost nothing is no fault: the val loss kept falling after it, the run ended within noise of its best,
    # and the loss still got (nearly) all the way to its floor. A run left far from its floor after its LR was cut
    # while improving paid for the cut, even when it ends at its best (it was still creeping up at a tiny LR).
    if ended_near_best(run) and _got_most_of_the_way(run):
        premature = [c for c in premature if not (c.bought_loss is not None and c.bought_loss < 0)]
    if not premature:
        return None
    c = premature[0]
    # The val loss was still improving beyond its noise: the scheduler must wait longer (or ask less).
    recs = relax_cuts(run)
    return Finding(
        "lr_cut_premature", "warning",
        f"the LR cut at epoch {c.epoch} came while the val loss was still falling "
        f"({c.val_slope:+.3g}/epoch, t={c.val_slope_t:.1f}, noise {c.val_noise:.2g})",
        evidence={"premature_cuts": [p.as_dict() for p in premature]}, recommendations=recs, epoch=c.epoch)


def _got_most_of_the_way(run: Run) -> bool:
    """The training loss ended within UNDERTRAINED_REMAINING of the way to its floor (progress.py's verdict)."""
    done = progress(run).get("loss_progress")
    return done is not None and 1 - done <= UNDERTRAINED_REMAINING


@rule("lr_out_of_range", section="Learning Rate", title="initial LR outside the usual band for the optimizer",
      source="UMLAUT LRHigh/LRLow (Adam band); SGD band ours",
      thresholds={k: list(v) for k, v in LR_BANDS.items()})
def lr_out_of_range(run: Run):
    name, lr = run.cfg(OPTIMIZER_NAME), run.cfg(OPTIMIZER_LR)
    if name not in LR_BANDS or not isinstance(lr, (int, float)) or isinstance(lr, bool):
        return None
    lo, hi = LR_BANDS[name]
    if lo <= lr <= hi:
        return None
    return Finding("lr_out_of_range", "info",
                   f"optimizer.lr={lr:g} is {'above' if lr > hi else 'below'} the usual band [{lo:g}, {hi:g}] for {name}",
                   evidence={"optimizer": name, "lr": lr, "band": [lo, hi]},
                   recommendations=[Recommendation("try an LR inside the band",
                                                   lower_lr(run, 10) if lr > hi else raise_lr(run, 10))])



@rule("lr_decayed_to_nothing", section="Learning Rate", title="the LR decayed to almost zero and the weights froze",
      source="ours (the LR schedule shape, as wandb-primary's lr_schedule_features; SageMaker WeightUpdateRatio idea)",
      thresholds={"LR": f"< {DECAYED_SHARE:g} x its peak", "for": "the last max(3, 25% of the run) epochs"})
def lr_decayed_to_nothing(run: Run):
    ev = decayed_to_nothing(run)
    if ev is None:
        return None
    y, e = run.train.finite("loss")
    frozen = y[e >= ev["tiny_from_epoch"]] if len(y) else y
    still_falling = len(frozen) >= 3 and trend(frozen).falling() and (frozen[0] - frozen[-1]) > 0.1 * abs(frozen[0])
    if still_falling:
        return None  # a loss that still falls clearly at the tiny LR is not frozen
    recs = relax_cuts(run, floor=True) if run.cfg(SCHEDULER_NAME) == "plateau" else [
        Recommendation("decay the LR smoothly over the whole run instead of cutting it to nothing", ["scheduler=cosine"])]
    return Finding("lr_decayed_to_nothing", "warning",
                   f"the LR decayed to {ev['final_lr']:.3g} (below {DECAYED_SHARE:g} x its peak {ev['peak_lr']:.3g}) from "
                   f"epoch {ev['tiny_from_epoch']}: the last {ev['epochs_at_tiny_lr']} epochs barely moved the weights",
                   evidence=ev, recommendations=recs, epoch=ev["tiny_from_epoch"])


@rule("lr_never_cut", section="Learning Rate", title="a scheduler that cuts the LR never did: the run trained at a constant LR",
      source="ours (torch.optim.lr_scheduler.ReduceLROnPlateau cuts after `patience` epochs without improvement; "
             "StepLR every `step_size` epochs)",
      thresholds={"scheduler": "plateau or step", "cuts": f"none (LR < {CUT_RATIO} x the previous epoch's)",
                  "plateau": "more than patience + cooldown + 1 epochs (it had the chance)",
                  "step": "step_size >= the planned epochs (it could not cut)", "severity": "info"})
def lr_never_cut(run: Run):
    """What a sweep calls an axis "not exercised", in one run's report: the scheduler chosen to cut the LR left it
    where it started, so the run is a constant-LR run (its last epochs as noisy as its middle ones)."""
    name = run.cfg(SCHEDULER_NAME)
    if name not in ("plateau", "step") or find_cuts(run):
        return None
    lr, _ = run.train.finite("learning_rate")
    if not len(lr):
        return None
    anneal = Recommendation("anneal the LR over the run", ["scheduler=cosine"])
    if name == "step":
        size, epochs = run.cfg(SCHEDULER_STEP_SIZE), run.cfg(TRAINER_EPOCHS)
        if not isinstance(size, int) or not isinstance(epochs, int) or isinstance(epochs, bool) or size < epochs:
            return None
        return Finding("lr_never_cut", "info",
                       f"scheduler=step (step_size {size}) cannot cut within the run's {epochs} epochs: the run "
                       f"trained at a constant {float(lr[-1]):.3g}",
                       evidence={"step_size": size, "epochs": epochs, "learning_rate": float(lr[-1])},
                       recommendations=[Recommendation("cut at a third and two thirds of the run",
                                                       [override(SCHEDULER_STEP_SIZE, max(1, epochs // 3))]), anneal],
                       epoch=run.last_epoch)
    patience, cooldown = run.cfg(SCHEDULER_PATIENCE), run.cfg(SCHEDULER_COOLDOWN) or 0
    if not isinstance(patience, int) or not isinstance(cooldown, int) or run.last_epoch <= patience + cooldown + 1:
        return None
    return Finding("lr_never_cut", "info",
                   f"scheduler=plateau (patience {patience}) never cut the LR in {run.last_epoch} epochs: the run "
                   f"trained at a constant {float(lr[-1]):.3g}",
                   evidence={"patience": patience, "cooldown": cooldown, "epochs": run.last_epoch,
                             "learning_rate": float(lr[-1])},
                   recommendations=[anneal], epoch=run.last_epoch)
