"""Rules on the per-class results: the validation confusion matrices (analysis/per_class.py).

An average accuracy hides a class the model gave up on. Each rule here must hold in each of the last
PERSIST_EPOCHS recorded epochs (a class can go unpredicted for one epoch by chance early on).
"""

from __future__ import annotations

from typing import Optional

from rundir.read import Run
from ..findings import Finding
from ..per_class import (COLLAPSE_MIN_SHARE, MAJORITY_FACTOR, PERSIST_EPOCHS, at_chance, class_names, collapse,
                         majority_classes, never_predicted, per_class, recent)
from .catalog import rule
from .data import rebalance

_PERSIST = f"in each of the last {PERSIST_EPOCHS} recorded epochs (all of a run planned shorter)"


def _train_counts(run: Run, classes: list[int]) -> dict[str, Optional[int]]:
    counts = (run.info or {}).get("class_counts")
    ok = isinstance(counts, list) and all(type(v) is int for v in counts)
    return {str(i): (counts[i] if ok and i < len(counts) else None) for i in classes}


def _names(run: Run, classes: list[int], c: int) -> str:
    names = class_names(run, c)
    shown = ", ".join(names[i] for i in classes[:10])
    return shown + (f" and {len(classes) - 10} more" if len(classes) > 10 else "")


@rule("class_never_predicted", section="Accuracy", title="a class the model never predicts",
      source="ours (confusion matrix column sums; fastai most_confused, torchmetrics per-class recall)",
      thresholds={"predictions of the class": f"0 {_PERSIST}", "its validation images": "> 0"})
def class_never_predicted(run: Run):
    mats = recent(run)
    if not mats:
        return None
    classes = sorted(set.intersection(*(never_predicted(m) for m in mats)))
    if not classes:
        return None
    pc = per_class(run)
    c = mats[-1].shape[0]
    return Finding(
        "class_never_predicted", "warning",
        f"{len(classes)} of {c} classes are never predicted ({_names(run, classes, c)}): their validation images "
        f"all go to other classes",
        evidence={"classes": classes, "epochs_unpredicted": {str(i): pc["never_predicted_epochs"].get(str(i))
                                                             for i in classes} if pc else {},
                  "val_images": {str(i): int(mats[-1][i].sum()) for i in classes},
                  "train_images": _train_counts(run, classes), "persist_epochs": PERSIST_EPOCHS},
        recommendations=rebalance(run))


@rule("class_at_chance", section="Accuracy", title="a class recognised at chance while the others learn",
      source="ours (Wilson score intervals on per-class accuracy against 1/C and against the other classes)",
      thresholds={"class accuracy": "95 % Wilson interval reaches 1/C, and nearer 1/C than the others' accuracy",
                  "other classes": "95 % interval wholly above 1/C and above the class's",
                  "persistence": _PERSIST})
def class_at_chance(run: Run):
    mats = recent(run)
    if not mats:
        return None
    tests = [at_chance(m) for m in mats]
    classes = sorted(set.intersection(*(set(t) for t in tests)))
    if not classes:
        return None
    last = tests[-1]
    pc = per_class(run)
    confused = {}
    for pair in (pc or {}).get("most_confused", []):
        confused.setdefault(str(pair["true"]), pair["predicted"])
    c = mats[-1].shape[0]
    return Finding(
        "class_at_chance", "warning",
        f"{len(classes)} of {c} classes are recognised no better than chance ({_names(run, classes, c)}) while "
        f"the others reach {last[classes[0]]['others_accuracy']:.0%}",
        evidence={"classes": {str(i): last[i] for i in classes}, "chance": round(1 / c, 4),
                  "most_confused_with": {str(i): confused.get(str(i)) for i in classes},
                  "train_images": _train_counts(run, classes), "persist_epochs": PERSIST_EPOCHS},
        recommendations=rebalance(run))


@rule("majority_class_collapse", section="Accuracy", title="predictions collapse onto the majority class",
      source="ours (confusion matrix column sums against the training class counts; SageMaker Debugger "
             "ClassImbalance's per-class mispredictions)",
      thresholds={"one class's share of predictions": f">= {COLLAPSE_MIN_SHARE} and over halfway from its share of "
                                                      f"the labels to 1",
                  "that class": f"the largest training class, >= {MAJORITY_FACTOR}x the median class",
                  "persistence": _PERSIST})
def majority_class_collapse(run: Run):
    mats = recent(run)
    majority = majority_classes((run.info or {}).get("class_counts"))
    if not mats or not majority:
        return None
    found = [collapse(m) for m in mats]
    if any(f is None for f in found) or len({f["class"] for f in found}) != 1 or found[-1]["class"] not in majority:
        return None
    top = found[-1]
    k = top["class"]
    counts = (run.info or {}).get("class_counts")
    name = class_names(run, mats[-1].shape[0])[k]
    return Finding(
        "majority_class_collapse", "critical",
        f"{top['share_of_predictions']:.0%} of validation images are predicted as class {name}, the largest training "
        f"class, whose images are {top['share_of_labels']:.0%} of them: the model learned the class prior, not the images",
        evidence={**top, "name": name, "train_images": counts[k], "median_train_images": sorted(counts)[len(counts) // 2],
                  "persist_epochs": PERSIST_EPOCHS},
        recommendations=rebalance(run))
