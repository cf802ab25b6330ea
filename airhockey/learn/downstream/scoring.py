"""Scoring a classifier's test predictions: accuracy on the frames the protocol scores, by phase of
the episode (before the strike, from the strike to the hit), per test episode (for bootstrap
intervals over episodes), by position in the episode and at fixed offsets from the strike and the hit."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from airhockey.learn.downstream.labelled import FrameSet
from airhockey.learn.downstream.offsets import horizon_record

FRACTION_BINS = 10
"""Equal bins of the fraction of the time to the hit, ``frame_index / hit_frame`` in [0, 1)."""
STRIKE_WINDOW = (-40, 40)
"""Offsets from the strike (first and last, in frames) at which accuracy is kept per run."""


def position_accuracy(correct: NDArray[np.bool_], frames: FrameSet) -> dict[str, Any]:
    """Accuracy by position in the episode, over the frames before the hit.

    Args:
        correct: (N,) whether each frame of ``frames`` was classified right.
        frames: the frames scored.

    Returns:
        ``by_fraction``: accuracy in each of ``FRACTION_BINS`` equal bins of
        ``frame_index / hit_frame`` (NaN where a bin is empty), ``fraction_frames``: frames per bin;
        ``by_frames_before_hit``: accuracy at k = 1, 2, ... frames before the hit, up to the
        longest episode, ``frames_before_hit_frames``: frames at each k;
        ``by_frames_from_strike``: accuracy at each offset from the strike in ``STRIKE_WINDOW``
        (-40 ... +40 frames; episodes without a strike left out), ``frames_from_strike_frames``:
        frames at each offset.
    """
    before = ~frames.after_hit
    fraction = frames.frame_index[before] / np.maximum(frames.hit_frame[before], 1)
    fraction_bin = np.minimum((fraction * FRACTION_BINS).astype(np.int64), FRACTION_BINS - 1)
    k = (frames.hit_frame - frames.frame_index)[before]
    ok = correct[before].astype(np.float64)

    def binned(
        bins: NDArray[np.int64], n: int, right: NDArray[np.float64] = ok
    ) -> tuple[list[float], list[int]]:
        count = np.bincount(bins, minlength=n)[:n]
        hits = np.bincount(bins, weights=right, minlength=n)[:n]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (hits / count).tolist(), count.tolist()

    by_fraction, fraction_frames = binned(fraction_bin, FRACTION_BINS)
    longest = int(k.max()) if k.size else 0
    by_k, k_frames = binned(k - 1, longest)
    first, last = STRIKE_WINDOW
    offset = (frames.frame_index - frames.strike_frame)[before]
    inside = (frames.strike_frame[before] >= 0) & (offset >= first) & (offset <= last)
    by_offset, offset_frames = binned(offset[inside] - first, last - first + 1, ok[inside])
    return {
        "by_fraction": by_fraction,
        "fraction_frames": fraction_frames,
        "by_frames_before_hit": by_k,
        "frames_before_hit_frames": k_frames,
        "by_frames_from_strike": by_offset,
        "frames_from_strike_frames": offset_frames,
    }


def score_predictions(correct: NDArray[np.bool_], test: FrameSet, include_after_hit: bool) -> dict[str, Any]:
    """The scores of any classifier from whether it got each test frame right.

    Args:
        correct: (N,) whether each frame of ``test`` was classified right.
        test: the test frames.
        include_after_hit: whether ``accuracy`` counts the frames with a lit button.

    Returns:
        ``accuracy`` (on the frames the setting scores: before the hit unless
        ``include_after_hit``), ``accuracy_before_hit``, ``accuracy_after_hit``,
        ``accuracy_all_frames``, ``accuracy_before_strike`` (frames before the bar first touches the
        puck), ``accuracy_strike_to_hit`` (from the strike to the hit), ``test_frames`` (frames behind
        ``accuracy``), ``episode_hits`` and
        ``episode_frames`` (per test episode, in increasing episode index: correct and scored
        frames, for bootstrap intervals over episodes), the ``offsets.horizon_record`` fields and
        the ``position_accuracy`` fields.
    """
    after = test.after_hit

    def mean(mask: NDArray[np.bool_]) -> float:
        return float(correct[mask].mean()) if mask.any() else math.nan

    scored = np.ones_like(after) if include_after_hit else ~after
    episodes, which = np.unique(test.episode, return_inverse=True)
    return {
        "accuracy": mean(scored),
        "accuracy_before_hit": mean(~after),
        "accuracy_after_hit": mean(after),
        "accuracy_all_frames": mean(np.ones_like(after)),
        "accuracy_before_strike": mean(test.before_strike & ~after),
        "accuracy_strike_to_hit": mean(~test.before_strike & ~after),
        "test_frames": int(scored.sum()),
        "episode_hits": np.bincount(which, weights=correct & scored, minlength=len(episodes))
        .astype(int)
        .tolist(),
        "episode_frames": np.bincount(which, weights=scored, minlength=len(episodes)).astype(int).tolist(),
        **horizon_record(correct, test, scored),
        **position_accuracy(correct, test),
    }
