"""timm's train.py output (`summary.csv`: epoch,train_loss,eval_loss,eval_top1,eval_top5,lr; `args.yaml`
beside it) -> Source. Epochs are 0-based; top-1 and top-5 are percentages."""

from __future__ import annotations

from pathlib import Path

from rundir.numbers import as_epoch
from rundir.safe import read_yaml_mapping

from .build import Source
from .config_map import map_config
from .textfile import csv_dicts, csv_header

SUMMARY = "summary.csv"


def looks_like(path: Path) -> bool:
    head = csv_header(path)
    return bool(head) and head[0].strip() == "epoch" and "step" not in head and any(h.strip().startswith("eval_") for h in head)


def read(path: Path) -> Source:
    src = Source("timm train.py summary.csv", "timm", [path], path.parent.name, path.parent)
    rows = csv_dicts(path, src.warnings)
    src.percent = {"eval_top1", "eval_top5", "train_top1", "train_top5"}
    bad = 0
    for r in rows:
        epoch = as_epoch(r.get("epoch"))  # rundir.numbers: inf, 400 digits, a word are no epoch
        if epoch is None:
            bad += any(v.strip() for v in r.values() if isinstance(v, str))
            continue
        epoch += 1
        for key, value in r.items():
            if key and key != "epoch":
                src.add(key.strip(), epoch, value)
    if bad:
        src.warnings.append(f"{path}: {bad} row(s) without an epoch number: skipped")
    args_path = path.parent / "args.yaml"
    if args_path.exists():
        args = read_yaml_mapping(args_path, src.warnings)
        if args is not None:
            src.files.append(args_path)
            src.source_config = args
            src.config = map_config(args, origin=src.origin)
            planned = args.get("epochs")
            if isinstance(planned, int) and planned > 0:
                src.planned_epochs = planned
    return src
