"""The run directory's format: file names, and every diagnostics record field with its unit and meaning.

This is the one place these are defined. The trainer writes through `rundir.files`, the analysis reads
through `rundir.read`; the numeric field sets the readers check, and docs/diagnostics-fields.md
(`python -m rundir.fields_doc`), are derived from FIELDS below, and a test trains a tiny run and compares
what it wrote with this table. Field names are public and stable: add fields, never rename one.

    <run dir>/
      .hydra/{config,overrides,hydra}.yaml   Hydra's record of the composed config and the command line
      diagnostics/                           DIAGNOSTICS (or wherever diagnostics.dir / DIAGNOSTICS_DIR says)
        train_diagnostics.jsonl              one TRAIN record per epoch
        val_diagnostics.jsonl                one VAL record per epoch
        val_confusion.jsonl                  CONFUSION_JSONL: the confusion matrices, when C > CONFUSION_INLINE_MAX
        run_info.json                        facts about data, model and machine, and the resolved config
        status.json                          running | completed | failed | preempted, with progress
        per_sample/                          PER_SAMPLE_DIR: each training image's loss, margin and prediction
          labels.npz                         the training labels as trained (once, at start)
          epoch_0001.npz ...                 one per epoch (PER_SAMPLE_FIELDS)
          top_losses.npz                     thumbnails of the highest-loss training images (at the end)
          val_predictions.npz                VAL_PREDICTIONS: the best epoch's predicted probabilities per val image
      diagnostics_dir.json                   only when the diagnostics went elsewhere: {"diagnostics_dir": ABS}
      checkpoints/                           last.pt, best.pt (trainer/checkpoint.py)
      .traindx.lock                          LOCK: held (flock) by the one process writing the run
      .hydra.accepted/                       HYDRA_ACCEPTED: .hydra/ as the last launch that passed every check had it
      <job name>.log                         the trainer's log (Hydra's job logging)
    <sweep dir>/multirun.yaml, <job.num>/    a Hydra multirun: one run directory per job
"""

from __future__ import annotations

from .config_keys import DATA_DOWNLOAD, DATA_LOADER, DATA_NUM_WORKERS, DATA_ROOT, OPTIMIZER_LR

from dataclasses import dataclass

# ───────────────────────────── file names ─────────────────────────────

