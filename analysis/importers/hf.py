"""Hugging Face Trainer's `trainer_state.json` -> Source.

`log_history` holds training rows (`loss`, `learning_rate`, `grad_norm` every logging_steps) and
evaluation rows (`eval_loss`, `eval_accuracy` or `eval_f1`, ... every eval_steps), each with a fractional
`epoch`: a row belongs to epoch ceil(epoch) (0.05..1.0 -> 1). The closing summary row (`train_loss`,
`train_runtime`) is no step and is skipped. The scheduler kind comes from the TrainingArguments when
they were saved as JSON (training_args.json) or listed in the model card (README.md); training_args.bin
is a pickle and is never read.
"""

from __future__ import annotations

import math
from pathlib import Path

from rundir.numbers import MAX_EPOCH, as_number
from rundir.read import RunError
from rundir.safe import MAX_JSON_LOG_BYTES, read_json

from .build import Source
from .config_map import map_config, model_card_hyperparameters
from .textfile import HEAD_BYTES, head_text, read_text

STATE = "trainer_state.json"
_SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "total_flos")
_SKIP = ("epoch", "step")


def looks_like(path: Path) -> bool:
    if path.suffix != ".json":
        return False
    head = head_text(path)
    if head is None:
        return False
    return '"log_history"' in head or (path.name == STATE and head.lstrip().startswith("{"))


def find(path: Path) -> list[Path]:
    """trainer_state.json in the directory, else in its newest checkpoint-N/."""
    if path.is_file():
        return [path]
    if (path / STATE).is_file():
        return [path / STATE]
    checkpoints = [p for p in path.glob(f"checkpoint-*/{STATE}") if p.parent.name.split("-")[-1].isdigit()]
    return [max(checkpoints, key=lambda p: int(p.parent.name.split("-")[-1]))] if checkpoints else []


def read(path: Path) -> Source:
    warnings: list[str] = []
    state = read_json(path, warnings, MAX_JSON_LOG_BYTES)  # a long run's log, not a small record
    if state is None or not isinstance(state.get("log_history"), list):
        raise RunError(f"{path}: not a Hugging Face trainer_state.json (no log_history list)"
                       + (f": {warnings[0]}" if warnings else ""))
    run_dir = path.parent
    src = Source("Hugging Face Trainer trainer_state.json", "hf", [path], run_dir.name, run_dir)
    src.warnings += warnings
    bad = 0
    for row in state["log_history"]:
        if not isinstance(row, dict) or any(k in row for k in _SUMMARY_KEYS):
            continue
        epoch, _ = as_number(row.get("epoch")) if not isinstance(row.get("epoch"), str) else (math.nan, None)
        if not math.isfinite(epoch) or not 0 <= epoch < MAX_EPOCH:  # inf, 400 digits, a word: no epoch
            bad += "epoch" in row
            continue
        bucket = max(1, math.ceil(epoch - 1e-9))
        for key, value in row.items():
            if key not in _SKIP:
                src.add(key, bucket, value)
    if bad:
        src.warnings.append(f"{path}: {bad} log_history row(s) whose epoch is no epoch number: skipped")
    args, where = _training_args(run_dir)
    if where is not None:
        src.files.append(where)
    src.source_config = {**state, "log_history": "..."} if not args else args
    src.config = map_config(args, {"num_train_epochs": state.get("num_train_epochs")}, model_config(run_dir, src),
                            origin=src.origin)
    planned = state.get("num_train_epochs")
    if isinstance(planned, int) and planned > 0:
        src.planned_epochs = planned
    steps, max_steps = state.get("global_step"), state.get("max_steps")
    if isinstance(steps, int) and isinstance(max_steps, int) and max_steps > 0 and steps >= max_steps:
        src.completed = True
    if not args:
        src.notes.append("no TrainingArguments found (training_args.json or a model card beside it): the "
                         "scheduler kind is unknown")
    return src


MODEL_CONFIG = "config.json"  # save_model()'s PretrainedConfig, beside the weights


def model_config(run_dir: Path, src: Source) -> dict:
    """{'num_labels': N} from the model's config.json (in the state's directory or the output directory above
    a checkpoint-N/) when it is a classifier's: id2label lists its classes."""
    for d in (run_dir, run_dir.parent):
        cfg = read_json(d / MODEL_CONFIG, [])  # rundir's reader: regular files only, capped
        if not isinstance(cfg, dict):
            continue
        arch = cfg.get("architectures")
        labels = cfg.get("id2label")
        if isinstance(arch, list) and any(isinstance(a, str) and a.endswith("Classification") for a in arch) \
                and isinstance(labels, dict) and len(labels) >= 2:
            src.files.append(d / MODEL_CONFIG)
            return {"num_labels": len(labels)}
    return {}


def _training_args(run_dir: Path) -> tuple[dict, Path | None]:
    """TrainingArguments as saved by the user (JSON), or the model card's hyperparameter list; looks in the
    state's directory and, for checkpoint-N/, in the output directory above it."""
    for d in (run_dir, run_dir.parent):
        j = d / "training_args.json"
        if j.is_file():
            obj = read_json(j, [])  # rundir's reader: regular files only, capped
            if isinstance(obj, dict):
                return obj, j
        card = d / "README.md"
        if card.is_file():
            try:
                found = model_card_hyperparameters(read_text(card, HEAD_BYTES * 16))
            except RunError:
                found = {}
            if found:
                return found, card
    return {}, None
