"""Statistics for comparing training runs: bootstrap intervals, and Student-t intervals.

The label-efficiency protocol repeats each setting over draws (different labelled subsets and
seeds), pretext runs and test episodes; ``bootstrap_accuracy`` resamples all three (the error bars
over resampled training sets of Srivastava, Mansimov and Salakhutdinov 2015, section 3.4, extended
to the test set), and its
percentile intervals respect the range an accuracy can take. ``mean_ci`` is the t interval over
repeats, with quantiles computed here from the exact CDF for integer degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


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


BOOTSTRAP_SAMPLES = 2000
"""Resamples behind every bootstrap interval."""


def _draw_weights(groups: NDArray[np.int64], rng: np.random.Generator, n_boot: int) -> NDArray[np.float64]:
    """(n_boot, D) how often each draw enters each resample: groups (pretext runs) are resampled,
    then each chosen group's draws; with one group this is resampling the draws."""
    labels = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in labels]
    weights = np.zeros((n_boot, len(groups)))
    for b in range(n_boot):
        for g in rng.integers(0, len(labels), len(labels)):
            picks = rng.choice(members[g], len(members[g]))
            np.add.at(weights[b], picks, 1.0)
    return weights


def bootstrap_accuracy(
    hits: NDArray[np.floating],
    frames: NDArray[np.floating],
    groups: NDArray[np.int64] | None = None,
    *,
    confidence: float = 0.95,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> tuple[float, list[float]]:
    """Mean accuracy over draws and its percentile bootstrap interval, resampling draws and test episodes.

    The statistic is the frame-weighted accuracy on the test episodes, averaged over the draws
    (training runs): ``sum(hits) / (D * sum(frames))``. Each resample draws the pretext runs
    (``groups``) with replacement, then each chosen run's draws with replacement, and,
    independently, the test episodes with replacement (the same episodes for every draw, as the
    runs share the test set). Percentile intervals of an accuracy stay inside [0, 1]; of a
    paired difference (``hits`` = one arm's minus another's, draw by draw), inside [-1, 1].

    Args:
        hits: (D, E) correct frames of each draw on each test episode (or paired differences).
        frames: (E,) scored frames of each test episode.
        groups: (D,) the pretext run of each draw, or None when the draws share no grouping.
        confidence: the interval's coverage.
        n_boot: resamples.
        seed: seed of the resampling.

    Returns:
        The mean and ``[lo, hi]``.
    """
    hits = np.asarray(hits, np.float64)
    frames = np.asarray(frames, np.float64)
    d, e = hits.shape
    mean = float(hits.sum() / (d * frames.sum()))
    rng = np.random.default_rng(seed)
    draw_w = _draw_weights(np.zeros(d, np.int64) if groups is None else np.asarray(groups), rng, n_boot)
    episode_w = np.stack([np.bincount(rng.integers(0, e, e), minlength=e) for _ in range(n_boot)]).astype(
        float
    )
    numerator = ((draw_w @ hits) * episode_w).sum(axis=1)  # (n_boot,)
    denominator = draw_w.sum(axis=1) * (episode_w @ frames)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = numerator / denominator
    stats = stats[np.isfinite(stats)]
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return mean, [float(lo), float(hi)]


def bootstrap_mean(
    values: Sequence[float], *, confidence: float = 0.95, n_boot: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, list[float] | None]:
    """The mean of ``values`` (NaNs left out) and its percentile bootstrap interval (None for fewer
    than two values); the interval stays inside the values' range."""
    return _bootstrap(values, np.mean, confidence, n_boot, seed)


def bootstrap_median(
    values: Sequence[float], *, confidence: float = 0.95, n_boot: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, list[float] | None]:
    """The median of ``values`` (NaNs left out) and its percentile bootstrap interval (None for
    fewer than two values); NaN and None for no values."""
    return _bootstrap(values, np.median, confidence, n_boot, seed)


def _bootstrap(
    values: Sequence[float],
    statistic: Callable[..., Any],
    confidence: float,
    n_boot: int,
    seed: int,
) -> tuple[float, list[float] | None]:
    """``statistic`` (a numpy reduction taking ``axis``) of the values that are not NaN, and its
    percentile bootstrap interval resampling them."""
    kept = np.asarray([v for v in values if not math.isnan(float(v))], np.float64)
    if not kept.size:
        return math.nan, None
    if kept.size < 2:
        return float(statistic(kept)), None
    rng = np.random.default_rng(seed)
    stats = statistic(kept[rng.integers(0, kept.size, (n_boot, kept.size))], axis=1)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(statistic(kept)), [float(lo), float(hi)]