DIAGNOSTICS = "diagnostics"  # the default diagnostics directory inside a run directory
TRAIN_JSONL, VAL_JSONL = "train_diagnostics.jsonl", "val_diagnostics.jsonl"
RUN_INFO, STATUS = "run_info.json", "status.json"
# run_info.json's key holding the run's id (uuid4 hex), the same in its checkpoints: the marker that a
# directory holds a traindx run (nothing in a directory without it is ever deleted) and the run's identity
# (the path is not: a moved run directory is the same run).
RUN_ID = "run_id"
# In the run directory (and in a diagnostics directory outside it): an exclusive flock held for the whole
# run by the one process that writes it; while held it names the holder ("pid 123 on host h since ...").
LOCK = ".traindx.lock"
# The validation confusion matrix (CONFUSION_FIELD) goes into each VAL record for at most CONFUSION_INLINE_MAX
# classes (20 x 20 counts: about 1 KB a line); with more (CIFAR-100: 100 x 100) the VAL records stay small
# and the matrices go, one {"epoch": E, CONFUSION_FIELD: [[...]]} line per epoch, into CONFUSION_JSONL.
CONFUSION_FIELD, CONFUSION_JSONL, CONFUSION_INLINE_MAX = "confusion_matrix", "val_confusion.jsonl", 20
# run_info.json's record of images found in both splits by content (trainer/duplicates.py): counts of exact
# and near pairs, val images with a copy in train, the calibrated Hamming threshold, examples
DUPLICATE_IMAGES = "duplicate_images"
# run_info.json's record of the image files an image folder's scan left out (data.skip_bad_images=true,
# trainer/image_folder.py); RUN_INFO_FIELDS says what it holds
SKIPPED_IMAGES = "skipped_images"
# In a run directory whose diagnostics went elsewhere (DIAGNOSTICS_DIR, diagnostics.dir): where they went.
# Hydra records `${oc.env:DIAGNOSTICS_DIR,...}`, not its value, so the trainer writes this file itself.
DIAGNOSTICS_POINTER = "diagnostics_dir.json"
POINTER_KEY = "diagnostics_dir"  # the pointer's one key: the absolute path of the diagnostics directory
HYDRA_DIR = ".hydra"
HYDRA_CONFIG, HYDRA_OVERRIDES, HYDRA_RUNTIME = "config.yaml", "overrides.yaml", "hydra.yaml"
# Hydra rewrites .hydra/ on every launch, before any check of ours can run: a copy of .hydra/ as the last
# launch that passed every check wrote it, put back when a later launch is refused (trainer/job.py).
HYDRA_ACCEPTED = ".hydra.accepted"
MULTIRUN_YAML = "multirun.yaml"  # in a sweep directory, written by Hydra before any job runs
# Beside status.json, once a live finding has held (trainer/live.py): per finding id its severity, message
# and the epoch ranges in which it held ("epochs": [[first, last], ...]), whether it still holds ("active")
# and whether it stopped the run ("stopped_run"); plus "persist_epochs" and "last_epoch".
LIVE_FINDINGS = "live_findings.json"
# <run dir>/verify/<timestamp>/verify.json: a `python -m analysis RUN --verify` sweep's plan and result.
VERIFY_DIR, VERIFY_JSON = "verify", "verify.json"
# `python -m trainer.lr_find`'s LR range test (trainer/lr_find.py), in its own Hydra run directory
# outputs/LR_FIND_DIR/<date>/<time>/: the curve and the suggestion (LR_FIND_FIELDS), and a plot of them.
LR_FIND_JSON, LR_FIND_PNG = "lr_find.json", "lr_find.png"
LR_FIND_DIR = "lr_find"  # conf/lr_find.yaml puts its run directories under outputs/lr_find/
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT, BEST_CHECKPOINT = "last.pt", "best.pt"  # every epoch; when validation accuracy improves
# last.pt.sha256 beside last.pt (trainer/checkpoint.py): its digest first, then those of the files it replaced
CHECKSUM_SUFFIX = ".sha256"
LOG_SUFFIX = ".log"

# Per-sample records (trainer/per_sample.py writes them, rundir/per_sample.py reads them): NumPy .npz files of
# plain arrays, read with allow_pickle=False (no code runs on reading), indexed by the position of the image in
# the training set (0 .. train_size - 1, the order of run_info's training split).
PER_SAMPLE_DIR = "per_sample"
PER_SAMPLE_LABELS = "labels.npz"  # "labels" (int32, N): each training image's label as trained (faults included)
PER_SAMPLE_EPOCH = "epoch_{epoch:04d}.npz"  # .format(epoch=...): one epoch's arrays, PER_SAMPLE_FIELDS
TOP_LOSSES = "top_losses.npz"  # TOP_LOSS_FIELDS, written once training ends
# The validation pass of the best epoch so far, per validation image by its position in the validation set
# (VAL_PREDICTION_FIELDS; trainer/val_predictions.py): replaced whenever the validation accuracy improves, so at
# most once an epoch. Confident learning (Northcutt et al. 2021, analysis/label_noise.py) reads it.
VAL_PREDICTIONS = "val_predictions.npz"
# The most probable classes kept per image: the confident joint is exact for up to this many classes, and for
# more misses only a class outside an image's top K whose threshold is below 1 / (K + 1).
VAL_PREDICTION_TOP_K = 16
MAX_PER_SAMPLE_BYTES = 256 * 2**20  # a reader refuses larger files: 21 M images at 12 bytes each

# status.json's "status" values.
RUNNING, COMPLETED, FAILED, PREEMPTED = "running", "completed", "failed", "preempted"
STATES = (RUNNING, COMPLETED, FAILED, PREEMPTED)

# ───────────────────────────── record fields ─────────────────────────────

TRAIN, VAL = "train", "val"

# When a field is written. The keys are what the field table test switches on.
WHEN = {
    "always": "every record",
    "diagnostics": "diagnostics.enabled=true (the default)",
    "probe": "diagnostics.enabled=true and trainer.compile=false (hooks on the ReLUs of the epoch's last batch)",
    "fp16": "trainer.amp=fp16 (a GradScaler)",
    "ddp": "under torchrun with more than one process",
    "top5": "more than 5 classes",
    "confusion": f"diagnostics.enabled=true and at most {CONFUSION_INLINE_MAX} classes (more: in {CONFUSION_JSONL})",
}


