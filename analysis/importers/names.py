"""Other tools' metric names -> the record fields the rules read (`train.loss`, `val.accuracy`, ...).

One table for every format: Lightning (`val_acc`, `val/acc`, `train_loss_epoch`, `lr-SGD`), Keras
(`loss`, `val_accuracy`), Hugging Face (`eval_loss`, `eval_accuracy`, `grad_norm`), timm (`eval_top1`),
TensorBoard tags (`Loss/train`, `Accuracy/val`). A name the table does not know is listed in the report
as not imported; `--map NAME=FIELD` maps it (or `--map NAME=ignore` drops one the table maps wrongly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from rundir.format import NUMERIC_FIELDS, logger_field
from rundir.read import RunError


STAGES = ("train", "val")
IGNORE = "ignore"

# Stage words, as prefixes (`val_acc`, `val/acc`, `eval_loss`) or suffixes (`acc_val`, `Loss/train`).
_TRAIN_WORDS = ("train", "training", "tr")
_VAL_WORDS = ("val", "valid", "validation", "eval", "evaluation", "dev", "v")  # v: v_loss, v_accuracy (TF loops)
_TEST_WORDS = ("test", "testing")
# Metric words -> record field. Anything else (`acc_best`, `precision`, `runtime`) is not imported.
_METRICS = {
    "loss": "loss", "nll": "loss", "xent": "loss", "cross_entropy": "loss", "ce": "loss",
    "acc": "accuracy", "accuracy": "accuracy", "top1": "accuracy", "acc1": "accuracy", "acc@1": "accuracy",
    "top_1": "accuracy", "top1_acc": "accuracy", "top1_accuracy": "accuracy",
    "categorical_accuracy": "accuracy", "sparse_categorical_accuracy": "accuracy",
    "top5": "top5_accuracy", "acc5": "top5_accuracy", "acc@5": "top5_accuracy", "top_5": "top5_accuracy",
    "top5_acc": "top5_accuracy", "top5_accuracy": "top5_accuracy",
    "lr": "learning_rate", "learning_rate": "learning_rate", "learning-rate": "learning_rate",
    "grad_norm": "mean_grad_norm", "gradient_norm": "mean_grad_norm",
}
# Scores read as the accuracy column when a stage logs no accuracy (Hugging Face's eval_f1): named in
# the report, since chance-level checks assume an accuracy.
SCORE_FALLBACKS = ("f1", "f1_score", "f1_macro", "macro_f1", "f1_weighted", "balanced_accuracy", "auroc", "auc",
                   "roc_auc", "matthews_correlation", "mcc", "iou", "miou", "map", "dice")
# Lightning's LearningRateMonitor: lr-<Optimizer>, lr-<Optimizer>/pg<N> with several param groups,
# lr-<Optimizer>-momentum with log_momentum=True.
_LR_MONITOR = re.compile(r"^lr-[^/]+?(/pg1)?$")


@dataclass(frozen=True)
class Target:
    stage: str  # train or val
    field: str  # a record field (records.NUMERIC_FIELDS)
    preferred: bool = False  # an epoch-level value (Lightning's `_epoch` suffix) beats a per-step one
    key: Optional[str] = None  # in a mapping field (layer_grad_norms): the layer

    def __str__(self) -> str:
        return f"{self.stage}.{self.field}" + (f".{self.key}" if self.key else "")


def parse_map(items: list[str]) -> dict[str, Optional[Target]]:
    """`--map NAME=FIELD` options -> {name: Target, or None for `ignore`}; a bad one raises RunError."""
    out: dict[str, Optional[Target]] = {}
    allowed = sorted(NUMERIC_FIELDS)
    for item in items:
        name, sep, field = item.rpartition("=")
        name, field = name.strip(), field.strip()
        if not sep or not name:
            raise RunError(f"--map {item!r}: expected NAME=FIELD, e.g. --map val/top1=val.accuracy")
        if field == IGNORE:
            out[name] = None
            continue
        stage, _, fld = field.partition(".")
        if stage not in STAGES or fld not in NUMERIC_FIELDS:
            raise RunError(f"--map {item!r}: FIELD must be train.X or val.X (or ignore) with X one of "
                           f"{', '.join(allowed)}")
        out[name] = Target(stage, fld, preferred=True)
    return out


def split_stage(name: str) -> tuple[Optional[str], str]:
    """('val', 'acc') for val_acc, val/acc, acc_val, Accuracy/val, eval_top1; (None, name) without a stage word."""
    low = name.strip().lower()
    for words, stage in ((_TRAIN_WORDS, "train"), (_VAL_WORDS, "val"), (_TEST_WORDS, "test")):
        for w in words:
            for sep in ("_", "/", "-", "."):
                if low.startswith(w + sep):
                    return stage, low[len(w) + 1:]
                if low.endswith(sep + w):
                    return stage, low[: -len(w) - 1]
    return None, low


def target(name: str, user: Optional[dict[str, Optional[Target]]] = None, default_stage: str = "train") -> Optional[Target]:
    """The record field a metric name maps to, or None (not imported). Names without a stage word
    (Keras's `loss`, Hugging Face's `loss`) are default_stage's."""
    if user and name in user:
        return user[name]
    ours = logger_field(name.strip())  # the trainer's own TensorBoard/MLflow names: every record field
    if ours is not None:
        return Target(ours[0], ours[1], key=ours[2])
    low = name.strip().lower()
    if _LR_MONITOR.match(low) and not low.endswith("-momentum"):
        return Target("train", "learning_rate")
    stage, metric = split_stage(low)
    if stage == "test":
        return None  # a test set is no validation set: test_* rows are left out
    preferred = False
    for suffix, pref in (("_epoch", True), ("_step", False)):  # Lightning's on_step+on_epoch pairs
        if metric.endswith(suffix):
            metric, preferred = metric[: -len(suffix)], pref
    for prefix, pref in _KERAS_PREFIXES:  # Keras's TensorBoard callback: epoch_loss, batch_loss
        if metric.startswith(prefix):
            metric, preferred = metric[len(prefix):], pref
    field = _METRICS.get(metric)
    if field is None:
        return None
    if field in ("learning_rate", "mean_grad_norm"):  # optimizer facts belong to the training records
        return Target("train", field, preferred)
    return Target(stage or default_stage, field, preferred)


_KERAS_PREFIXES = (("epoch_", True), ("batch_", False))


def has_stage(name: str) -> bool:
    """True when the name says its stage (val_loss, Loss/train, test/acc); False for loss, epoch_accuracy."""
    return split_stage(name)[0] is not None


def epoch_level(name: str) -> bool:
    """A Keras epoch-level tag (epoch_loss, validation/epoch_accuracy), whose step is the epoch."""
    return split_stage(name)[1].startswith(_KERAS_PREFIXES[0][0])


def score_fallback(name: str, default_stage: str = "train") -> Optional[Target]:
    """For a stage without accuracy: the score read as its accuracy column (eval_f1 -> val.accuracy)."""
    stage, metric = split_stage(name)
    if stage == "test" or metric not in SCORE_FALLBACKS:
        return None
    return Target(stage or default_stage, "accuracy")
