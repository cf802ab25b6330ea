"""Accuracy by horizon: exact accuracies at fixed offsets from the strike and the hit, from what
each run recorded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airhockey.learn.downstream.labelled import FrameSet
from airhockey.learn.downstream.scoring import STRIKE_WINDOW, position_accuracy, score_predictions
from airhockey.learn.protocol.horizon import arm_horizon, horizon_summary
from airhockey.learn.protocol.summaries import earliest_from_strike

# Three test episodes of 30 frames: (strike, hit); the third has no strike and no lit button.
EPISODES = ((10, 25), (4, 12), (-1, 30))


def frame_set() -> FrameSet:
    n = 30 * len(EPISODES)
    per_frame = [np.repeat(np.asarray(v, np.int64), 30) for v in zip(*EPISODES, strict=True)]
    return FrameSet(
        source=np.zeros((n, 2, 2, 3), np.uint8),
        pos=np.arange(n),
        label=np.zeros(n, np.int64),
        episode=np.repeat(np.arange(len(EPISODES)), 30),
        frame_index=np.tile(np.arange(30), len(EPISODES)),
        hit_frame=per_frame[1],
        strike_frame=per_frame[0],
        state=np.zeros((n, 8), np.float32),
    )


def run_a(test: FrameSet) -> np.ndarray:
    """Episode 0 right from frame 8 on; episode 1 right but at frame 6; episode 2 always wrong."""
    correct = np.zeros(len(test), bool)
    correct[(test.episode == 0) & (test.frame_index >= 8)] = True
    correct[(test.episode == 1) & (test.frame_index != 6)] = True
    return correct


def test_accuracy_at_each_offset_is_exact_from_the_runs_records():
    test = frame_set()
    a = score_predictions(run_a(test), test, include_after_hit=False)
    b = score_predictions(np.ones(len(test), bool), test, include_after_hit=False)
    # What a run records: per episode, '1' right, '0' wrong, '.' no scored frame at the offset.
    assert a["horizon"]["strike"] == {"-10": "0..", "-5": "0..", "0": "11.", "2": "10.", "5": "11."}
    assert a["horizon"]["hit"] == {"-20": "0.0", "-10": "110", "-5": "110", "-2": "110"}
    assert a["episode_hits_before_strike"] == [2, 4, 0] and a["episode_frames_before_strike"] == [10, 4, 30]

    summary = arm_horizon([a, b])
    strike = {p.offset: p for p in summary.strike}
    hit = {p.offset: p for p in summary.hit}
    # Two runs on the same frames: (right in a + right in b) / (2 x episodes with the frame).
    assert strike[-10].accuracy_mean == pytest.approx(1 / 2) and strike[-10].episodes == 1
    assert strike[0].accuracy_mean == pytest.approx(1.0) and strike[0].episodes == 2
    assert strike[2].accuracy_mean == pytest.approx(3 / 4)
    assert hit[-20].accuracy_mean == pytest.approx(2 / 4) and hit[-20].episodes == 2
    assert hit[-2].accuracy_mean == pytest.approx(5 / 6) and hit[-2].episodes == 3
    assert summary.before_strike.mean == pytest.approx((6 + 44) / 88)
    assert summary.after_strike.mean == pytest.approx((22 + 23) / 46)
    assert summary.overall.mean == pytest.approx((28 + 67) / 134)
    lo, hi = hit[-2].accuracy_ci95
    assert lo <= 5 / 6 <= hi and lo < hi


def test_an_offset_no_episode_reaches_has_no_accuracy_and_old_runs_have_no_horizon():
    test = frame_set().of_episodes([2])  # no strike: no strike offset has a frame
    run = score_predictions(np.ones(len(test), bool), test, include_after_hit=False)
    summary = arm_horizon([run, run])
    assert all(p.accuracy_mean is None and p.episodes == 0 for p in summary.strike)
    assert summary.after_strike is None and summary.before_strike.mean == 1.0
    old = {k: v for k, v in run.items() if k != "horizon"}
    assert horizon_summary([(4, 1, {"scratch": [old, old]})]) is None
    settings = [(4, 1, {"scratch": [old, old]}), (8, 1, {"scratch": [run, run]}), (8, 2, {"scratch": [run]})]
    horizon = horizon_summary(settings)
    assert [(b.labelled_episodes, b.context_frames) for b in horizon.budgets] == [(8, 1), (8, 2)]


def test_accuracy_at_every_offset_from_the_strike_and_where_it_stays_high():
    test = frame_set()
    record = position_accuracy(run_a(test), test)
    first = STRIKE_WINDOW[0]
    by_offset, counts = record["by_frames_from_strike"], record["frames_from_strike_frames"]
    # Frames before the hit of the two struck episodes: offsets -10..14 (episode 0), -4..7 (episode 1).
    assert counts[-10 - first] == 1 and counts[0 - first] == 2 and counts[8 - first] == 1
    assert sum(counts) == 25 + 12
    assert by_offset[-2 - first] == 1.0  # both right: episode 0 at frame 8, episode 1 at frame 2
    assert by_offset[-3 - first] == 0.5 and math.isnan(by_offset[-11 - first])
    assert earliest_from_strike(by_offset) == 3  # episode 1 wrong at its frame 6 (offset 2)
    assert earliest_from_strike([math.nan, 0.5, 0.95, math.nan, 0.92]) == first + 2
    assert earliest_from_strike([0.95, 0.5]) is None
