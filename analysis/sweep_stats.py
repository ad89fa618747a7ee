"""Tests for claims a sweep report makes: a difference of mean best accuracies against the noise it was
measured with, corrected for how many such claims the report makes.

Layer 2: pure functions of plain numbers. The noise of one run's best validation accuracy is at least
the binomial noise of an accuracy measured on n validation images (variance p(1-p)/n), and, when some
configuration was run with several seeds, the replicates' pooled run-to-run spread (with its degrees of
freedom, so two runs a side face Student's t with 2 dof, not a normal 2-sigma bar). A family of claims
is judged with Holm's step-down correction, so a report of twenty comparisons does not find one by luck.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence

ALPHA = 0.05  # family-wise error rate of the claims a report makes (Holm)
EXACT_TIE = 1e-9  # without replicates there is no noise estimate: only equal values tie


# ── Student's t and Fisher's F from the regularized incomplete beta function (no scipy in the analysis) ──

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz's method, Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 3e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def t_pvalue(t: float, dof: float) -> float:
    """Two-sided p-value of Student's t with `dof` degrees of freedom (a normal one for infinite dof)."""
    if not math.isfinite(t):
        return 0.0 if not math.isnan(t) else 1.0
    if dof is None or not math.isfinite(dof):
        return math.erfc(abs(t) / math.sqrt(2))
    if dof <= 0:
        return 1.0
    return betainc(dof / 2, 0.5, dof / (dof + t * t))


def f_pvalue(f: float, dof1: float, dof2: float) -> float:
    """Upper-tail p-value of Fisher's F(dof1, dof2)."""
    if not math.isfinite(f) or f <= 0 or dof1 <= 0 or dof2 <= 0:
        return 0.0 if f == math.inf else 1.0
    return betainc(dof2 / 2, dof1 / 2, dof2 / (dof2 + dof1 * f))


@functools.lru_cache(maxsize=1024)
def t_critical(alpha: float, dof: float) -> float:
    """The |t| whose two-sided p-value is alpha (bisection on t_pvalue)."""
    lo, hi = 0.0, 1.0
    while t_pvalue(hi, dof) > alpha and hi < 1e6:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_pvalue(mid, dof) > alpha else (lo, mid)
    return hi


def holm(pvalues: Sequence[Optional[float]], alpha: float = ALPHA) -> list[Optional[float]]:
    """Holm-adjusted p-values (None stays None): claim i holds at family-wise level alpha when adjusted <= alpha."""
    ranked = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m, out, running = len(ranked), [None] * len(pvalues), 0.0
    for k, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - k) * p))
        out[i] = running
    return out


# ── the noise one run's best accuracy carries ──

def binomial_sd(p: Optional[float], n: Optional[int]) -> Optional[float]:
    """Standard deviation of an accuracy p measured on n images; None when n is unknown."""
    if not n or p is None or not math.isfinite(p):
        return None
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(max(p * (1 - p), 1.0 / n) / n)


@dataclass(frozen=True)
class Noise:
    """Run-to-run noise of one run's best validation accuracy."""

    replicate_sd: Optional[float]  # pooled over configurations run with several seeds; None: none were
    dof: int  # degrees of freedom of replicate_sd (0 without replicates)
    binomial_sd: Optional[float]  # the validation set's own noise at the sweep's typical accuracy; None: size unknown

    @property
    def sd(self) -> Optional[float]:
        """The larger of the two: neither can be argued away. None when neither is known."""
        known = [s for s in (self.replicate_sd, self.binomial_sd) if s is not None]
        return max(known) if known else None

    @property
    def measured(self) -> bool:
        """Replicates measured the run-to-run noise: the binomial floor alone understates it (seeds move a
        result far more than one image's worth), so without replicates no difference is claimed."""
        return self.replicate_sd is not None and self.dof > 0

    @property
    def test_dof(self) -> float:
        """Degrees of freedom of a test: the replicates' when their spread sets the noise, else the binomial
        floor's (a known variance: a normal test)."""
        if self.measured and (self.binomial_sd is None or self.replicate_sd >= self.binomial_sd):
            return self.dof
        return math.inf

    def tolerance(self, n_a: int, n_b: int, comparisons: int = 1) -> Optional[float]:
        """Largest difference of two means (of n_a and n_b runs) still within noise, at level ALPHA shared by
        `comparisons` claims (Bonferroni); None when nothing measured the noise."""
        if not self.measured:
            return None
        return t_critical(ALPHA / max(comparisons, 1), self.test_dof) * self.sd * math.sqrt(
            1 / max(n_a, 1) + 1 / max(n_b, 1))

    def as_dict(self) -> dict:
        return {"replicate_sd": self.replicate_sd, "dof": self.dof, "binomial_sd": self.binomial_sd, "sd": self.sd,
                "measured": self.measured}


def as_noise(sd: "Optional[float] | Noise") -> Optional[Noise]:
    """A Noise from a sweep's (sweep_effects.sweep_noise), or from a bare replicate sd (many degrees of freedom)."""
    if sd is None or isinstance(sd, Noise):
        return sd
    return Noise(sd, 10**6, None)


def tie_tolerance(na: int, nb: int, sd: "Optional[float] | Noise", comparisons: int = 1) -> float:
    """Largest difference of two means (of na and nb runs) that is still noise: Student's t at the noise's
    degrees of freedom, its level shared by `comparisons` claims; exact ties only when the noise is unmeasured."""
    tol = as_noise(sd).tolerance(na, nb, comparisons) if sd is not None else None
    return EXACT_TIE if tol is None else max(EXACT_TIE, tol)


def difference(mean_a: float, n_a: int, mean_b: float, n_b: int, noise: Noise) -> dict:
    """mean_a - mean_b over n_a and n_b independent runs, with its standard error, t and two-sided p-value.
    p is None when nothing measured the noise (no replicates): the difference is described, not tested."""
    delta = mean_a - mean_b
    sd = noise.sd
    se = sd * math.sqrt(1 / max(n_a, 1) + 1 / max(n_b, 1)) if sd is not None else None
    if se is None or not noise.measured:
        return {"delta": delta, "se": se, "t": None, "dof": None, "p": None}
    if se == 0:
        return {"delta": delta, "se": 0.0, "t": None, "dof": None, "p": 1.0 if delta == 0 else 0.0}
    t = delta / se
    dof = noise.test_dof
    return {"delta": delta, "se": se, "t": t, "dof": dof if math.isfinite(dof) else None, "p": t_pvalue(t, dof)}


def judge(tests: list[dict], alpha: float = ALPHA) -> None:
    """Add `p_holm` and `claim` (True: the difference holds across the family) to each test, in place."""
    for t, adj in zip(tests, holm([t.get("p") for t in tests], alpha)):
        t["p_holm"] = adj
        t["claim"] = adj is not None and adj <= alpha
