"""Small-sample statistics for comparing training runs: Student-t intervals over repeats.

The label-efficiency protocol repeats each setting a handful of times (different labelled subsets
and seeds), so intervals use the t distribution with ``n - 1`` degrees of freedom, whose quantiles
are computed here from the exact CDF for integer degrees of freedom (no SciPy needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with ``df`` degrees of freedom (Abramowitz & Stegun 26.7.3-4).

    Args:
        t: a non-negative value.
        df: degrees of freedom, at least 1.
    """
    if df < 1:
        raise ValueError(f"df must be at least 1, got {df}")
    theta = math.atan(t / math.sqrt(df))
    sin, cos = math.sin(theta), math.cos(theta)
    odd = df % 2
    # The finite series of 26.7.3 (odd df: cos + 2/3 cos^3 + ...) and 26.7.4 (even df: 1 + 1/2 cos^2 + ...).
    term, series = (cos if odd else 1.0), 0.0
    for j in range((df - 1) // 2 if odd else df // 2):
        series += term
        term *= cos * cos * (2 * j + 1 + odd) / (2 * j + 2 + odd)
    return 2.0 / math.pi * (theta + sin * series) if odd else sin * series


def t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| < t) = ``confidence``: 12.706 for 95% and df=1, 4.303 for df=2, 1.96 as df grows."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    lo, hi = 0.0, 1.0
    while t_cdf_two_sided(hi, df) < confidence:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf_two_sided(mid, df) < confidence else (lo, mid)
    return (lo + hi) / 2


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, list[float] | None]:
    """The mean of ``values`` and its t interval ``[lo, hi]`` (None for fewer than two values).

    NaNs (e.g. a run that never reached a threshold) are left out; with none left the mean is NaN.
    """
    kept = [float(v) for v in values if not math.isnan(float(v))]
    if not kept:
        return math.nan, None
    mean = sum(kept) / len(kept)
    if len(kept) < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1))
    half = t_quantile(confidence, len(kept) - 1) * sd / math.sqrt(len(kept))
    return mean, [mean - half, mean + half]
