"""Another tool's configuration -> the traindx config keys it states (and only those).

Sources: Lightning's hparams.yaml (flat `lr: 0.1` or the lightning-hydra-template's nested
`model.optimizer.lr`), a lightning-hydra-template job's `.hydra/config.yaml`, timm's args.yaml, Hugging
Face's TrainingArguments (training_args.json, or the model card's "Training hyperparameters" list). A
mapping nested one level down (hparams.yaml's `cfg:`) is read when the top level does not state a key.
A key the source does not state stays absent: the rules read its absence as unknown, never as a default.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from rundir.read import get


# traindx key -> candidate paths in the tool's config, most specific first.
_PATHS: dict[str, tuple[str, ...]] = {
    "optimizer.lr": ("model.optimizer.lr", "optimizer.lr", "lr", "learning_rate", "hparams.lr"),
    "optimizer.name": ("model.optimizer._target_", "optimizer._target_", "optimizer", "opt", "optim"),
    "optimizer.momentum": ("model.optimizer.momentum", "optimizer.momentum", "momentum"),
    "scheduler.name": ("model.scheduler._target_", "scheduler._target_", "lr_scheduler_type", "sched", "scheduler"),
    "scheduler.patience": ("model.scheduler.patience", "patience_epochs"),
    "scheduler.factor": ("model.scheduler.factor", "decay_rate"),
    "data.batch_size": ("data.batch_size", "datamodule.batch_size", "batch_size", "per_device_train_batch_size",
                        "train_batch_size"),
    "data.num_classes": ("model.net.output_size", "model.net.num_classes", "model.num_classes", "net.output_size",
                         "net.num_classes", "data.num_classes", "num_classes", "n_classes", "nb_classes", "num_labels",
                         "output_size"),
    "trainer.epochs": ("trainer.max_epochs", "max_epochs", "epochs", "num_train_epochs", "num_epochs"),
    "trainer.seed": ("seed",),
    "regularization.weight_decay": ("model.optimizer.weight_decay", "optimizer.weight_decay", "weight_decay"),
    "regularization.grad_clip": ("trainer.gradient_clip_val", "gradient_clip_val", "clip_grad", "max_grad_norm"),
    "regularization.label_smoothing": ("label_smoothing", "smoothing", "label_smoothing_factor"),
}
# Scheduler names as traindx's conf/scheduler/ options; anything else is kept as the tool named it
# (Hugging Face's `linear` is a glide, not a series of cuts).
_SCHEDULERS = {"reducelronplateau": "plateau", "reduce_lr_on_plateau": "plateau", "plateau": "plateau",
               "steplr": "step", "multisteplr": "step", "step": "step", "multistep": "step",
               "cosineannealinglr": "cosine", "cosine": "cosine", "cosineannealingwarmrestarts": "cosine",
               "cosine_with_restarts": "cosine", "onecyclelr": "onecycle", "onecycle": "onecycle",
               "constant": "constant", "constantlr": "constant", "linear": "linear", "linearlr": "linear",
               "constant_with_warmup": "constant", "polynomial": "polynomial", "exponentiallr": "exponential"}
_OPTIMIZERS = {"sgd": "sgd", "adam": "adam", "adamw": "adamw", "adamw_torch": "adamw", "adamw_hf": "adamw",
               "adamw_torch_fused": "adamw", "momentum": "sgd", "rmsprop": "rmsprop", "lamb": "lamb", "lars": "lars"}


def _name(value: Any, table: dict[str, str]) -> Optional[str]:
    if not isinstance(value, str) or not value.strip():
        return None
    words = value.strip().split()  # "Adam with betas=(0.9,0.999)", "Use adamw_torch with ..." (model cards)
    word = words[1] if words[0].lower() == "use" and len(words) > 1 else words[0]
    leaf = word.rsplit(".", 1)[-1].lower()  # torch.optim.Adam -> adam
    return table.get(leaf, leaf)


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool) or value is None


def _views(sources: tuple) -> list[dict]:
    """The sources, then the mappings one level inside each (Lightning's hparams.yaml of a module that saved
    its config under one key, `cfg: {optimizer: {lr: ...}}`): a key stated at the top wins."""
    tops = [s for s in sources if isinstance(s, dict)]
    return tops + [v for s in tops for k, v in s.items() if isinstance(v, dict) and not str(k).startswith("_")]


def map_config(*sources: Optional[dict], origin: Optional[dict] = None) -> Optional[dict]:
    """The traindx config keys the sources state, nested ({'optimizer': {'lr': 0.1}}); None when none is.
    origin, when given, gets each key's path in the source it came from ('data.num_classes': 'net.output_size')."""
    out: dict[str, dict] = {}
    views = _views(sources)
    for dotted, paths in _PATHS.items():
        for src in views:
            path = next((p for p in paths if get(src, p) is not None), None)
            value = get(src, path) if path is not None else None
            if value is None:
                # `gradient_clip_val: null` states "no clipping": a stated null is a value
                if dotted == "regularization.grad_clip" and any(_has_null(src, p) for p in paths):
                    out.setdefault("regularization", {})["grad_clip"] = None
                continue
            if dotted == "optimizer.name":
                value = _name(value, _OPTIMIZERS)
            elif dotted == "scheduler.name":
                value = _name(value, _SCHEDULERS)
            elif isinstance(value, str) and dotted != "trainer.seed":
                value = _number(value)
            if value is None or not _scalar(value):
                continue
            group, key = dotted.split(".", 1)
            out.setdefault(group, {})[key] = value
            if origin is not None:
                inner = next((f"{k}." for s in sources if isinstance(s, dict) for k, v in s.items() if v is src), "")
                origin[dotted] = inner + path
            break
    return out or None


def _has_null(src: dict, dotted: str) -> bool:
    node: Any = src
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict) and parts[-1] in node and node[parts[-1]] is None


def _number(text: str) -> Optional[float | int]:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


_CARD_LINE = re.compile(r"^\s*-\s*([A-Za-z_][\w]*)\s*:\s*(.+?)\s*$")


def model_card_hyperparameters(text: str) -> dict:
    """The `- key: value` list under "Training hyperparameters" in a Hugging Face model card (README.md)."""
    out: dict[str, Any] = {}
    inside = False
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            inside = "training hyperparameters" in line.lower()
            continue
        if inside:
            m = _CARD_LINE.match(line)
            if m:
                value = m.group(2)
                num = _number(value)
                out[m.group(1)] = num if num is not None else value
    return out
