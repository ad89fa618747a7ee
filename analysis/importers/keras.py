"""Keras's CSVLogger (`epoch,accuracy,loss,val_accuracy,val_loss[,learning_rate]`) -> Sources.

Epochs are 0-based. With `append=True` one file holds several fits one after another: a new run starts
where the epoch number does not grow (a resumed fit with `initial_epoch` keeps counting, so it stays one
run), or where the header line repeats.
"""

from __future__ import annotations

from pathlib import Path

from rundir.read import RunError

from .build import Source
from .textfile import csv_header, csv_rows

NAMES = ("training.log", "training.csv", "history.csv", "log.csv", "training_log.csv")


def looks_like(path: Path) -> bool:
    head = csv_header(path)
    return bool(head) and head[0].strip() == "epoch" and "step" not in head


def read(path: Path) -> list[Source]:
    lines = csv_rows(path)
    if not lines or not lines[0] or lines[0][0].strip() != "epoch":
        raise RunError(f"{path}: not a Keras CSVLogger file (its first column is not 'epoch')")
    header = [h.strip() for h in lines[0]]
    runs: list[list[dict]] = [[]]
    last = None
    for row in lines[1:]:
        if not row or not "".join(row).strip():
            continue
        if [c.strip() for c in row] == header:  # a header written again: the next fit
            runs.append([])
            last = None
            continue
        rec = dict(zip(header, row))
        try:
            epoch = int(float(rec["epoch"]))
        except (KeyError, ValueError):
            continue
        if last is not None and epoch <= last:
            runs.append([])
        runs[-1].append(rec)
        last = epoch
    runs = [r for r in runs if r]
    if not runs:
        raise RunError(f"{path}: a Keras CSVLogger header without any epoch row")
    sources = []
    for i, recs in enumerate(runs, start=1):
        name = path.stem if len(runs) == 1 else f"{path.name}#{i}"
        where = path.parent if len(runs) == 1 else path.parent / name
        src = Source("Keras CSVLogger", "keras", [path], name, where)
        for rec in recs:
            epoch = int(float(rec["epoch"])) + 1
            for key, value in rec.items():
                if key != "epoch":
                    src.add(key, epoch, value)
        if len(runs) > 1:
            src.notes.append(f"run {i} of {len(runs)} in {path.name} (append=True): epochs "
                             f"{int(float(recs[0]['epoch'])) + 1}-{int(float(recs[-1]['epoch'])) + 1}")
        sources.append(src)
    return sources