@dataclass(frozen=True)
class Field:
    name: str
    file: str  # TRAIN or VAL
    # "integer", "number" (a float, or null when non-finite), "mapping" ({name: number or null}) or
    # "matrix" (a list of C lists of C integer counts)
    kind: str
    unit: str  # "" for plain counts and ratios
    meaning: str
    when: str = "always"  # a key of WHEN
    timing: bool = False  # wall-clock measurements: differ between two otherwise identical runs


_GRAD = "L2 norm over all parameters' gradients per step, before clipping, after AMP unscaling"
FIELDS: tuple[Field, ...] = (
    # ── train_diagnostics.jsonl ──
    Field("epoch", TRAIN, "integer", "", "epoch number, from 1"),
    Field("loss", TRAIN, "number", "nats", "mean training loss (the criterion, label smoothing included) over "
                                           "the steps whose loss was finite"),
    Field("accuracy", TRAIN, "number", "fraction", "top-1 accuracy on the training batches as they were trained"),
    Field("num_batches", TRAIN, "integer", "steps", "optimizer steps in the epoch"),
    Field("num_samples", TRAIN, "integer", "images", "training images seen in the epoch (all ranks)"),
    Field("nonfinite_steps", TRAIN, "integer", "steps", "steps whose loss was NaN or infinite"),
    Field("mean_grad_norm", TRAIN, "number", "", f"mean {_GRAD}", "diagnostics"),
    Field("min_grad_norm", TRAIN, "number", "", f"smallest {_GRAD}", "diagnostics"),
    Field("max_grad_norm", TRAIN, "number", "", f"largest {_GRAD}", "diagnostics"),
    Field("grad_norm_std", TRAIN, "number", "", f"standard deviation of the {_GRAD}", "diagnostics"),
    Field("nonfinite_grad_steps", TRAIN, "integer", "steps", "steps whose gradient norm was NaN or infinite",
          "diagnostics"),
    Field("clipped_fraction", TRAIN, "number", "fraction", "share of steps whose gradient norm exceeded "
                                                           "regularization.grad_clip (0 without clipping)",
          "diagnostics"),
    Field("weight_update", TRAIN, "number", "", "mean L2 norm of the parameter update of a measured step "
                                                "(every diagnostics.update_every steps)", "diagnostics"),
    Field("weight_update_ratio", TRAIN, "number", "", "mean of update norm / weight norm over the measured steps",
          "diagnostics"),
    Field("loss_step_std", TRAIN, "number", "nats", "standard deviation of the per-step training loss",
          "diagnostics"),
    Field("grad_norm_first_layer", TRAIN, "number", "", "mean gradient norm of the first conv or linear weight",
          "diagnostics"),
    Field("grad_norm_last_layer", TRAIN, "number", "", "mean gradient norm of the last conv or linear weight",
          "diagnostics"),
    Field("layer_grad_norms", TRAIN, "mapping", "", "mean gradient norm of every conv and linear weight, by "
                                                    "layer name", "diagnostics"),
    Field("grad_norm_rank_spread", TRAIN, "number", "", "largest minus smallest mean gradient norm across ranks "
                                                        "(0 unless the ranks' models diverged)", "ddp"),
    Field("dead_relu_fraction", TRAIN, "number", "fraction", "largest share of a ReLU layer's channels that are "
                                                             "positive on fewer than 1 % of their outputs", "probe"),
    Field("relu_zero_fraction", TRAIN, "number", "fraction", "mean share of ReLU outputs that are zero", "probe"),
    Field("dead_relu_layers", TRAIN, "mapping", "fraction", "share of dead channels, by ReLU layer name", "probe"),
    Field("learning_rate", TRAIN, "number", "", "learning rate in effect when the epoch began"),
    Field("learning_rate_end", TRAIN, "number", "", "learning rate after the epoch's last step (per-step "
                                                    "schedules move it)"),
    Field("epoch_time_s", TRAIN, "number", "s", "wall time of the epoch's training steps", timing=True),
    Field("samples_per_s", TRAIN, "number", "images/s", "training throughput: num_samples / epoch_time_s",
          timing=True),
    Field("amp_scale", TRAIN, "number", "", "the GradScaler's loss scale at the epoch's end", "fp16"),
    # ── val_diagnostics.jsonl ──
    Field("epoch", VAL, "integer", "", "epoch number, from 1 (validation after that epoch's training)"),
    Field("loss", VAL, "number", "nats", "validation loss with the training criterion (label smoothing included)"),
    Field("nll", VAL, "number", "nats", "validation cross-entropy without label smoothing"),
    Field("accuracy", VAL, "number", "fraction", "top-1 validation accuracy"),
    Field("top5_accuracy", VAL, "number", "fraction", "top-5 validation accuracy", "top5"),
    Field("num_samples", VAL, "integer", "images", "validation images (each once, all ranks)"),
    Field(CONFUSION_FIELD, VAL, "matrix", "images", "confusion matrix: row i, column j counts the validation images "
                                                    "of class i predicted as class j (rows sum to the class's "
                                                    "images, all sum to num_samples)", "confusion"),
    Field("val_time_s", VAL, "number", "s", "wall time of validation", timing=True),
)


