"""What every importer hands over (a `Source`: observations by metric name and epoch) -> the `Run` the
rules read, with what was imported and what is unknown said in the run's notes and `Run.imported`.

Epochs are traindx's: 1-based. Per epoch, a training metric logged per step is averaged (the trainer's
own records are epoch means); a validation metric logged several times in one epoch keeps its last value
(the state at the epoch's end); the learning rate keeps its first value as `learning_rate` and its last
as `learning_rate_end`, as the trainer records them, so a schedule that glides within an epoch is told
apart from one that cuts between epochs. Nothing is invented: a field the log lacks is absent, and a
fact the rules use (augmentation, validation size, ...) that the source does not state is listed in
`Run.unknown`, never filled with a default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rundir.columns import Columns
from rundir.numbers import NOT_A_NUMBER, as_number
from rundir.config_keys import (AUGMENTATION_NAME, DATA_BATCH_SIZE, DATA_NUM_CLASSES, OPTIMIZER_LR, OPTIMIZER_MOMENTUM,
                                OPTIMIZER_NAME,
                                REGULARIZATION_GRAD_CLIP, REGULARIZATION_LABEL_SMOOTHING, REGULARIZATION_WEIGHT_DECAY,
                                SCHEDULER_NAME, TRAINER_EPOCHS)
from rundir.read import Run, get

from .classes import class_count
from .names import Target, score_fallback, target

# Facts the rules and report sections read from a run's config or run_info.json. An imported run that
# lacks one has it listed in Run.unknown: a rule needing it stays silent or says so.
RULE_FACTS = (OPTIMIZER_NAME, OPTIMIZER_LR, SCHEDULER_NAME, DATA_BATCH_SIZE, TRAINER_EPOCHS,
              REGULARIZATION_WEIGHT_DECAY, REGULARIZATION_GRAD_CLIP, REGULARIZATION_LABEL_SMOOTHING,
              AUGMENTATION_NAME, DATA_NUM_CLASSES, "val_size")
# Record fields worth naming when absent (the trainer's gradient and update statistics are the rest).
CORE_FIELDS = ("train.loss", "train.accuracy", "train.learning_rate", "val.loss", "val.accuracy")


@dataclass
class Source:
    """One run as another tool logged it, before mapping."""

    tool: str  # e.g. "Lightning CSVLogger"
    format: str  # the --from name
    files: list[Path]
    name: str
    path: Path  # the run's directory (or the log's folder)
    # metric name -> epoch (1-based) -> values in logging order
    series: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    default_stage: str = "train"  # the stage of names without a stage word (Keras's `loss`)
    percent: set = field(default_factory=set)  # names whose values are percentages (timm's eval_top1)
    config: Optional[dict] = None  # traindx keys the source states (config_map.py)
    origin: dict = field(default_factory=dict)  # traindx key -> where in the tool's config it was stated
    source_config: Optional[dict] = None  # the tool's own config as read (hparams.yaml, args.yaml, .hydra)
    overrides: list[str] = field(default_factory=list)  # Hydra overrides (lightning-hydra-template jobs)
    completed: Optional[bool] = None  # True when the log proves the run ended (a test pass, max_steps)
    planned_epochs: Optional[int] = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # metric name -> {why: (count, first epoch, first value)}: values the number reader named (rundir.numbers)
    problems: dict[str, dict[str, tuple[int, int, str]]] = field(default_factory=dict)

    def add(self, name: str, epoch: int, value: Any) -> None:
        """One logged value, read by the one number reader (rundir.numbers): NaN and Inf kept (a diverged run
        logs them), an integer beyond the float range read as infinite, text read as missing; each named in a
        warning when its metric is imported (to_run)."""
        v, why = as_number(value)
        if why is not None:
            count, first, example = self.problems.setdefault(name, {}).get(why, (0, int(epoch), _short(value)))
            self.problems[name][why] = (count + 1, first, example)
        if why == NOT_A_NUMBER or (why is None and math.isnan(v)):
            return
        self.series.setdefault(name, {}).setdefault(int(epoch), []).append(v)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value.strip()
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} characters)"


def _resolve(src: Source, user_map: Optional[dict]) -> tuple[dict[Target, str], dict[str, str]]:
    """Which source name fills each field, and why the others are not imported."""
    chosen: dict[tuple[str, str, Optional[str]], tuple[Target, str]] = {}
    skipped: dict[str, str] = {}
    for name in src.series:
        t = target(name, user_map, src.default_stage)
        if t is None:
            skipped[name] = "ignored by --map" if user_map and name in user_map else "not a field the rules read"
            continue
        key = (t.stage, t.field, t.key)
        if key in chosen:
            other_t, other = chosen[key]
            if t.preferred and not other_t.preferred:
                skipped[other] = f"{t} taken from {name}"
                chosen[key] = (t, name)
            else:
                skipped[name] = f"{t} taken from {other}"
            continue
        chosen[key] = (t, name)
    for stage in ("train", "val"):  # a score in place of a missing accuracy (Hugging Face's eval_f1)
        if (stage, "accuracy", None) in chosen:
            continue
        for name in list(skipped):
            t = score_fallback(name, src.default_stage)
            if t is not None and t.stage == stage and not (user_map and name in user_map):
                chosen[(stage, "accuracy", None)] = (t, name)
                del skipped[name]
                src.notes.append(f"{stage} accuracy is {name}: the log holds no accuracy (chance-level checks "
                                 f"do not apply to it)")
                break
    return {t: name for t, name in chosen.values()}, skipped


def _percent_scale(src: Source, name: str, values: dict[int, list[float]]) -> float:
    """1/100 for accuracies logged in percent (timm; Keras users who multiply by 100), else 1. A log has one
    unit: percent when most of its values lie above 1 (up to 100), so that one stray 2.5 among fractions is
    named as no accuracy (_fractions) instead of turning every other epoch into a hundredth of itself."""
    if name in src.percent:
        return 0.01
    finite = sorted(v for vs in values.values() for v in vs if math.isfinite(v) and v <= 100.0)  # 250: none at all
    if finite and finite[len(finite) // 2] > 1 + 1e-9:
        src.notes.append(f"{name} read as a percentage (values up to {finite[-1]:g}) and divided by 100")
        return 0.01
    return 1.0


def _fractions(src: Source, name: str, values: dict[int, list[float]], scale: float, where) -> dict[int, list[float]]:
    """An accuracy as fractions in [0, 1]: a value outside (250 %, -3) is no accuracy, read as missing and named."""
    out: dict[int, list[float]] = {}
    bad: list[tuple[int, float]] = []
    for epoch, vs in values.items():
        kept = []
        for v in vs:
            f = v * scale
            if math.isfinite(f) and not -1e-9 <= f <= 1 + 1e-9:
                bad.append((epoch, v))
            else:
                kept.append(f)
        if kept:
            out[epoch] = kept
    if bad:
        e, v = bad[0]
        unit = " (read as a percentage)" if scale != 1.0 else ""
        src.warnings.append(f"{where}: {name} {v:g}{unit} at epoch {e}" + (f" and {len(bad) - 1} more value(s)" if len(bad) > 1
                            else "") + ": not an accuracy (a fraction in [0, 1] or a percentage up to 100), read as missing")
    return out


def to_run(src: Source, user_map: Optional[dict] = None) -> Run:
    """The Run the rules read, from what one importer found."""
    fields, skipped = _resolve(src, user_map)
    train: dict[int, dict] = {}
    val: dict[int, dict] = {}
    per_step: list[str] = []
    where = src.files[0] if src.files else src.path
    have = {(t.stage, t.field) for t in fields if t.key is None}
    for t, name in fields.items():
        for why, (count, first, example) in src.problems.get(name, {}).items():
            src.warnings.append(f"{where}: {name} {example!r} at epoch {first}" + (f" and {count - 1} more value(s)"
                                if count > 1 else "") + f": {why}")
        values = src.series[name]
        if t.field in ("accuracy", "top5_accuracy"):
            values = _fractions(src, name, values, _percent_scale(src, name, values), where)
        scale = 1.0
        rows = train if t.stage == "train" else val
        for epoch, vs in values.items():
            rec = rows.setdefault(epoch, {"epoch": epoch})
            if t.key is not None:  # a layer of a mapping field (the trainer's train_layer_grad_norms/fc)
                rec.setdefault(t.field, {})[t.key] = _mean(vs) if t.stage == "train" else vs[-1]
            elif t.field == "learning_rate":
                rec["learning_rate"] = vs[0]
                if len(vs) > 1 and ("train", "learning_rate_end") not in have:
                    rec["learning_rate_end"] = vs[-1]
            elif t.field == "mean_grad_norm":
                rec["mean_grad_norm"] = _mean(vs)
                if ("train", "max_grad_norm") not in have:  # the log's own maximum, when it has one
                    rec["max_grad_norm"] = max(vs)
            elif t.stage == "val":
                rec[t.field] = vs[-1] * scale
            else:
                rec[t.field] = _mean(vs) * scale
        if t.stage == "train" and t.field not in ("learning_rate",) and any(len(vs) > 1 for vs in values.values()):
            per_step.append(name)
    last_train = max((e for e, r in train.items() if len(r) > 1), default=None)
    if last_train is not None:  # validation after the last training epoch: Lightning's trainer.validate()
        late = sorted(e for e in val if e > last_train)
        if late:
            for e in late:
                del val[e]
            src.notes.append(f"validation after the last training epoch (epoch {', '.join(map(str, late))}: a "
                             f"re-validation or evaluation pass) left out")
    imported = {str(t): name for t, name in sorted(fields.items(), key=lambda kv: str(kv[0]))}
    found = set(imported)
    if any("max_grad_norm" in r for r in train.values()):
        found.add("train.max_grad_norm")
    classes, classes_from = class_count(src)
    if classes is not None and get(src.config, DATA_NUM_CLASSES) is None:
        src.config = {**(src.config or {}), "data": {**get(src.config, "data", {}), "num_classes": classes}}
    config = src.config or None
    unknown_facts = [k for k in RULE_FACTS if not _known(config, k)]
    if get(config, OPTIMIZER_NAME) in (None, "sgd") and not _known(config, OPTIMIZER_MOMENTUM):
        unknown_facts.append(OPTIMIZER_MOMENTUM)  # SGD's effective step is lr / (1 - momentum): unknown without it
    unknown_fields = [f for f in CORE_FIELDS if f not in found]
    imported_info = {"tool": src.tool, "format": src.format, "files": [str(f) for f in src.files],
                     "fields": imported, "per_step_averaged": sorted(per_step),
                     "not_imported": dict(sorted(skipped.items())), "not_in_log": unknown_fields,
                     "unknown": unknown_facts, "num_classes": classes, "num_classes_from": classes_from}
    notes = [f"imported from {src.tool}: {', '.join(str(f) for f in src.files)}",
             "fields: " + (", ".join(f"{k} <- {v}" + (" (per step, averaged per epoch)" if v in per_step else "")
                                     for k, v in imported.items()) or "none")]
    if skipped:
        notes.append("not imported: " + ", ".join(f"{k} ({why})" for k, why in sorted(skipped.items())[:12])
                     + (f" and {len(skipped) - 12} more" if len(skipped) > 12 else "")
                     + "; map one with --map NAME=train.FIELD|val.FIELD")
    if unknown_fields:
        notes.append(f"not in the log: {', '.join(unknown_fields)}")
    notes.append(f"unknown (rules that need them stay silent): {', '.join(unknown_facts) or 'none'}")
    notes.append(f"class count: {classes}, from {classes_from}" if classes is not None else f"class count {classes_from}")
    notes += src.notes
    if src.planned_epochs and last_train is not None and last_train >= src.planned_epochs:
        src.completed = True  # every planned epoch trained
    status = None
    if src.completed:
        status = {"status": "completed"}
    if src.planned_epochs:
        status = {**(status or {}), "epochs": src.planned_epochs}
    return Run(name=src.name, path=src.path, train=Columns(list(train.values())), val=Columns(list(val.values())),
               config=config, overrides=list(src.overrides), info=None, status=status,
               warnings=list(src.warnings), hydra_config=src.source_config if src.overrides else None, notes=notes,
               imported=imported_info, unknown=frozenset(unknown_facts))


_ABSENT = object()


def _known(config: Optional[dict], dotted: str) -> bool:
    return get(config, dotted, _ABSENT) is not _ABSENT


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def is_imported(run: Run) -> bool:
    """True for a run read from another tool's logs (it has no status.json: its state is not 'running')."""
    return run.imported is not None
