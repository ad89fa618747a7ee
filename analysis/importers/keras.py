"""Keras's CSVLogger (`epoch,accuracy,loss,val_accuracy,val_loss[,learning_rate]`) -> Sources.

Epochs are 0-based (a file whose first epoch is 1 is numbered from 1: read as it is). With `append=True` one file holds several fits one after another: a new run starts
where the epoch number does not grow (a resumed fit with `initial_epoch` keeps counting, so it stays one
run), or where the header line repeats.

A dump of `history.history` (`pd.DataFrame(history.history).to_csv(...)`: columns loss, accuracy, val_loss,
val_accuracy, ..., no epoch column) holds one row per epoch in order: its epochs are numbered 1-N from the row
order. pandas writes its row index as a first, unnamed column unless index=False: that column is no metric.
"""

from __future__ import annotations

from pathlib import Path
from rundir.numbers import as_epoch
from rundir.read import RunError

from .build import Source
from .textfile import csv_header, csv_rows

NAMES = ("training.log", "training.csv", "history.csv", "log.csv", "training_log.csv")
EPOCH = "epoch"
# The name pandas gives its row index column: none when written (to_csv), "Unnamed: 0" once read back and saved.
PANDAS_INDEX = ("", "Unnamed: 0")
# Keras records the loss of every fit: a history dump without it is no Keras history.
HISTORY_KEYS = ("loss", "val_loss")


def _history_dump(header: list[str]) -> bool:
    """True for the header of an epoch-less dump of history.history."""
    names = [h.strip() for h in header]
    if names and names[0] in PANDAS_INDEX:
        names = names[1:]
    return (bool(names) and all(names) and EPOCH not in names and "step" not in names
            and any(k in names for k in HISTORY_KEYS))


def looks_like(path: Path) -> bool:
    head = csv_header(path)
    if not head:
        return False
    return (head[0].strip() == EPOCH and "step" not in head) or _history_dump(head)


def _epochs(path: Path, lines: list[list[str]], header: list[str], by_row: bool,
            warnings: list[str]) -> tuple[list[list[tuple[int, dict]]], int]:
    """The rows of each fit in the file as (epoch as logged, {column: text}), and how many rows had no epoch."""
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
        # rundir.numbers: inf, 400 digits, 2.5, a word are no epoch; a history dump counts its rows from 0
        epoch = len(runs[-1]) if by_row else as_epoch(rec.get(EPOCH))
        if epoch is None:
            bad.append(number)
            continue
        if last is not None and epoch <= last:
            runs.append([])
        runs[-1].append((epoch, rec))
        last = epoch
    if bad:
        warnings.append(f"{path}: {len(bad)} row(s) without an epoch number (from line {bad[0]}): skipped")
    return [r for r in runs if r], len(bad)


def read(path: Path) -> list[Source]:
    warnings: list[str] = []
    lines = csv_rows(path, warnings)
    if not lines or not lines[0]:
        raise RunError(f"{path}: not a Keras CSVLogger file (its first column is not 'epoch')")
    header = [h.strip() for h in lines[0]]
    by_row = header[0] != EPOCH
    if by_row and not _history_dump(header):
        raise RunError(f"{path}: not a Keras CSVLogger file (its first column is not 'epoch') nor a dump of "
                       f"history.history (no {' or '.join(HISTORY_KEYS)} column)")
    skip = {EPOCH} | ({header[0]} if by_row and header[0] in PANDAS_INDEX else set())
    runs, bad = _epochs(path, lines, header, by_row, warnings)
    if not runs:
        raise RunError(f"{path}: a Keras CSVLogger header without any epoch row")
    # Keras counts from 0. A file whose first epoch is 1 was numbered from 1 (a script's own CSV, or Keras's
    # epoch + 1): read as it is, so that 5 epochs stay 5. A later first epoch is a fit resumed at initial_epoch.
    offset = 0 if not by_row and runs[0][0][0] == 1 and not bad else 1
    sources = []
    for i, recs in enumerate(runs, start=1):
        name = path.stem if len(runs) == 1 else f"{path.name}#{i}"
        where = path.parent if len(runs) == 1 else path.parent / name
        src = Source("Keras history dump" if by_row else "Keras CSVLogger", "keras", [path], name, where)
        src.warnings += warnings if i == 1 else []
        for epoch, rec in recs:
            for key, value in rec.items():
                if key not in skip:
                    src.add(key, epoch + offset, value)
        if by_row and i == 1:
            src.notes.append(f"{path.name} has no epoch column (a dump of history.history): epochs numbered "
                             f"from its rows, 1-{len(recs)}")
        if offset == 0 and i == 1:
            src.notes.append(f"{path.name} numbers its epochs from 1: read as they are")
        if len(runs) > 1:
            src.notes.append(f"run {i} of {len(runs)} in {path.name} (append=True): epochs "
                             f"{recs[0][0] + offset}-{recs[-1][0] + offset}")
        sources.append(src)
    return sources
