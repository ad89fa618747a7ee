"""Per-epoch records as numpy columns: one row per epoch, a float column per field, NaN where missing."""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import numpy as np

from .numbers import as_number, valid_epoch

def _number(value: Any) -> float:
    """A JSON value as a float (rundir.numbers, the one reader): a string or another type becomes NaN, an
    integer too large for a float +-inf."""
    return as_number(value)[0] if not isinstance(value, str) else math.nan


_PLAIN = {float, int, type(None)}


class Columns:
    """Per-epoch records as numpy columns; one row per epoch, sorted, duplicates resolved (last wins)."""

    def __init__(self, records: list[dict]):
        by_epoch: dict[int, dict] = {}
        for r in records:
            epoch = r.get("epoch")
            if valid_epoch(epoch):
                by_epoch[epoch] = r
        self.records = [by_epoch[e] for e in sorted(by_epoch)]
        self.epochs = np.array(sorted(by_epoch), dtype=np.int64)
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, name: str) -> np.ndarray:
        """Column `name` as floats; NaN where a record lacks it or holds no finite-or-infinite number."""
        col = self._cache.get(name)
        if col is None:
            col = self._cache[name] = self._column([r.get(name) for r in self.records])
        return col

    @staticmethod
    def _column(values: list) -> np.ndarray:
        if set(map(type, values)) <= _PLAIN:
            try:  # the common case, vectorized: None -> NaN
                return np.array(values, dtype=np.float64)
            except OverflowError:  # an int beyond float range
                pass
        return np.array([_number(v) for v in values], dtype=np.float64)

    def nested(self, name: str) -> tuple[list[str], np.ndarray]:
        """A dict-valued field (e.g. layer_grad_norms) as (keys, epochs x keys floats); NaN where absent."""
        key = "\0" + name
        if key not in self._cache:
            rows = [d if isinstance(d, dict) else {} for d in (r.get(name) for r in self.records)]
            first = list(rows[0]) if rows else []
            if rows and all(list(d) == first for d in rows):  # one writer, one key order: a single array
                table = self._column(list(chain.from_iterable(map(dict.values, rows)))).reshape(len(rows), len(first))
                keys = first
            else:
                keys = list(dict.fromkeys(k for d in rows for k in d))
                table = np.full((len(rows), len(keys)), np.nan)
                for j, k in enumerate(keys):
                    table[:, j] = self._column([d.get(k) for d in rows])
            self._cache[key] = ([str(k) for k in keys], table)
        return self._cache[key]

    def finite(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, epochs) of the rows where column `name` is finite."""
        col = self[name]
        ok = np.isfinite(col)
        return col[ok], self.epochs[ok]

    def has(self, name: str) -> bool:
        return bool(np.isfinite(self[name]).any()) if self.records else False

    def raw(self, name: str) -> list:
        return [r.get(name) for r in self.records]
