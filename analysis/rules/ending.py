"""Rules on how a run ended: far below its own best validation accuracy, judged on the whole curve."""

from __future__ import annotations

import numpy as np

from rundir.config_keys import SCHEDULER_PATIENCE
from ..facts import at_chance, chance_accuracy, finite, val_size
from ..findings import Finding, Recommendation
from ..overrides import lower_lr, override, uses
from rundir.read import Run
from ..schedule import find_cuts
from ..stats import best_vs_last_quantile, binomial_se, noise
from .catalog import rule

ENDED_FAR_SHARE = 0.1  # ours: the final epoch lost over a tenth of what the best epoch had gained above chance ...
ENDED_MIN_EPOCHS = 4  # ... judged from 4 validated epochs on


@rule("ended_below_best", section="Accuracy", title="the last epoch ended far below the run's own best",
      source="ours: the best-of-N-epochs bias calibrated by simulation (stats.best_vs_last_quantile), at the "
             "validation set's binomial noise",
      thresholds={"drop": "best - final val accuracy above the 95% quantile of (max of the earlier epochs - the "
                          "last) on i.i.d. noise at the run's epoch count x the per-epoch noise (binomial SE at the "
                          "best when the val size is known, else the curve's second-difference noise)",
                  "far": f">= {ENDED_FAR_SHARE:.0%} of the best's gain above chance (1/C)",
                  "epochs": f">= {ENDED_MIN_EPOCHS} validated; not at chance"})
def ended_below_best(run: Run):
    acc = finite(run.val["accuracy"])
    if len(acc) < ENDED_MIN_EPOCHS or at_chance(run) is not None:
        return None
    best_i = int(np.argmax(acc))
    best, final = float(acc[best_i]), float(acc[-1])
    if best_i == len(acc) - 1:
        return None
    n_val = val_size(run)
    sigma = binomial_se(best, n_val) if n_val else noise(acc)
    threshold = best_vs_last_quantile(len(acc), 1) * sigma
    chance = chance_accuracy(run) or 0.0
    drop = best - final
    if drop <= threshold or drop < ENDED_FAR_SHARE * max(best - chance, 0.0):
        return None
    epochs = run.val.epochs[np.isfinite(run.val["accuracy"])]
    best_epoch, last_epoch = int(epochs[best_i]), int(epochs[-1])
    recs = [Recommendation("keep the best epoch's weights: checkpoints/best.pt", [])]
    patience = run.cfg(SCHEDULER_PATIENCE)
    if uses(run, "scheduler", "plateau") and not find_cuts(run) and isinstance(patience, int) and patience > 0:
        recs.append(Recommendation("let the plateau scheduler cut sooner: the LR was never cut",
                                   [override(SCHEDULER_PATIENCE, patience // 2)]))
    lower = lower_lr(run, 2)
    if lower:
        recs.append(Recommendation("lower the learning rate: validation fell from its best at this LR", lower))
    return Finding(
        "ended_below_best", "warning",
        f"val accuracy ended at {final:.4f} (epoch {last_epoch}), {drop:.4f} below its best {best:.4f} "
        f"(epoch {best_epoch}); noise threshold {threshold:.4f}",
        evidence={"best_val_accuracy": best, "best_epoch": best_epoch, "final_val_accuracy": final,
                  "last_epoch": last_epoch, "drop": drop, "threshold": threshold, "noise": sigma,
                  "noise_source": "binomial" if n_val else "curve", "far_share": ENDED_FAR_SHARE},
        recommendations=recs, epoch=last_epoch)
