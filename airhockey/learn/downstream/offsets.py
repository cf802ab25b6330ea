"""Each test episode's prediction at fixed offsets from its strike and its hit, as a classifier
run records it: what the protocol's accuracy by horizon (``protocol.horizon``) is computed from,
without running the classifier again."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from airhockey.learn.downstream.labelled import FrameSet

STRIKE_OFFSETS = (-10, -5, 0, 2, 5)
"""Frames relative to the strike (the first frame after the bar touched the puck) at which each
test episode's prediction is kept (``horizon_marks``)."""
HIT_OFFSETS = (-20, -10, -5, -2)
"""Frames relative to the hit (the first frame with a lit button) at which it is kept."""


def horizon_marks(
    correct: NDArray[np.bool_], test: FrameSet, scored: NDArray[np.bool_]
) -> dict[str, dict[str, str]]:
    """Whether each test episode's frame at each of ``STRIKE_OFFSETS`` from its strike and
    ``HIT_OFFSETS`` from its hit was classified right: what accuracy by horizon is computed from.

    Args:
        correct: (N,) whether each frame of ``test`` was classified right.
        test: the test frames.
        scored: (N,) the frames the setting scores.

    Returns:
        Per event ('strike', 'hit') and offset (written as a signed integer, e.g. '-5', '2'), one
        character per test episode in increasing episode index: '1' right, '0' wrong, '.' no
        scored frame there (no strike, or the frame is outside the episode or not scored).
    """
    episodes, which = np.unique(test.episode, return_inverse=True)
    marks: dict[str, dict[str, str]] = {}
    for event, offsets, anchor in (
        ("strike", STRIKE_OFFSETS, test.strike_frame),
        ("hit", HIT_OFFSETS, test.hit_frame),
    ):
        marks[event] = {}
        for offset in offsets:
            at = scored & (anchor >= 0) & (test.frame_index == anchor + offset)
            line = np.full(len(episodes), ".")
            line[which[at]] = np.where(correct[at], "1", "0")
            marks[event][str(offset)] = "".join(line)
    return marks


def horizon_record(correct: NDArray[np.bool_], test: FrameSet, scored: NDArray[np.bool_]) -> dict[str, Any]:
    """What a run records for accuracy by horizon.

    Args:
        correct: (N,) whether each frame of ``test`` was classified right.
        test: the test frames.
        scored: (N,) the frames the setting scores.

    Returns:
        ``episode_hits_before_strike`` and ``episode_frames_before_strike``: per test episode, in
        increasing episode index, its correct and scored frames before the strike; ``horizon``:
        ``horizon_marks``.
    """
    early = scored & test.before_strike
    _, which = np.unique(test.episode, return_inverse=True)
    episodes = int(which.max()) + 1 if which.size else 0
    return {
        "episode_hits_before_strike": np.bincount(which, weights=correct & early, minlength=episodes)
        .astype(int)
        .tolist(),
        "episode_frames_before_strike": np.bincount(which, weights=early, minlength=episodes)
        .astype(int)
        .tolist(),
        "horizon": horizon_marks(correct, test, scored),
    }
