"""Keras's CSVLogger (`epoch,accuracy,loss,val_accuracy,val_loss[,learning_rate]`) -> Sources.

Epochs are 0-based (a file whose first epoch is 1 is numbered from 1: read as it is). With `append=True` one file holds several fits one after another: a new run starts
where the epoch number does not grow (a resumed fit with `initial_epoch` keeps counting, so it stays one
run), or where the header line repeats.
"""

from __future__ import annotations

from pathlib import Path

from rundir.numbers import as_epoch
from rundir.read import RunError

from .build import Source
from .textfile import csv_header, csv_rows

NAMES = ("training.log", "training.csv", "history.csv", "log.csv", "training_log.csv")


def looks_like(path: Path) -> bool:
    head = csv_header(path)
    return bool(head) and head[0].strip() == "epoch" and "step" not in head


def read(path: Path) -> list[Source]:
    warnings: list[str] = []
    lines = csv_rows(path, warnings)
    if not lines or not lines[0] or lines[0][0].strip() != "epoch":
        raise RunError(f"{path}: not a Keras CSVLogger file (its first column is not 'epoch')")
    header = [h.strip() for h in lines[0]]
    runs: list[list[tuple[int, dict]]] = [[]]
    last = None
    bad: list[int] = []
    for number, row in enumerate(lines[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if [c.strip() for c in row] == header:  # a header written again: the next fit
            runs.append([])
            last = None
            continue
        rec = dict(zip(header, row))
        epoch = as_epoch(rec.get("epoch"))  # rundir.numbers: inf, 400 digits, 2.5, a word are no epoch
        if epoch is None:
            bad.append(number)
            continue
        if last is not None and epoch <= last:
            runs.append([])
        runs[-1].append((epoch, rec))
        last = epoch
    if bad:
        warnings.append(f"{path}: {len(bad)} row(s) without an epoch number (from line {bad[0]}): skipped")
    runs = [r for r in runs if r]
    if not runs:
        raise RunError(f"{path}: a Keras CSVLogger header without any epoch row")
    # Keras counts from 0. A file whose first epoch is 1 was numbered from 1 (a script's own CSV, or Keras's
    # epoch + 1): read as it is, so that 5 epochs stay 5. A later first epoch is a fit resumed at initial_epoch.
    offset = 0 if runs[0][0][0] == 1 and not bad else 1
    sources = []
    for i, recs in enumerate(runs, start=1):
        name = path.stem if len(runs) == 1 else f"{path.name}#{i}"
        where = path.parent if len(runs) == 1 else path.parent / name
        src = Source("Keras CSVLogger", "keras", [path], name, where)
        src.warnings += warnings if i == 1 else []
        for epoch, rec in recs:
            for key, value in rec.items():
                if key != "epoch":
                    src.add(key, epoch + offset, value)
        if offset == 0 and i == 1:
            src.notes.append(f"{path.name} numbers its epochs from 1: read as they are")
        if len(runs) > 1:
            src.notes.append(f"run {i} of {len(runs)} in {path.name} (append=True): epochs "
                             f"{recs[0][0] + offset}-{recs[-1][0] + offset}")
        sources.append(src)
    return sources
