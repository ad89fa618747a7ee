"""PNG plots of one run's curves (matplotlib, imported only when a PNG is asked for)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .html import series
from .svg import LIMIT


def run_curves(curves: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullLocator

    tr, va = curves["train"], curves["val"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    # fixed margins: constrained_layout measures every label and took 40 % of the drawing time
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.9, wspace=0.22, hspace=0.35)
    ax = axes[0, 0]
    ax.plot(*_drawable(tr["epoch"], series(tr, "loss")), label="train")
    ax.plot(*_drawable(va["epoch"], series(va, "loss")), label="val")
    ax.set_title("loss")
    ax.legend()
    ax = axes[0, 1]
    ax.plot(*_drawable(tr["epoch"], series(tr, "accuracy")), label="train")
    ax.plot(*_drawable(va["epoch"], series(va, "accuracy")), label="val")
    ax.set_title("accuracy")
    ax.legend()
    ax = axes[1, 0]
    ax.plot(*_drawable(tr["epoch"], series(tr, "learning_rate")))
    ax.set_title("learning rate")
    lr = _drawable(tr["epoch"], series(tr, "learning_rate"))[1]
    if np.isfinite(lr).any() and np.nanmin(lr) > 0:
        _log_axis(ax, LogLocator, NullLocator)
    ax = axes[1, 1]
    for name in ("mean_grad_norm", "max_grad_norm", "grad_norm_first_layer", "grad_norm_last_layer"):
        if name in tr:
            ax.plot(*_drawable(tr["epoch"], tr[name]), label=name)
    ax.set_title("gradient norms")
    _log_axis(ax, LogLocator, NullLocator)
    if ax.lines:  # a run without train records has no gradient norms to name
        ax.legend(fontsize=7)
    for a in axes.flat:
        a.set_xlabel("epoch")
    fig.suptitle(curves["name"], parse_math=False)  # a run's name is the user's text, never mathtext
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _drawable(xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """The points matplotlib can place, the others as gaps (NaN): the same limit as the SVG charts, since a
    hostile file's 1e308 makes matplotlib's tick locator fail on a range it cannot step through."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (np.abs(x) < LIMIT) & (np.abs(y) < LIMIT)
    return np.where(ok, x, np.nan), np.where(ok, y, np.nan)


def _log_axis(ax, LogLocator, NullLocator) -> None:
    """A log y axis with a handful of labelled decades: values that span the whole float range (1e-308 to
    1e308) would otherwise get hundreds of tick labels, each typeset, and take minutes to draw."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(numticks=6))
    ax.yaxis.set_minor_locator(NullLocator())
