"""The rule on the training labels themselves, from each image's dynamics (analysis/label_noise.py), with the
second signal beside it: confident learning on the validation predictions, which says whether the validation
labels share the noise."""

from __future__ import annotations

from rundir.config_keys import REGULARIZATION_LABEL_SMOOTHING, TRAINER_EPOCHS
from rundir.read import Run
from ..findings import Finding, Recommendation
from ..label_noise import confident_learning, estimate, signals
from ..overrides import override, undo_fault
from .catalog import rule

# The lower end of the estimate's interval must exceed this share: Northcutt et al. (2021) found 3.3 % of the
# labels wrong on average across ten benchmark test sets, so a few per cent is the usual state of real data.
NOISE_MIN = 0.05
SMOOTHING_MIN, SMOOTHING_MAX = 0.1, 0.3  # label smoothing of about the noise share, within the usual range


@rule("label_noise_suspected", section="Data", title="a share of the training labels looks wrong",
      source="Pleiss et al. 2020 (area under the margin); Northcutt et al. 2021 (confident learning on the "
             "validation predictions, the second signal; the floor)",
      thresholds={"labels contradicted by the model before memorization": f"the interval's lower end > {NOISE_MIN:.0%}",
                  "and above the validation error": "more training labels contradicted than validation images "
                                                    "missed (95 % bounds)",
                  "validation labels (confident learning)": "reported beside it, compared by 95 % intervals: "
                                                            "lower says the noise is in the training set only"})
def label_noise_suspected(run: Run):
    e = estimate(run)
    # Right labels of hard images are contradicted at most as often as held-out images are missed (excess <= 0).
    if e is None or e["interval"][0] <= NOISE_MIN or e["excess"] <= 0:
        return None
    lo, hi = e["interval"]
    first, last = e["window_epochs"]
    flips = ", ".join(f"{f['label']} -> {f['looks_like']} ({f['images']})" for f in e["flips"][:3])
    cl, both = confident_learning(run), signals(run)
    second = ""
    if both is not None:
        v_lo, v_hi = cl["interval"]
        second = (f". Confident learning on the validation predictions (epoch {cl['epoch']}): {cl['share']:.0%} of "
                  f"the validation labels look wrong ({v_lo:.0%} to {v_hi:.0%}); {both['says']}")
    return Finding(
        "label_noise_suspected", "warning",
        f"about {e['share']:.0%} of the training labels look wrong (95 % interval {lo:.0%} to {hi:.0%}): in epochs "
        f"{first}-{last} the model predicted one other class for them epoch after epoch while it learned the rest"
        + (f"; most often label -> predicted: {flips}" if flips else "") + second,
        evidence={**{k: v for k, v in e.items() if k != "suspects"}, "threshold": NOISE_MIN,
                  "suspects": e["suspects"][:8],
                  "val_confident_learning": None if cl is None else {**{k: v for k, v in cl.items()
                                                                         if k != "suspects"},
                                                                      "suspects": cl["suspects"][:8]},
                  "signals_compared": None if both is None else both["comparison"]},
        recommendations=fixes(run, e))


def fixes(run: Run, e: dict) -> list[Recommendation]:
    recs = [Recommendation("clean the labels: review the suspected images (the report's label noise section lists "
                           "them by training index; python -m trainer.check_data <same overrides> "
                           "losses_from=<run dir> shows the top-loss ones)", undo_fault(run))]
    smoothing = run.cfg(REGULARIZATION_LABEL_SMOOTHING)
    target = round(min(SMOOTHING_MAX, max(SMOOTHING_MIN, e["share"])), 1)
    if isinstance(smoothing, (int, float)) and not isinstance(smoothing, bool) and smoothing < target:
        recs.append(Recommendation("or train with label smoothing of about the noise share: it caps the "
                                   "confidence a wrong label can demand", [override(REGULARIZATION_LABEL_SMOOTHING,
                                                                                   target)]))
    stop, epochs = e.get("memorization_epoch"), run.cfg(TRAINER_EPOCHS)
    if isinstance(stop, int) and isinstance(epochs, int) and not isinstance(epochs, bool) and stop < epochs:
        recs.append(Recommendation(f"or stop before the wrong labels are memorized: the val loss was best at "
                                   f"epoch {stop}", [override(TRAINER_EPOCHS, stop)]))
    return recs