# The arrays of one PER_SAMPLE_EPOCH file: (name, dtype, unit, meaning). Written when diagnostics.enabled=true;
# an image that no step of the epoch trained on (the partial batch drop_last leaves out) has NaN and -1.
PER_SAMPLE_FIELDS = (
    ("loss", "float16", "nats", "cross-entropy of the image's logits against its label as trained, in the step "
                                "that trained on it (train mode, augmented; without label smoothing)"),
    ("margin", "float16", "logits", "logit of the label minus the largest other logit in that step (Pleiss et al. "
                                    "2020's margin: negative while the model prefers another class)"),
    ("predicted", "int16", "class", "the class of the largest logit in that step (-1: not trained on this epoch)"),
)
# The arrays of TOP_LOSSES: the K highest-loss training images of the last epoch, highest first.
TOP_LOSS_FIELDS = (
    ("index", "int64", "", "position of the image in the training set"),
    ("image", "uint8", "pixel", "the image as stored, (K, C, H, W), before any transform (thumbnails)"),
    ("label", "int32", "class", "its label as trained"),
    ("predicted", "int32", "class", "the class the model predicted for it in its last epoch's step"),
    ("loss", "float32", "nats", "its loss in that step"),
    ("class_names", "str", "", "the class names, by class index (empty: the classes have no names)"),
)


# The arrays of VAL_PREDICTIONS; N = val_size, K = min(VAL_PREDICTION_TOP_K, C). Written when
# diagnostics.enabled=true; probabilities are the softmax of the logits (without label smoothing's effect on
# the labels, with its effect on the model).
VAL_PREDICTION_FIELDS = (
    ("epoch", "int32", "", "(1,): the epoch of the validation pass: the best validation accuracy so far"),
    ("label", "int32", "class", "(N,): each validation image's label as validated (-1: not validated)"),
    ("label_probability", "float16", "probability", "(N,): the predicted probability of that label"),
    ("classes", "int16", "class", "(N, K): the K most probable classes, most probable first"),
    ("probabilities", "float16", "probability", "(N, K): their predicted probabilities"),
)


def fields(file: str) -> list[Field]:
    """The fields of one file (TRAIN or VAL), in the order of the table."""
    return [f for f in FIELDS if f.file == file]


# Derived sets, for the readers and the tests.
NUMERIC_FIELDS = frozenset(f.name for f in FIELDS if f.kind in ("integer", "number"))  # a number or null
NESTED_FIELDS = frozenset(f.name for f in FIELDS if f.kind == "mapping")  # {name: number or null}
TIMING_FIELDS = tuple(dict.fromkeys(f.name for f in FIELDS if f.timing))

# The trainer's TensorBoard and MLflow loggers (trainer/loggers.py) name each record field's scalar
# `<file>/<field>` (train/mean_grad_norm) and each key of a mapping field `<file>_<field>/<key>`
# (train_layer_grad_norms/fc); the importers read those names back as the same fields.
LOGGER_TAG = "{file}/{field}"
LOGGER_NESTED_TAG = "{file}_{field}/{key}"


