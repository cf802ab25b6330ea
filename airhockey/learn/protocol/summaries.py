"""What a comparison's runs add up to: accuracy per arm, paired differences, accuracy by position,
convergence, and the effect of frames with a lit button, each as a ``results`` record; and whether
the comparison meets its goal (``goal``).

Every function here reads run records (``runlog``) of one budget, k and arm and returns means with
95% bootstrap intervals (``stats``); intervals over accuracy resample the repeats (pretext runs,
then draws) and the test episodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from airhockey.learn.config import THRESHOLD, ClassifyConfig
from airhockey.learn.downstream.scoring import STRIKE_WINDOW
from airhockey.learn.protocol.results import (
    AfterHit,
    ArmAccuracy,
    BudgetResult,
    ConvergenceSummary,
    FractionCurve,
    FramesBeforeHitCurve,
    HitAccuracy,
    Interval,
    MeanCI,
    PairedDifference,
    PositionSummary,
    Results,
    StepsToAccuracy,
    StrikeCurve,
)
from airhockey.learn.protocol.stats import (
    BOOTSTRAP_SAMPLES,
    bootstrap_accuracy,
    bootstrap_mean,
    bootstrap_median,
    mean_ci,
)

Run = dict[str, Any]
"""A classifier run's record, as the run log holds it."""


def interval(ci: Sequence[float] | None) -> Interval | None:
    """A 95% interval as the records hold it."""
    return None if ci is None else tuple(ci)


def _first_reaching(history: list[dict[str, Any]], key: str) -> float:
    """``key`` of the first epoch whose validation accuracy reaches ``THRESHOLD``; NaN if none does."""
    return next((float(h[key]) for h in history if h["val_accuracy"] >= THRESHOLD), math.nan)


def mean_summary(values: Sequence[float]) -> MeanCI:
    """The mean of ``values`` with its 95% bootstrap interval."""
    mean, ci = bootstrap_mean(values)
    return MeanCI(mean, interval(ci))


def _curve(rows: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], tuple[Interval | None, ...]]:
    """Mean and 95% bootstrap interval over runs, position by position, of equally long curves."""
    stats = [bootstrap_mean(column) for column in zip(*rows, strict=True)]
    return tuple(m for m, _ in stats), tuple(interval(ci) for _, ci in stats)


def earliest_fraction(curve: Sequence[float]) -> float | None:
    """Start of the earliest fraction bin from which every later bin's accuracy is >= ``THRESHOLD``."""
    start = None
    for i in range(len(curve) - 1, -1, -1):
        if math.isnan(curve[i]) or curve[i] < THRESHOLD:
            break
        start = i / len(curve)
    return start


def most_frames_before_hit(curve: Sequence[float]) -> int | None:
    """The largest k such that accuracy is >= ``THRESHOLD`` at every 1..k frames before the hit."""
    k = 0
    while k < len(curve) and not math.isnan(curve[k]) and curve[k] >= THRESHOLD:
        k += 1
    return k or None


def earliest_from_strike(curve: Sequence[float]) -> int | None:
    """The earliest offset from the strike (``STRIKE_WINDOW``) from which accuracy is >=
    ``THRESHOLD`` at every later offset of the window that holds frames (NaN offsets, with no
    frames, are passed over); None where the last such offset is below it."""
    start = None
    for i in range(len(curve) - 1, -1, -1):
        if math.isnan(curve[i]):
            continue
        if curve[i] < THRESHOLD:
            break
        start = STRIKE_WINDOW[0] + i
    return start


