"""The progress bar of an epoch: tqdm with the live loss on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional


class Progress:
    """A tqdm bar with live loss on a terminal; nothing per step otherwise (the epoch line is logged)."""

    REFRESH_S = 0.5  # seconds between loss refreshes (each reads an asynchronous copy: no host sync)

    def __init__(self, total: int, epoch: int, epochs: int, running_loss: Callable[[], Optional[float]],
                 show: bool = True):
        self.bar = None
        self.running_loss = running_loss
        self.last = 0.0
        if show and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True)

    def update(self) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.monotonic()
        if now - self.last > self.REFRESH_S:
            self.last = now
            loss = self.running_loss()
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
