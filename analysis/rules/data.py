"""Rules on the data pipeline, from the facts the trainer records in run_info.json."""

from __future__ import annotations

import math

from rundir.config_keys import DATA_MEAN, DATA_STD, REGULARIZATION_CLASS_WEIGHTS
from rundir.format import DUPLICATE_IMAGES
from ..findings import Finding, Recommendation
from ..overrides import fmt, override, undo_fault
from ..per_class import per_class
from ..facts import val_pipeline
from rundir.read import Run
from .catalog import rule

CHECK_DATA = Recommendation("inspect the pipelines and a batch grid: python -m trainer.check_data <same overrides>")

# Copies by content alone (no shared index) are critical from 5 % of validation: they can lift validation
# accuracy by up to that much, more than most differences between runs people compare.
DUPLICATE_CRITICAL_SHARE = 0.05
IMBALANCE_RATIO = 10.0  # SageMaker Debugger ClassImbalance: count(largest) / count(smallest) > 10
INPUT_MEAN_MAX = 0.2  # SageMaker Debugger CheckInputImages: |mean input pixel| > 0.2
INPUT_STD_BAND = (0.5, 2.0)  # ours: normalized inputs have a per-channel std near 1


@rule("transforms_not_separated", section="Data", title="validation goes through the training pipeline",
      source="recipe (transform-separation fix); UMLAUT's preprocessing-mismatch check",
      thresholds={"val pipeline": "must draw no random numbers", "instances": "one per split"})
def transforms_not_separated(run: Run):
    info = run.info or {}
    shared, val_random = val_pipeline(run)
    if not (shared or val_random):
        return None
    what = "validation is augmented at random" if val_random else "train and val share one pipeline object"
    return Finding(
        "transforms_not_separated", "critical" if val_random else "warning",
        f"{what}: validation metrics are measured on augmented images",
        evidence={"transforms_shared": shared, "val_transform_deterministic": not val_random,
                  "train_transform": info.get("train_transform"), "val_transform": info.get("val_transform")},
        recommendations=[
            Recommendation("give each split its own dataset instance with its own transform (every data= option "
                           "does: data=imagefolder is an example)", undo_fault(run)),
            CHECK_DATA,
        ])


@rule("train_val_overlap", section="Data", title="validation images also in the training set",
      source="UMLAUT OverconfidentValAccuracy (leakage); run_info.json index sets; Deepchecks image-hash leakage "
             "(content: exact and perceptual-hash duplicates, threshold calibrated per data set)",
      thresholds={"overlap": "> 0 shared indices, or > 0 validation images with a copy in train by content",
                  "critical by content alone": f">= {DUPLICATE_CRITICAL_SHARE:.0%} of validation"})
def train_val_overlap(run: Run):
    info = run.info or {}
    overlap = info.get("train_val_overlap")
    overlap = overlap if isinstance(overlap, int) and not isinstance(overlap, bool) and overlap > 0 else 0
    dup = info.get(DUPLICATE_IMAGES) if isinstance(info.get(DUPLICATE_IMAGES), dict) else {}
    copies = dup.get("val_images_with_duplicate")
    copies = copies if isinstance(copies, int) and not isinstance(copies, bool) and copies > 0 else 0
    if not overlap and not copies:
        return None
    val_size = info.get("val_size") if isinstance(info.get("val_size"), int) else 0
    share = overlap / val_size if val_size else None
    copy_share = copies / val_size if val_size else None
    if overlap:
        message = (f"{overlap} validation images are also training images"
                   + (f" ({share:.0%} of validation)" if share is not None else ""))
        if copies:
            message += f"; by content {copies} have a copy in train"
    else:
        message = (f"{copies} validation images have a copy in the training set by content "
                   f"({dup.get('exact_pairs', 0)} exact, {dup.get('near_pairs', 0)} near pairs"
                   + (f", {copy_share:.1%} of validation" if copy_share is not None else "") + ")")
    critical = bool(overlap) or (copy_share is not None and copy_share >= DUPLICATE_CRITICAL_SHARE)
    recs = [Recommendation("split train and val from disjoint index sets (seeded split, as "
                           "trainer/data.py's split_indices does)", undo_fault(run))] if overlap else []
    if copies:
        recs.append(Recommendation("remove the copies from one split: run_info.json duplicate_images names examples, "
                                   "python -m trainer.check_data <same overrides> lists them", [] if overlap else
                                   undo_fault(run)))
    return Finding(
        "train_val_overlap", "critical" if critical else "warning",
        message + ": validation accuracy is inflated",
        evidence={"overlap": overlap, "val_size": val_size, "share_of_val": share,
                  "duplicates_by_content": copies, "duplicate_share_of_val": copy_share,
                  "exact_pairs": dup.get("exact_pairs"), "near_pairs": dup.get("near_pairs"),
                  "threshold_bits": dup.get("threshold_bits"), "examples": (dup.get("examples") or [])[:5]
                  if isinstance(dup.get("examples"), list) else []},
        recommendations=recs + [CHECK_DATA])


@rule("label_out_of_range", section="Data", title="labels outside [0, C)",
      source="DeepDiagnosis 'out of range' (label vs output range); run_info.json label_range",
      thresholds={"labels": "must lie in [0, data.num_classes)"})
