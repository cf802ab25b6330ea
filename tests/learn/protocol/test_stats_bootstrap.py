"""The bootstrap intervals cover a known mean at about their nominal rate, and stay in range."""

from __future__ import annotations

import numpy as np

from airhockey.learn.protocol.stats import bootstrap_accuracy, bootstrap_mean


def synthetic_study(rng: np.random.Generator, mean: float, draws: int = 10, episodes: int = 60):
    """Correct frames of ``draws`` training runs on ``episodes`` test episodes of 30 frames: each draw
    and each episode shifts the chance of a correct frame, around ``mean`` on average."""
    frames = np.full(episodes, 30)
    draw_effect = rng.normal(0.0, 0.04, draws)
    episode_effect = rng.uniform(-0.15, 0.15, episodes)
    p = np.clip(mean + draw_effect[:, None] + episode_effect[None, :], 0.0, 1.0)
    return rng.binomial(frames[None, :], p), frames


def test_the_interval_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    trials, covered = 200, 0
    for trial in range(trials):
        hits, frames = synthetic_study(rng, 0.8)
        _, (lo, hi) = bootstrap_accuracy(hits, frames, n_boot=400, seed=trial)
        covered += lo <= 0.8 <= hi
    # Resampling draws and episodes independently is, for crossed effects, slightly conservative.
    assert 0.90 <= covered / trials <= 0.995, covered / trials


def test_intervals_respect_the_range_and_pretext_runs_widen_them():
    rng = np.random.default_rng(1)
    hits, frames = synthetic_study(rng, 0.99)
    mean, (lo, hi) = bootstrap_accuracy(hits, frames)
    assert 0.0 <= lo <= mean <= hi <= 1.0
    # Three pretext runs of which one is much worse: resampling the runs must widen the interval.
    hits = hits.astype(float)
    hits[:3] *= 0.6
    groups = np.repeat([0, 1, 2], [3, 4, 3])
    _, flat = bootstrap_accuracy(hits, frames)
    _, grouped = bootstrap_accuracy(hits, frames, groups)
    assert grouped[1] - grouped[0] > flat[1] - flat[0]
    m, ci = bootstrap_mean([0.9, 1.0, 1.0, 0.95])
    assert ci is not None and 0.9 <= ci[0] <= m <= ci[1] <= 1.0
    assert bootstrap_mean([0.5])[1] is None
