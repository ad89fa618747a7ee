"""Noise-aware statistics over per-epoch series: trends with their uncertainty, not bare patience counts.

A curve "still improves" when its least-squares slope over a window is significantly below zero
(95 %, Student's t); it is "flat" when it is not, and the change over the window is small against
the curve's own epoch-to-epoch noise. Noise is estimated from second differences, which cancel a
locally linear trend, with a median so one spike does not dominate.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional

import numpy as np

# Two-sided 95 % critical values of Student's t by degrees of freedom: short windows need a larger
# |t| before a slope counts as real (4 points, 2 dof: 4.30, not 2).
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 12: 2.18,
        15: 2.13, 20: 2.09, 30: 2.04, 60: 2.00}


def t_critical(dof: int) -> float:
    """The 95 % two-sided critical |t| for dof degrees of freedom (the next table entry down, conservative)."""
    if dof < 1:
        return math.inf
    for d in sorted(_T95, reverse=True):
        if dof >= d:
            return _T95[d]
    return _T95[1]


@dataclass(frozen=True)
class Trend:
    slope: float  # change per epoch
    se: float  # standard error of the slope
    n: int  # epochs in the window
    level: float  # mean value over the window

    @property
    def t(self) -> float:
        if self.se > 0:
            return self.slope / self.se
        return 0.0 if self.slope == 0 else math.copysign(math.inf, self.slope)

    def falling(self) -> bool:
        """The slope is significantly negative (95 %, Student's t with n - 2 degrees of freedom)."""
        return self.n >= 3 and self.t < -t_critical(self.n - 2)

    def rising(self) -> bool:
        return self.n >= 3 and self.t > t_critical(self.n - 2)

    def as_dict(self) -> dict:
        return {"slope_per_epoch": _r(self.slope), "slope_se": _r(self.se), "t": _r(self.t), "epochs": self.n,
                "mean": _r(self.level)}


def _r(x: float, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def trend(y: np.ndarray, x: np.ndarray | None = None) -> Trend:
    """Least-squares slope of y over x (default 0..n-1) and its standard error; NaNs dropped."""
    y = np.asarray(y, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64)
    keep = np.isfinite(y) & np.isfinite(x)
    x, y = x[keep], y[keep]
    n = len(y)
    if n < 2:
        return Trend(0.0, math.inf, n, float(y.mean()) if n else math.nan)
    y_mean = y.mean()  # once: a numpy reduction costs more than the arithmetic on a short window
    xc = x - x.mean()
    sxx = float((xc * xc).sum())
    if sxx == 0:
        return Trend(0.0, math.inf, n, float(y_mean))
    slope = float((xc * (y - y_mean)).sum() / sxx)
    if n < 3:
        return Trend(slope, math.inf, n, float(y_mean))
    resid = y - (y_mean + slope * xc)
    se = math.sqrt(float((resid * resid).sum()) / (n - 2) / sxx)
    return Trend(slope, se, n, float(y_mean))


def median(y: np.ndarray) -> float:
    """The median of finite values, by partition: np.median costs 5x more on the short series of a run
    (it checks for NaN and imports numpy.ma), and the analysis takes thousands per sweep."""
    n = len(y)
    if n == 0:
        return math.nan
    half = n // 2
    if n % 2:
        return float(np.partition(y, half)[half])
    part = np.partition(y, (half - 1, half))
    return float((part[half - 1] + part[half]) / 2)


def noise(y: np.ndarray) -> float:
    """Epoch-to-epoch noise (a standard deviation) of a series, robust to trend and to single spikes."""
    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    if len(y) < 3:
        return 0.0
    d2 = np.diff(y, n=2)
    # For white noise of std s, second differences have std s * sqrt(6); MAD / 0.6745 estimates a std.
    return median(np.abs(d2 - median(d2))) / 0.6745 / math.sqrt(6)


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n samples."""
    if n <= 0 or not math.isfinite(p):
        return math.inf
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion k / n (95 % for z = 1.96): sound near 0 and 1, where the
    normal approximation of binomial_se gives bounds below 0 or above 1."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def window_size(epochs: int, share: float = 0.2, minimum: int = 4) -> int:
    """A trend window: a share of the run, at least `minimum` epochs."""
    return max(minimum, int(round(epochs * share)))


def rolling_trends(y: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope, its standard error and the mean of every window of `width` points (x = 0, 1, ...),
    computed together by convolution; windows holding a NaN get NaN."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y) - width + 1
    if width < 3 or n < 1:
        empty = np.full(max(n, 0), np.nan)
        return empty, empty, empty
    ok = np.isfinite(y)
    y0 = np.where(ok, y, 0.0)
    xc = np.arange(width) - (width - 1) / 2
    sxx = float((xc * xc).sum())
    slope = np.convolve(y0, xc[::-1], "valid") / sxx
    total = np.convolve(y0, np.ones(width), "valid")
    total_sq = np.convolve(y0 * y0, np.ones(width), "valid")
    mean = total / width
    resid = np.maximum(total_sq - width * mean * mean - slope * slope * sxx, 0.0)
    se = np.sqrt(resid / (width - 2) / sxx)
    bad = np.convolve(~ok, np.ones(width), "valid") > 0
    slope[bad] = se[bad] = mean[bad] = np.nan
    return slope, se, mean


def first_flat_window(y: np.ndarray, width: int, floor: float = -math.inf, rel_tol: float = 0.01) -> int | None:
    """Index where the first window of `width` points starts that no longer falls significantly.

    A window counts as flat when its slope is not significantly negative (95 %) and the fall it predicts
    over the window is under rel_tol of the distance to `floor` (so a slow but real descent is not a
    plateau), and the curve is not already within noise of its floor (a loss at its floor cannot improve).
    """
    slope, se, mean = rolling_trends(y, width)
    sigma = noise(y)
    t_crit = t_critical(width - 2)
    # Every window judged at once (a loop over the windows cost 0.2 ms a run); the first window that is either at
    # the floor or flat decides, as a scan from the start would. Windows holding a NaN (mean NaN) are skipped.
    ok = np.isfinite(mean)
    gap = mean - floor if math.isfinite(floor) else np.abs(mean)
    with np.errstate(all="ignore"):
        at_floor = ok & (gap <= np.maximum(2 * sigma, 1e-3 * np.maximum(np.abs(mean), 1e-12)))
        falling = ((se > 0) & (slope / se < -t_crit)) | ((se == 0) & (slope < 0))
        flat = ok & ~falling & (-slope * (width - 1) < rel_tol * gap)
    first = np.flatnonzero(at_floor | flat)
    if not len(first) or at_floor[first[0]]:
        return None  # no flat window; or the curve reached its floor first: converged, not a plateau
    return int(first[0])


def oscillations(y: np.ndarray, amplitude: float) -> int:
    """Direction changes between swings of at least `amplitude` (AUTOTRAINER's max/min pairs)."""
    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    if len(y) < 3:
        return 0
    count, direction, anchor = 0, 0, y[0]
    for v in y[1:]:
        delta = v - anchor
        if direction >= 0 and delta <= -amplitude:
            count += direction > 0
            direction, anchor = -1, v
        elif direction <= 0 and delta >= amplitude:
            count += direction < 0
            direction, anchor = 1, v
        elif (direction > 0 and v > anchor) or (direction < 0 and v < anchor):
            anchor = v
    return count


# ── "is the end of this curve worse than its best?" with the best chosen from many noisy epochs ──

_SIM_REPS = 4000  # Monte Carlo draws per (epochs, window): the 95th percentile is known to about +/- 0.05 sigma
_SIM_CACHE: dict[tuple[int, int, float], float] = {}
# Numbers drawn per simulation step (8 bytes each, ~4 arrays alive at once: ~130 MB): the 4,000 draws of a
# 100,000-epoch run, 4e8 numbers, would take 9.5 GB at once (traindx issue 21).
_SIM_NUMBERS = 4_000_000


def best_vs_last_quantile(epochs: int, width: int, quantile: float = 0.95) -> float:
    """The `quantile` of (best window mean - last window mean) / sigma for i.i.d. normal noise of std sigma
    over `epochs` values, the best window chosen among all `width`-epoch windows ending before the last one.

    Choosing the best of many noisy windows biases its mean up; a fixed 2-SE band on one measurement
    ignores that and fires on pure noise most of the time. Calibrated by simulation (a fixed seed, so a
    report never changes between runs), a drop above this quantile x sigma is a false alarm at most
    1 - quantile of the time on a flat noisy curve with the run's own epoch count."""
    width = max(1, min(width, epochs))
    key = (epochs, width, quantile)
    if key not in _SIM_CACHE:
        stat = np.empty(_SIM_REPS)
        for first, c in _sim_cumsums(epochs):
            means = (c[:, width:] - c[:, :-width]) / width  # every window's mean, by start index
            stat[first:first + len(means)] = means[:, :max(1, means.shape[1] - 1)].max(axis=1) - means[:, -1]
            del means
        _SIM_CACHE[key] = float(np.quantile(stat, quantile))
    return _SIM_CACHE[key]


_CUMSUM_CACHE: dict[int, np.ndarray] = {}  # epochs -> the draws' running sums (the last count, when one block)


def _sim_cumsums(epochs: int):
    """(first draw, running sums of a block of draws) over the _SIM_REPS draws of `epochs` values: the same
    draws (a fixed seed) for every window width, kept once computed when they fit in one block (a run asks for
    two or three widths of the same epoch count), else made block by block so memory stays bounded."""
    if epochs in _CUMSUM_CACHE:
        yield 0, _CUMSUM_CACHE[epochs]
        return
    rng = np.random.default_rng(12345)
    rows = max(1, _SIM_NUMBERS // epochs)  # draws simulated at once: memory bounded whatever the epoch count
    for first in range(0, _SIM_REPS, rows):  # row by row the generator yields one (reps, epochs) draw's values
        y = rng.standard_normal((min(rows, _SIM_REPS - first), epochs))
        c = np.cumsum(np.pad(y, ((0, 0), (1, 0))), axis=1)
        del y
        if rows >= _SIM_REPS:  # one epoch count kept (a sweep's runs share theirs): at most 32 MB
            _CUMSUM_CACHE.clear()
            _CUMSUM_CACHE[epochs] = c
        yield first, c
        del c


@dataclass(frozen=True)
class Decline:
    best_start: int  # index of the first value of the best window
    best_mean: float
    last_mean: float
    drop: float  # best_mean - last_mean (in the direction of "worse")
    sigma: float  # per-epoch noise used
    threshold: float  # drop above which the decline is real (quantile x sigma)

    @property
    def significant(self) -> bool:
        return self.drop > self.threshold

    def as_dict(self) -> dict:
        return {"best_window_start": self.best_start, "best_window_mean": _r(self.best_mean),
                "last_window_mean": _r(self.last_mean), "drop": _r(self.drop), "noise": _r(self.sigma),
                "threshold": _r(self.threshold)}


def decline_from_best(y: np.ndarray, width: int, sigma: float, higher_is_better: bool = True) -> Decline | None:
    """Compare the best `width`-epoch window with the last one, against the simulated quantile at sigma."""
    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    if len(y) < width + 1 or width < 1 or not math.isfinite(sigma):
        return None
    s = y if higher_is_better else -y
    c = np.concatenate([[0.0], np.cumsum(s)])
    means = (c[width:] - c[:-width]) / width
    i = int(np.argmax(means[:-1]))
    drop = float(means[i] - means[-1])
    sign = 1.0 if higher_is_better else -1.0
    return Decline(i, sign * float(means[i]), sign * float(means[-1]), drop, sigma,
                   best_vs_last_quantile(len(y), width) * sigma)


def finite_or_none(x):
    """A float for JSON: non-finite values become None (JSON has no NaN or Infinity)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def json_safe(obj):
    """A copy of plain data (dicts, lists, numbers) in which every NaN/Infinity is None and numpy scalars are
    Python numbers, so any JSON writer accepts it."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return finite_or_none(obj)
    return obj


# ── replicates: the statistics the sweep, comparison and verification reports share ──

def describe(values: list[Optional[float]]) -> dict:
    """n, mean, std, min and max of the finite values (the None and non-finite ones are left out)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    n = len(values)
    try:  # accuracies of 1e308 (a hostile file): their sum overflows, their std may too (inf: the JSON
        std = statistics.stdev(values) if n > 1 else 0.0  # report says null, the text inf)
    except (OverflowError, ValueError):
        std = math.inf
    return {"n": n, "mean": math.fsum(v / n for v in values),  # each term divided first: never overflows
            "std": std, "min": min(values), "max": max(values)}




def noise_sd(groups: list[dict]) -> Optional[float]:
    """Run-to-run standard deviation pooled over the configurations run more than once (seeds as
    replicates), or None when no configuration was."""
    replicated = [g for g in groups if g["n"] > 1 and g["std"] is not None]
    dof = sum(g["n"] - 1 for g in replicated)
    if not dof:
        return None
    try:  # stds near 1e308 (a hostile file): their squares overflow, and the noise is unknown
        sd = math.sqrt(math.fsum((g["n"] - 1) * g["std"] ** 2 for g in replicated) / dof)
    except OverflowError:
        return None
    return sd if math.isfinite(sd) else None


def variance_of_mean(std: float, n: int) -> float:
    """std**2 / n, infinite (never an OverflowError) for the spreads near 1e308 of a hostile file."""
    try:
        return (std / math.sqrt(max(n, 1))) ** 2
    except OverflowError:
        return math.inf