def label_out_of_range(run: Run):
    lr = (run.info or {}).get("label_range")
    c = run.num_classes
    if not (isinstance(lr, list) and len(lr) == 2 and all(isinstance(v, int) for v in lr) and c):
        return None
    lo, hi = lr
    if lo >= 0 and hi < c:
        return None
    recs = []
    if hi >= c:
        recs.append(Recommendation(f"the data holds at least {hi + 1} classes: set data.num_classes to match",
                                   [f"data.num_classes={hi + 1}"]))
    return Finding("label_out_of_range", "critical",
                   f"labels span [{lo}, {hi}] but the model has {c} outputs (data.num_classes={c})",
                   evidence={"label_range": lr, "num_classes": c}, recommendations=recs + [CHECK_DATA])


@rule("class_imbalance", section="Data", title="largest class over 10x the smallest",
      source="SageMaker Debugger ClassImbalance", thresholds={"max/min class count": IMBALANCE_RATIO})
def class_imbalance(run: Run):
    counts = (run.info or {}).get("class_counts")
    if not (isinstance(counts, list) and len(counts) >= 2 and all(isinstance(v, int) for v in counts)):
        return None
    lo, hi = min(counts), max(counts)
    if hi == 0 or (lo > 0 and hi / lo <= IMBALANCE_RATIO):
        return None
    ratio = math.inf if lo == 0 else hi / lo
    missing = [i for i, v in enumerate(counts) if v == 0]
    msg = (f"classes {missing[:10]} have no training images" if missing
           else f"the largest class has {ratio:.1f}x the images of the smallest")
    evidence = {"max_count": hi, "min_count": lo, "ratio": None if missing else round(ratio, 2),
                "threshold": IMBALANCE_RATIO, "empty_classes": missing}
    pc = per_class(run)
    if pc is not None:  # what the imbalance did: validation accuracy of the rarest and the largest classes
        by_count = sorted(range(len(counts)), key=lambda i: counts[i])
        rare, large = by_count[:min(5, len(counts) // 2)], by_count[::-1][:min(5, len(counts) // 2)]
        acc = {r["class"]: r for r in pc["classes"]}
        per = lambda ids: {str(i): {"train_images": counts[i], "val_accuracy": acc[i]["accuracy"],  # noqa: E731
                                    "ci": acc[i]["ci"]} for i in ids if i in acc}
        evidence.update(rarest_classes=per(rare), largest_classes=per(large), never_predicted=pc["never_predicted"],
                        per_class_epoch=pc["epoch"])
        if pc["never_predicted"]:
            msg += f"; {len(pc['never_predicted'])} classes are never predicted"
    return Finding("class_imbalance", "warning", msg, evidence=evidence, recommendations=rebalance(run))


def rebalance(run: Run) -> list[Recommendation]:
    """The fixes for classes the model neglects (class_imbalance and rules/per_class.py): the injected fault
    undone, else a class-balanced loss."""
    recs = []
    if undo_fault(run):
        recs.append(Recommendation("train without the injected fault", undo_fault(run)))
    if run.cfg(REGULARIZATION_CLASS_WEIGHTS) != "balanced":
        recs.append(Recommendation("weight the loss by inverse class frequency, so that every class counts the same "
                                   "however few its training images (or collect more images of these classes)",
                                   [override(REGULARIZATION_CLASS_WEIGHTS, "balanced")]))
    return recs + [CHECK_DATA]


@rule("input_not_normalized", section="Data", title="model inputs far from zero mean, unit variance",
      source="SageMaker Debugger CheckInputImages (mean); std band: ours",
      thresholds={"|channel mean|": f"> {INPUT_MEAN_MAX}", "channel std": f"outside {list(INPUT_STD_BAND)}"})
def input_not_normalized(run: Run):
    info = run.info or {}
    mean, std = info.get("input_mean"), info.get("input_std")
    if not (isinstance(mean, list) and isinstance(std, list) and mean and len(mean) == len(std)):
        return None
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in mean + std):
        return None
    bad_mean = [i for i, m in enumerate(mean) if abs(m) > INPUT_MEAN_MAX]
    bad_std = [i for i, s in enumerate(std) if not INPUT_STD_BAND[0] <= s <= INPUT_STD_BAND[1]]
    if not bad_mean and not bad_std:
        return None
    recs = []
    has_normalize = "Normalize" in str(info.get("train_transform", "Normalize"))
    cfg_mean, cfg_std = run.cfg(DATA_MEAN), run.cfg(DATA_STD)
    if not has_normalize:
        recs.append(Recommendation("the pipelines have no Normalize step: add it (data.mean and data.std hold the "
                                   "per-channel statistics)",
                                   undo_fault(run)))
    elif isinstance(cfg_mean, list) and isinstance(cfg_std, list) and len(cfg_mean) == len(mean) == len(cfg_std):
        # Measured after Normalize(cfg_mean, cfg_std): the raw statistics follow by undoing it.
        raw_mean = [round(m0 + m * s0, 4) for m0, m, s0 in zip(cfg_mean, mean, cfg_std)]
        raw_std = [round(s0 * s, 4) for s0, s in zip(cfg_std, std)]
        recs.append(Recommendation("set the normalization to the measured statistics of this data",
                                   [f"data.mean=[{','.join(fmt(v) for v in raw_mean)}]",
                                    f"data.std=[{','.join(fmt(v) for v in raw_std)}]"]))
    recs.append(CHECK_DATA)
    return Finding("input_not_normalized", "warning",
                   f"inputs are not normalized: channel mean {_fmt_list(mean)}, std {_fmt_list(std)} "
                   f"(expected about 0 and 1)",
                   evidence={"input_mean": mean, "input_std": std, "input_min": info.get("input_min"),
                             "input_max": info.get("input_max"), "mean_threshold": INPUT_MEAN_MAX,
                             "std_band": list(INPUT_STD_BAND)},
                   recommendations=recs)


def _fmt_list(values: list) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"
