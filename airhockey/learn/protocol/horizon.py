"""Accuracy by horizon: how well each arm tells the outcome at fixed offsets from the strike (the
first frame after the bar touched the puck) and from the hit (the first frame with a lit button).

Overall accuracy mixes frames where the outcome is a guess (the puck still rests) with frames where
it can be read off the puck's path; accuracy at, say, 5 frames before the hit says how early a
method knows. Every number here is computed from what each run recorded (``scoring.score_predictions``:
per test episode, its correct and scored frames before the strike, and whether its frame at each
of ``offsets.STRIKE_OFFSETS`` and ``offsets.HIT_OFFSETS`` was classified right), never by running
a classifier again, with the 95% intervals of ``stats.bootstrap_accuracy`` (resampling the runs and
the test episodes), like every other accuracy of the comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from airhockey.learn.downstream.offsets import HIT_OFFSETS, STRIKE_OFFSETS
from airhockey.learn.protocol.formatting import interval, pct
from airhockey.learn.protocol.results import (
    Horizon,
    HorizonBudget,
    HorizonSummary,
    MeanCI,
    OffsetAccuracy,
    Results,
)
from airhockey.learn.protocol.stats import bootstrap_accuracy

Run = dict[str, Any]
"""A classifier run's record, as the run log holds it."""


def accuracy_of(hits: np.ndarray, frames: np.ndarray, groups: np.ndarray) -> MeanCI | None:
    """Mean accuracy over runs and its 95% bootstrap interval; None where no frame was scored.

    Args:
        hits: (D, E) correct frames of each run on each test episode.
        frames: (E,) scored frames of each test episode (the same in every run).
        groups: (D,) the pretext run each run loaded (the bootstrap's groups).
    """
    if not frames.sum():
        return None
    mean, ci = bootstrap_accuracy(hits, frames, groups)
    return MeanCI(mean, tuple(ci))


def _offsets(
    runs: Sequence[Run], event: str, offsets: Sequence[int], groups: np.ndarray
) -> tuple[OffsetAccuracy, ...]:
    """Accuracy at each offset from ``event`` ('strike' or 'hit'), from the runs' ``horizon`` marks."""
    points = []
    for offset in offsets:
        marks = [r["horizon"][event][str(offset)] for r in runs]
        hits = np.asarray([[c == "1" for c in line] for line in marks], np.float64)  # (D, E)
        frames = np.asarray([c != "." for c in marks[0]], np.float64)  # (E,)
        summary = accuracy_of(hits, frames, groups)
        points.append(
            OffsetAccuracy(
                offset,
                None if summary is None else summary.mean,
                None if summary is None else summary.ci95,
                int(frames.sum()),
            )
        )
    return tuple(points)


def has_horizon(run: Run) -> bool:
    """Whether a run's record holds what accuracy by horizon is computed from."""
    return "horizon" in run and "episode_hits_before_strike" in run


def arm_horizon(runs: Sequence[Run]) -> HorizonSummary:
    """One arm's accuracy by horizon over its runs of one budget (each with ``has_horizon``):
    overall, before and from the strike, at ``STRIKE_OFFSETS`` and at ``HIT_OFFSETS``."""
    groups = np.asarray([r.get("pretext_run", 0) for r in runs], np.int64)
    hits = np.asarray([r["episode_hits"] for r in runs], np.float64)
    frames = np.asarray(runs[0]["episode_frames"], np.float64)
    early_hits = np.asarray([r["episode_hits_before_strike"] for r in runs], np.float64)
    early_frames = np.asarray(runs[0]["episode_frames_before_strike"], np.float64)
    overall = accuracy_of(hits, frames, groups)
    return HorizonSummary(
        overall=overall if overall is not None else MeanCI(float("nan"), None),
        before_strike=accuracy_of(early_hits, early_frames, groups),
        after_strike=accuracy_of(hits - early_hits, frames - early_frames, groups),
        strike=_offsets(runs, "strike", STRIKE_OFFSETS, groups),
        hit=_offsets(runs, "hit", HIT_OFFSETS, groups),
    )


def horizon_summary(settings: Sequence[tuple[int, int, dict[str, Sequence[Run]]]]) -> Horizon | None:
    """Accuracy by horizon per budget, k and arm.

    Args:
        settings: (budget, k, each arm's runs there), k = 1 first, budget by budget.

    Returns:
        Every setting whose runs all recorded their predictions at the offsets; None when none did
        (runs reused from a run log written before they were recorded).
    """
    kept = [
        HorizonBudget(b, {arm: arm_horizon(arm_runs) for arm, arm_runs in by_arm.items()}, k)
        for b, k, by_arm in settings
        if all(has_horizon(r) for arm_runs in by_arm.values() for r in arm_runs)
    ]
    return Horizon(STRIKE_OFFSETS, HIT_OFFSETS, tuple(kept)) if kept else None


def _cell(value: MeanCI | OffsetAccuracy | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, OffsetAccuracy):
        return f"{pct(value.accuracy_mean)} {interval(value.accuracy_ci95)}"
    return f"{pct(value.mean)} {interval(value.ci95)}"


def render_horizon(results: Results) -> list[str]:
    """The markdown section of accuracy by horizon at the largest budget it was measured at, one
    table per k: one row per arm, the overall accuracy beside accuracy before and from the strike,
    at each offset from the strike and at each offset before the hit. No lines for results
    without it."""
    horizon = results.horizon
    if horizon is None or not horizon.budgets:
        return []
    largest = max(b.labelled_episodes for b in horizon.budgets)
    shown = [b for b in horizon.budgets if b.labelled_episodes == largest]
    strike = [f"strike {o:+d}" if o else "strike" for o in horizon.strike_offsets]
    hit = [f"hit {o:+d}" for o in horizon.hit_offsets]
    columns = ["arm", "overall", "before strike", "from strike", *strike, *hit]
    lines = [
        "## Accuracy by horizon",
        "",
        f"Test accuracy at {largest} labelled episodes on the frame a fixed number of "
        "frames from each test episode's strike (the first frame after the bar touched the puck) and "
        "before its hit (the first frame with a lit button), beside the accuracy on all scored frames "
        "and on those before and from the strike; 95% intervals resample the runs and the test "
        "episodes. An offset counts the test episodes that have a scored frame there. "
        "`results.json` holds every budget.",
        "",
    ]
    for budget in shown:
        if len(shown) > 1:
            lines += [f"k = {budget.context_frames}:", ""]
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for arm, summary in budget.arms.items():
            cells = [
                summary.overall,
                summary.before_strike,
                summary.after_strike,
                *summary.strike,
                *summary.hit,
            ]
            lines.append(f"| {arm} | " + " | ".join(_cell(c) for c in cells) + " |")
        first = next(iter(budget.arms.values()))
        episodes = [p.episodes for p in (*first.strike, *first.hit)]
        lines += ["| test episodes | | | | " + " | ".join(str(n) for n in episodes) + " |", ""]
    return lines
