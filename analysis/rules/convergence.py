"""Rules on how far a run got (analysis/progress.py's verdict): a run that ended far from converged always gets
a warning, named for what its curves say: it barely moved, it was still falling steeply, or it flattened far
above its floor."""

from __future__ import annotations

from rundir.config_keys import TRAINER_EPOCHS
from rundir.read import Run
from ..findings import Finding, Recommendation
from ..overrides import override
from ..progress import (FAR_SHARE, NOT_LEARNING_SHARE, PROJECTED_GAIN, STEEP_SHARE_PER_EPOCH, UNDERTRAINED_REMAINING,
                        progress, unfinished)
from . import causes
from .catalog import rule


def _ended(run: Run) -> bool:
    """Judged once the run has trained what it planned (live findings see a run part-way: not yet)."""
    planned = run.planned_epochs
    return run.state != "running" or planned is None or run.last_epoch >= planned


def _evidence(p: dict) -> dict:
    keys = ("loss_progress", "loss_progress_lower_bound", "remaining", "start", "start_source", "end", "floor",
            "floor_source", "judged_floor", "judged_floor_source", "still_falling", "slope", "val", "projection",
            "more_epochs_pay")
    return {k: p.get(k) for k in keys}


def _fixes(run: Run) -> list[Recommendation]:
    """The differential diagnosis's fix for the run (its primary cause first)."""
    return causes.fixes(run)


@rule("not_learning", section="Progress", title="the training loss barely moved from its start",
      source="ours: the progress verdict (analysis/progress.py); the share of the way from the start (ln C or the "
             "first epoch) to the loss floor",
      thresholds={"moved": f"< {NOT_LEARNING_SHARE:.0%} of the way to the floor (floor known, or the loss still "
                           ">= 0.9 ln C when it is not)", "judged": "once the run has trained its planned epochs"})
def not_learning(run: Run):
    p = progress(run)
    if p["verdict"] != "not learning" or not _ended(run):
        return None
    return Finding("not_learning", "warning",
                   f"the training loss went {p['loss_progress']:.0%} of the way from {p['start']:.4g} to "
                   f"its floor {p['judged_floor']:.3g} (ended at {p['end']:.4g}); likely cause: {causes.cause_text(run)}",
                   evidence=_evidence(p), recommendations=_fixes(run), epoch=run.last_epoch)


@rule("undertrained", section="Progress", title="the loss was still falling when the run ended, far from its floor",
      source="ours: the progress verdict (last-window slope with its 95% interval, or the last epoch's own fall)",
      thresholds={"falling": f"significantly (Student t, 95%) or by the last epoch alone, at >= "
                             f"{STEEP_SHARE_PER_EPOCH:.0%} of the way to the floor per epoch (at any rate when the "
                             "floor is known); or val accuracy still rising >= 1 point/epoch (significant)",
                  "far": f"> {UNDERTRAINED_REMAINING:.0%} of the way to the floor still ahead",
                  "or more epochs pay": f"twice the training projected to raise val accuracy by >= "
                                        f"{PROJECTED_GAIN:.0%} at the low end of its 95% interval (the tail fitted "
                                        "against training time: a decayed LR's small last slope is no sign of "
                                        "convergence)"})
def undertrained(run: Run):
    p = progress(run)
    remaining = p.get("remaining")
    pays = bool(p.get("more_epochs_pay"))
    if not unfinished(p) or not _ended(run):
        return None
    recs = _fixes(run)
    epochs = run.cfg(TRAINER_EPOCHS)
    if isinstance(epochs, int) and not isinstance(epochs, bool) and 1 <= epochs < 50_000 and not any(
            o.startswith(f"{TRAINER_EPOCHS}=") for r in recs for o in r.overrides):
        recs.append(Recommendation("train longer: the loss was still falling at the end",
                                   [override(TRAINER_EPOCHS, 2 * epochs)]))
    s = p["slope"]
    way = (f" with {remaining:.0%} of the way to its floor {p['judged_floor']:.3g} ahead"
           if remaining is not None and p.get("judged_floor") is not None else "")
    va = (p.get("projection") or {}).get("val_accuracy") or {}
    buys = (f"; twice the training would raise val accuracy by {va['gain_lower95']:.0%} or more (projected "
            f"to ~{va['projected']:.3f})" if pays else "")
    return Finding("undertrained", "warning",
                   f"the training loss was still falling at the end ({(s['slope_per_epoch'] or 0):+.3g}"
                   f"/epoch, {(s['share_of_way_per_epoch'] or 0):.0%} of the way per epoch){way}{buys}; likely cause: "
                   f"{causes.cause_text(run)}",
                   evidence=_evidence(p), recommendations=recs, epoch=run.last_epoch)


@rule("far_from_converged", section="Progress", title="the run ended far from its loss floor, no longer falling fast",
      source="ours: the progress verdict (analysis/progress.py)",
      thresholds={"remaining": f"> {FAR_SHARE:.0%} of the way from the start to the floor (crawling or flat), or "
                               f"> {UNDERTRAINED_REMAINING:.0%} with the loss flat at the end and the floor known",
                  "and": "neither not learning nor still falling steeply"})
def far_from_converged(run: Run):
    # "stalled" is the verdict of a run crawling with over FAR_SHARE of the way ahead, or flat with over
    # UNDERTRAINED_REMAINING ahead (a schedule that took the LR away leaves it there: on digits, 0.93 against 0.99).
    # With the floor unknown the way is measured against an assumed one: only the wider margin warns.
    p = progress(run)
    limit = UNDERTRAINED_REMAINING if p.get("floor") is not None else FAR_SHARE
    if p["verdict"] != "stalled" or not (p.get("remaining") or 0) > limit or not _ended(run):
        return None
    return Finding("far_from_converged", "warning",
                   f"the training loss ended at {p['end']:.4g}, {p['remaining']:.0%} of the way "
                   f"from {p['start']:.4g} to its floor {p['judged_floor']:.3g} still ahead, and it no longer fell "
                   f"steeply; likely cause: {causes.cause_text(run)}",
                   evidence=_evidence(p), recommendations=_fixes(run), epoch=run.last_epoch)