def curve_statistic_ci(
    rows: Sequence[Sequence[float]],
    statistic: Callable[[list[float]], float | None],
    missing: float,
    *,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> list[float] | None:
    """95% percentile bootstrap interval of ``statistic(mean curve)`` resampling the runs (rows of
    equally long curves); a resample whose statistic is None (not reached) counts as ``missing``.
    None for fewer than two runs."""
    curves = np.asarray(rows, np.float64)
    if len(curves) < 2 or not curves.shape[1]:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for pick in rng.integers(0, len(curves), (n_boot, len(curves))):
        value = statistic(curves[pick].mean(axis=0).tolist())
        values.append(missing if value is None else value)
    lo, hi = np.quantile(values, [0.025, 0.975])
    return [float(lo), float(hi)]


def position_summary(runs: Sequence[Run], test_episodes: int) -> PositionSummary:
    """Accuracy by position over the runs of one budget and arm, with the earliest positions.

    Frames-before-hit positions are kept up to the largest k that at least half of the test
    episodes reach, so that the tail is not a handful of long episodes.
    """
    counts = runs[0]["frames_before_hit_frames"]
    longest = max((k + 1 for k, n in enumerate(counts) if 2 * n >= test_episodes), default=0)
    fraction_rows = [r["by_fraction"] for r in runs]
    k_rows = [r["by_frames_before_hit"][:longest] for r in runs]
    fraction_mean, fraction_ci = _curve(fraction_rows)
    k_mean, k_ci = _curve(k_rows)
    return PositionSummary(
        by_fraction=FractionCurve(fraction_mean, fraction_ci, tuple(runs[0]["fraction_frames"])),
        earliest_fraction=earliest_fraction(fraction_mean),
        # "Not reached" counts as 1.0 (the hit itself) in the interval's resamples.
        earliest_fraction_ci95=interval(curve_statistic_ci(fraction_rows, earliest_fraction, 1.0)),
        by_frames_before_hit=FramesBeforeHitCurve(
            tuple(range(1, longest + 1)), k_mean, k_ci, tuple(counts[:longest])
        ),
        most_frames_before_hit=most_frames_before_hit(k_mean),
        # "Not reached" counts as 0 frames in the interval's resamples.
        most_frames_before_hit_ci95=interval(curve_statistic_ci(k_rows, most_frames_before_hit, 0)),
        before_strike=mean_summary([r["accuracy_before_strike"] for r in runs]),
        strike_to_hit=mean_summary([r["accuracy_strike_to_hit"] for r in runs]),
        **_from_strike(runs, test_episodes),
    )


def _from_strike(runs: Sequence[Run], test_episodes: int) -> dict[str, Any]:
    """``PositionSummary``'s strike fields: accuracy at each offset of ``STRIKE_WINDOW`` that at
    least half of the test episodes reach, and the earliest offset from which it stays at or above
    ``THRESHOLD`` (with its interval over the runs: a resample that never gets there counts as the
    window's end). Empty for records written before runs kept it."""
    if not all("by_frames_from_strike" in r for r in runs):
        return {}
    counts = runs[0]["frames_from_strike_frames"]
    kept = [i for i, n in enumerate(counts) if 2 * n >= test_episodes]
    if not kept:
        return {}
    lo, hi = kept[0], kept[-1] + 1
    rows = [r["by_frames_from_strike"][lo:hi] for r in runs]
    mean, ci = _curve(rows)
    offsets = tuple(range(STRIKE_WINDOW[0] + lo, STRIKE_WINDOW[0] + hi))

    def earliest(curve: Sequence[float]) -> int | None:  # on the kept offsets, placed in the window
        return earliest_from_strike([math.nan] * lo + list(curve))

    return {
        "by_frames_from_strike": StrikeCurve(offsets, mean, ci, tuple(counts[lo:hi])),
        "earliest_from_strike": earliest(mean),
        "earliest_from_strike_ci95": interval(curve_statistic_ci(rows, earliest, STRIKE_WINDOW[1])),
    }


def run_steps(record: Run, training: ClassifyConfig) -> list[int]:
    """Optimiser steps after each epoch of a run (from its history; derived from the epoch length
    ``max(min_epoch_frames, train_frames)`` for records written before histories counted them)."""
    history = record["history"]
    if all("steps" in h for h in history):
        return [int(h["steps"]) for h in history]
    per_epoch = -(-max(training.min_epoch_frames, record["train_frames"]) // training.batch_size)
    return [per_epoch * int(h["epoch"]) for h in history]


def curve_area(steps: Sequence[float], accuracy: Sequence[float]) -> float:
    """Normalised area under validation accuracy against optimiser steps: the trapezoid area from
    step 0 (where accuracy is taken as the first measurement) to the last step, over the last step;
    a fraction like accuracy. NaN when any point is NaN (no validation episodes)."""
    y = np.asarray(accuracy, np.float64)
    if not y.size or np.isnan(y).any():
        return math.nan
    x = np.concatenate([[0.0], np.asarray(steps, np.float64)])
    y = np.concatenate([[y[0]], y])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / x[-1])


def first_step_reaching(steps: Sequence[int], accuracy: Sequence[float], target: float) -> int | None:
    """The first step count at which validation accuracy is at or above ``target``; None where no
    epoch reaches it (or there is no validation: NaN accuracy)."""
    return next((int(s) for s, a in zip(steps, accuracy, strict=True) if a >= target), None)


def steps_to_accuracy(
    steps: Sequence[Sequence[int]], accuracy: Sequence[Sequence[float]], target: float
) -> StepsToAccuracy | None:
    """How soon runs reach the fixed validation accuracy ``target``: the fraction of runs that do
    (a run that never does counts as one that did not; its steps are not guessed), with its 95%
    bootstrap interval over the runs, and the median steps of those that do, with its interval.

    A fixed target, not a fraction of each run's own final accuracy, so that a run that levels off
    low is not counted as fast. None without validation (every curve NaN).

    Args:
        steps: per run, the optimiser steps after each epoch.
        accuracy: per run, the validation accuracy after each epoch.
        target: the accuracy, in (0, 1].
    """
    if all(math.isnan(a) for curve in accuracy for a in curve):
        return None
    first = [first_step_reaching(x, y, target) for x, y in zip(steps, accuracy, strict=True)]
    reached = [s for s in first if s is not None]
    median, median_ci = bootstrap_median([float(s) for s in reached])
    return StepsToAccuracy(
        steps=tuple(first),
        reached=mean_summary([float(s is not None) for s in first]),
        median_steps=median if reached else None,
        median_steps_ci95=interval(median_ci),
    )


def convergence_summary(
    runs: Sequence[Run], training: ClassifyConfig, target: float | None = None
) -> ConvergenceSummary:
    """Validation accuracy by epoch, optimiser steps and training seconds; per run the area under
    accuracy against steps (``curve_area``), the epochs and seconds to ``THRESHOLD``, each as a mean
    with its 95% bootstrap interval over runs, and the steps to the fixed validation accuracy
    ``target`` (``steps_to_accuracy``; None: not measured).

    The runs of one budget share their epoch length, so every arm's curve is read at the same
    numbers of optimiser steps."""
    histories = [r["history"] for r in runs]
    accuracy = [[h["val_accuracy"] for h in hist] for hist in histories]
    steps = [run_steps(r, training) for r in runs]
    mean, ci = _curve(accuracy)
    to_accuracy = None if target is None else steps_to_accuracy(steps, accuracy, target)
    epochs = [_first_reaching(h, "epoch") for h in histories]
    seconds = [_first_reaching(h, "elapsed_s") for h in histories]
    pairs = list(zip(steps, accuracy, strict=True))
    elapsed = zip(*[[h["elapsed_s"] for h in hist] for hist in histories], strict=True)
    return ConvergenceSummary(
        epochs=tuple(h["epoch"] for h in histories[0]),
        steps=tuple(steps[0]),
        encoder_frozen=tuple(h["encoder_frozen"] for h in histories[0]),
        val_accuracy_mean=mean,
        val_accuracy_ci95=ci,
        elapsed_s_mean=tuple(float(np.mean(col)) for col in elapsed),
        area_under_curve=mean_summary([curve_area(x, y) for x, y in pairs]),
        epochs_to_threshold=tuple(epochs),
        epochs_to_threshold_mean=mean_ci(epochs)[0],
        seconds_to_threshold_mean=mean_ci(seconds)[0],
        runs_reaching_threshold=sum(not math.isnan(e) for e in epochs),
        runs=len(runs),
        to_accuracy=to_accuracy,
    )


def _hits(runs: Sequence[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D, E) correct scored frames of each run on each test episode, (E,) scored frames, and (D,)
    the pretext run each repeat loaded (the bootstrap's groups)."""
    return (
        np.asarray([r["episode_hits"] for r in runs], float),
        np.asarray(runs[0]["episode_frames"], float),
        np.asarray([r.get("pretext_run", 0) for r in runs], np.int64),
    )


def arm_summary(runs: Sequence[Run]) -> ArmAccuracy:
    """Mean accuracy over the runs with its 95% bootstrap interval (resampling runs and test
    episodes, ``stats.bootstrap_accuracy``), and the runs themselves, from which it is recomputed.

    A run's record needs ``episode_hits`` and ``episode_frames`` (per test episode, the same
    episodes in every run) and may have ``pretext_run`` (the bootstrap's groups; 0 without)."""
    hits, frames, groups = _hits(runs)
    mean, ci = bootstrap_accuracy(hits, frames, groups)
    return ArmAccuracy(mean, interval(ci), tuple(runs))


def paired_difference(arm: Sequence[Run], reference: Sequence[Run]) -> PairedDifference:
    """An arm's minus the reference arm's accuracy, repeat by repeat (same subset, same seed), with a
    95% bootstrap interval resampling the paired repeats and the test episodes."""
    diffs = [a["accuracy"] - b["accuracy"] for a, b in zip(arm, reference, strict=True)]
    (hits, frames, groups), (ref_hits, _, _) = _hits(arm), _hits(reference)
    mean, ci = bootstrap_accuracy(hits - ref_hits, frames, groups)
    return PairedDifference(
        mean=mean,
        ci95=interval(ci),
        per_repeat=tuple(diffs),
        wins=sum(d > 0 for d in diffs),
        ties=sum(d == 0 for d in diffs),
        repeats=len(diffs),
    )


def budget_result(
    runs: dict[str, list[Run]], budget: int, label: int | str, k: int, baselines: Sequence[str]
) -> BudgetResult:
    """Every arm's accuracy at one budget and k, and the paired differences to the reference (the
    first arm of ``runs``) and to each of ``baselines`` (other supervised arms).

    Args:
        runs: each arm's run records of this budget and k, the reference first.
        budget: labelled episodes.
        label: the budget as the user named it (a number or 'all').
        k: the frames the classifiers read.
        baselines: the arms after the reference that every other arm is also paired against.
    """
    names = list(runs)
    ref = names[0]
    return BudgetResult(
        budget,
        label,
        {n: arm_summary(runs[n]) for n in names},
        {n: paired_difference(runs[n], runs[ref]) for n in names[1:]},
        k,
        {b: {n: paired_difference(runs[n], runs[b]) for n in names if n != b} for b in baselines},
    )


@dataclass(frozen=True)
class Goal:
    """Whether a pretrained arm meets ``GOAL_POINTS`` over the better supervised arm (``goal``)."""

    met: bool
    arm: str
    """The pretrained arm: the one that meets the goal, or the one with the best gap."""
    labelled_episodes: int
    context_frames: int
    baseline: str
    """The supervised arm of the better mean accuracy there."""
    difference: PairedDifference
    """``arm`` minus ``baseline``, paired."""


GOAL_POINTS = 5.0
"""Han, Singh and Kim 2021's goal: a pretrained arm ahead of the supervised baselines by this many
points (with an interval that excludes 0) at ``GOAL_BUDGET`` labelled episodes or fewer."""
GOAL_BUDGET = 16
"""The most labelled episodes the goal counts."""


def goal(results: Results) -> Goal | None:
    """Whether some pretrained arm, at some budget of at most ``GOAL_BUDGET`` episodes and some k,
    is ahead of the better (by mean accuracy there) of the supervised arms by at least
    ``GOAL_POINTS`` points on the mean, with a paired 95% interval above 0. Budgets too small for
    a draw to hold every class (fewer episodes than classes) are not counted: a classifier that
    never saw a class says little about its encoder.

    Returns:
        The first (smallest budget, then k, then arm order) that meets it; else the gap with the
        largest mean (``met`` False); None without pretrained or supervised arms or budgets that small.
    """
    best: Goal | None = None
    for k in results.ks:
        for b in results.budgets:
            row = results.at(b.labelled_episodes, k)
            classes = len(results.data.label_names)
            if row is None or not classes <= b.labelled_episodes <= GOAL_BUDGET or not results.supervised:
                continue
            baseline = max(results.supervised, key=lambda a: row.arms[a].accuracy_mean)
            for arm in results.pretrained:
                d = row.difference(arm, baseline)
                if d is None:
                    continue
                met = 100 * d.mean >= GOAL_POINTS and d.ci95 is not None and d.ci95[0] > 0
                found = Goal(met, arm, b.labelled_episodes, k, baseline, d)
                if best is None or _better(found, best):
                    best = found
    return best


def _better(a: Goal, b: Goal) -> bool:
    """Whether ``a`` reports the goal better than ``b``: met where ``b`` is not; both met, at a
    smaller budget, or the same budget and a smaller k; neither met, a larger gap."""
    if a.met != b.met:
        return a.met
    if a.met:
        return (a.labelled_episodes, a.context_frames) < (b.labelled_episodes, b.context_frames)
    return a.difference.mean > b.difference.mean


def after_hit_summary(
    default: dict[str, list[Run]], other: dict[str, list[Run]], included_by_default: bool
) -> AfterHit:
    """The runs of one budget trained with and without frames that show the lit button, side by side."""

    def accuracy(runs: dict[str, list[Run]]) -> dict[str, HitAccuracy]:
        return {
            arm: HitAccuracy(
                *(
                    mean_summary([r[k] for r in arm_runs])
                    for k in ("accuracy_before_hit", "accuracy_after_hit", "accuracy_all_frames")
                )
            )
            for arm, arm_runs in runs.items()
        }

    included, excluded = (default, other) if included_by_default else (other, default)
    first = next(iter(default.values()))[0]
    return AfterHit(first["labelled_episodes"], included_by_default, accuracy(included), accuracy(excluded))
