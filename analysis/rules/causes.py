"""Why a run learned nothing, read from its own evidence, and the one fix for that cause.

Registers no rule. `accuracy_at_chance`, `loss_plateau_early`, `vanishing_gradients` and `dead_relu` see
the same failed run from different sides; they take their advice from here so that one report never
says "raise the LR" and "lower the LR" for the same run, and never blames weight decay or the epoch
count for a run whose weights did not move.
"""

from __future__ import annotations

from ..facts import DEAD_SHARE, UPDATE_RATIO_HUGE, UPDATE_RATIO_TINY, dead_relu_share, updates_huge, updates_tiny
from ..findings import Recommendation
from ..overrides import lower_lr, raise_lr, undo_fault
from rundir.read import Run

CHECK_LABELS = ("check that labels match images and that train/val transforms are right "
                "(python -m trainer.check_data <same overrides>)")
CHECK_LOOP = ("check the loop: model.train(), optimizer.zero_grad(), optimizer.step(), "
              "no softmax before CrossEntropyLoss")


def cause(run: Run) -> str:
    """The likeliest reason a run learned nothing, tested in this order (the first that holds wins):
    'lr_too_high' (non-finite steps or updates > 1e-1 of the weights), 'dead_relu' (most units of a
    layer never fire, so no gradient flows), 'lr_too_low' (updates < 1e-5 of the weights in every
    epoch), else 'data' (the weights move at a normal rate and still nothing transfers to validation:
    the labels or the pipeline)."""
    if updates_huge(run):
        return "lr_too_high"
    if dead_relu_share(run) > DEAD_SHARE:
        return "dead_relu"
    if updates_tiny(run):
        return "lr_too_low"
    return "data"


CAUSE_TEXT = {"lr_too_high": "the LR is too high", "dead_relu": "dead ReLUs pass no gradient",
              "lr_too_low": "the LR is too low to move the weights",
              "data": "the weights move normally, so the labels or the data cannot be learned"}


def dead_relu_fix(run: Run) -> Recommendation:
    """ReLUs dead without large updates were dead from the start: initialization, not the LR."""
    return Recommendation("the ReLUs are dead, so no gradient reaches the layers below and the LR cannot help: "
                          "fix their initialization (biases, BatchNorm shift) or the input scale", undo_fault(run))


def fixes(run: Run) -> list[Recommendation]:
    """The recommendations for a run that learned nothing, most likely fix first."""
    why = cause(run)
    if why == "lr_too_high":
        return [Recommendation(f"lower the learning rate (updates above {UPDATE_RATIO_HUGE:g} of the weights, or "
                               "non-finite steps)", lower_lr(run, 10)), Recommendation(CHECK_LOOP)]
    if why == "dead_relu":
        return [dead_relu_fix(run), Recommendation(CHECK_LOOP)]
    if why == "lr_too_low":
        return [Recommendation(f"raise the learning rate: the updates stay below {UPDATE_RATIO_TINY:g} of the weights, "
                               "too small to move them", raise_lr(run, 10)), Recommendation(CHECK_LOOP)]
    # Normal updates, gradients flowing, and still nothing learned: the labels cannot be learned from the images.
    return [Recommendation(CHECK_LABELS, undo_fault(run)), Recommendation(CHECK_LOOP)]
