"""The trainer's config keys the run readers and the analysis read or recommend, named once.

A run's config (run_info.json, or .hydra/config.yaml) is read with `run.cfg(KEY)`, which returns
None for a key the run does not have: a key renamed in the trainer's schemas would silently turn a
finding off. Every key lives here instead, and tests/test_config_keys.py composes the trainer's
config and fails when one of them does not exist (with the option that owns it, OPTION_OF).
Here in rundir/ (torch-free) so that the readers and the analysis share it; the analysis imports neither the
trainer nor torch, so the table is plain strings.
"""

from __future__ import annotations

DATA_BATCH_SIZE = "data.batch_size"
DATA_MEAN = "data.mean"
DATA_STD = "data.std"
DATA_NUM_CLASSES = "data.num_classes"
DATA_NUM_WORKERS = "data.num_workers"
DATA_LOADER = "data.loader"
DATA_DOWNLOAD = "data.download"
DATA_ROOT = "data.root"

MODEL_NAME = "model.name"
MODEL_WIDTH = "model.width"

OPTIMIZER_NAME = "optimizer.name"
OPTIMIZER_LR = "optimizer.lr"
OPTIMIZER_MOMENTUM = "optimizer.momentum"

SCHEDULER_NAME = "scheduler.name"
SCHEDULER_PATIENCE = "scheduler.patience"
SCHEDULER_THRESHOLD = "scheduler.threshold"
SCHEDULER_COOLDOWN = "scheduler.cooldown"
SCHEDULER_MIN_LR = "scheduler.min_lr"
SCHEDULER_WARMUP = "scheduler.warmup_epochs"
SCHEDULER_STEP_SIZE = "scheduler.step_size"

AUGMENTATION_NAME = "augmentation.name"
AUGMENTATION_MAGNITUDE = "augmentation.magnitude"
AUGMENTATION_NUM_OPS = "augmentation.num_ops"
AUGMENTATION_CROP_PADDING = "augmentation.crop_padding"

REGULARIZATION_LABEL_SMOOTHING = "regularization.label_smoothing"
REGULARIZATION_WEIGHT_DECAY = "regularization.weight_decay"
REGULARIZATION_GRAD_CLIP = "regularization.grad_clip"
REGULARIZATION_CLASS_WEIGHTS = "regularization.class_weights"

TRAINER_EPOCHS = "trainer.epochs"
TRAINER_SEED = "trainer.seed"
TRAINER_AMP = "trainer.amp"

DIAGNOSTICS_DIR = "diagnostics.dir"
DIAGNOSTICS_UPDATE_EVERY = "diagnostics.update_every"

FAULT_NAME = "fault.name"

KEYS = tuple(value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str))

# Keys that only some options of their group have: the option that owns each (the others have it everywhere).
OPTION_OF = {
    OPTIMIZER_MOMENTUM: "optimizer=sgd",
    SCHEDULER_PATIENCE: "scheduler=plateau",
    SCHEDULER_THRESHOLD: "scheduler=plateau",
    SCHEDULER_COOLDOWN: "scheduler=plateau",
    SCHEDULER_MIN_LR: "scheduler=plateau",  # cosine's too
    SCHEDULER_WARMUP: "scheduler=cosine",
    SCHEDULER_STEP_SIZE: "scheduler=step",
    AUGMENTATION_MAGNITUDE: "augmentation=randaugment",
    AUGMENTATION_NUM_OPS: "augmentation=randaugment",
    AUGMENTATION_CROP_PADDING: "augmentation=basic",
}