def logger_field(tag: str) -> "tuple[str, str, str | None] | None":
    """(file, field, key or None) of a tag the trainer's loggers write; None for any other name."""
    head, sep, key = tag.partition("/")
    if not sep:
        return None
    for f in FIELDS:
        if f.name == "epoch":
            continue
        if f.kind == "mapping" and key and head == LOGGER_NESTED_TAG.split("/")[0].format(file=f.file, field=f.name):
            return f.file, f.name, key
        if f.kind != "mapping" and tag == LOGGER_TAG.format(file=f.file, field=f.name):
            return f.file, f.name, None
    return None


# status.json, written by rundir.files.Status.
STATUS_FIELDS = {
    "status": "one of " + ", ".join(STATES),
    "epoch": "last epoch whose records and checkpoint are written (0 before the first)",
    "epochs": "epochs planned (trainer.epochs)",
    "best_val_accuracy": "best validation accuracy so far (fraction), or null",
    "best_epoch": "epoch of best_val_accuracy, or null",
    "error": "why the run failed or stopped, or null",
    "finding": "id of the live finding that stopped the run (trainer.stop_on), or null",
    "started_at": "UTC time the run first started (ISO 8601); a resume keeps it",
    "resumed_at": "UTC time the run last resumed from a checkpoint (ISO 8601), or null",
    "updated_at": "UTC time of the last update (ISO 8601)",
}


# The structured facts of run_info.json that the analysis cites (the rest: sizes, class counts, pipelines, config).
RUN_INFO_FIELDS = {
    DUPLICATE_IMAGES: "images found in both splits by content (trainer/duplicates.py): counts of exact and near "
                      "pairs, validation images with a copy in train, the calibrated Hamming threshold, examples; "
                      "when diagnostics.duplicates=true",
    SKIPPED_IMAGES: "data=imagefolder only: the image files the start-up scan found unusable and left out "
                    "(data.skip_bad_images=true; otherwise the run refuses to start): `count`, `of` (image files "
                    "found, the bad ones included) and `examples`, the first few sorted by path as "
                    "{`path` (relative to data.root), `reason`}",
}


# lr_find.json, written once by trainer/lr_find.py. LRs are plain learning rates, losses in nats.
LR_FIND_VERSION = 1
LR_FIND_FIELDS = {
    "version": f"format version ({LR_FIND_VERSION})",
    "lrs": "the LR of each recorded step, rising exponentially from start_lr",
    "losses": "the training loss of each recorded step (nats)",
    "smoothed_losses": "the losses smoothed by a bias-corrected exponential moving average (coefficient `smoothing`) "
                       "run forward and then backward (centred: no lag), per step; the early stop uses the forward one",
    "suggested_lr": "the suggested LR (lr_at_min_loss / 10), or null when too few steps were recorded",
    "method": "how suggested_lr was chosen, in words",
    "lr_at_min_loss": "the LR at the smoothed loss' minimum",
    "steepest_lr": "the LR where the smoothed loss falls fastest (per unit of log LR) before its minimum",
    "stopped": "why the sweep ended: the running (forward) smoothed loss past diverge_factor x its best, a non-finite loss, or end_lr",
    "start_lr": "the sweep's first LR", "end_lr": "the LR its last step would have reached",
    "num_steps": "steps planned", "smoothing": "the EMA coefficient of smoothed_losses",
    "diverge_factor": "the sweep stops once the smoothed loss exceeds this multiple of its best",
    "device": "where it ran",
    "scheduler": "the configured scheduler (the config's scheduler group), for which `override` is computed",
    "override": "the suggestion as `optimizer.lr=...` for that scheduler (onecycle: its peak, 3x suggested_lr)",
    "setup": "the resolved config groups that make a run's setup the same as this test's (LR_FIND_SETUP)",
}
# What makes an LR range test's setup the same as a run's: these config groups, less the keys that do not change
# what a given LR does (the LR itself; how data is loaded).
LR_FIND_SETUP = ("data", "model", "optimizer", "regularization", "augmentation", "fault")
LR_FIND_SETUP_IGNORED = (OPTIMIZER_LR, DATA_NUM_WORKERS, DATA_LOADER, DATA_DOWNLOAD, DATA_ROOT)


def epoch_ranges(ranges: list) -> str:
    """A live finding's "epochs" as text: [[1, 3], [5, 5]] -> 'epochs 1-3, 5'."""
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges]
    return ("epoch " if len(parts) == 1 and "-" not in parts[0] else "epochs ") + ", ".join(parts)
