"""Method families compared as families: does the average current method (masked video modelling,
latent prediction, contrastive clips) beat the average method of the seed papers, at each budget
and k?

A family's accuracy at a budget and k is the mean of its arms' accuracies; its runs are "virtual"
runs, draw by draw, each the mean of the family's runs of that draw (the same labelled episodes,
seed and test episodes in every arm: the comparison pairs them). The difference between two
families is then a paired difference like any other (``summaries.paired_difference``): the mean
over draws with a 95% bootstrap interval resampling the draws, the pretext runs and the test
episodes. The contrast is fixed before the runs (``methods.FAMILIES``); which arm is each family's
best is reported beside it, chosen by mean test accuracy, and is a description, not a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from airhockey.learn.methods import FAMILIES
from airhockey.learn.protocol.results import BudgetResult, MeanCI, Results
from airhockey.learn.protocol.summaries import paired_difference


@dataclass(frozen=True)
class FamilyComparison:
    """Two method families at one budget and k: ``first`` minus ``second``."""

    budget: str
    """The budget key ('2', ..., 'all')."""
    k: int
    families: tuple[str, str]
    """The two families' names (``methods.FAMILIES`` keys), the first minus the second."""
    arms: tuple[tuple[str, ...], tuple[str, ...]]
    """Each family's arms that ran here."""
    means: tuple[float, float]
    """Each family's mean accuracy (the mean of its arms')."""
    best: tuple[str, str]
    """Each family's arm of the highest mean accuracy."""
    difference: MeanCI
    """The first family's mean minus the second's, paired draw by draw, in accuracy (not points)."""


def family_runs(at: BudgetResult, arms: Sequence[str]) -> list[dict[str, Any]]:
    """The family of ``arms`` at one budget and k as runs, draw by draw: each the mean of the arms'
    runs of that draw (``accuracy``, ``episode_hits``), with the draw's ``episode_frames`` and
    ``pretext_run``.

    Raises:
        ValueError: when an arm kept no runs, or the arms' runs are not of the same draws.
    """
    runs = [at.arms[arm].runs for arm in arms]
    if any(r is None for r in runs):
        raise ValueError("an arm kept no runs to pair")
    out = []
    for draw in zip(*runs, strict=True):
        if len({r["repeat"] for r in draw}) != 1:
            raise ValueError("the arms' runs are not of the same draws")
        out.append(
            {
                "repeat": draw[0]["repeat"],
                "pretext_run": draw[0].get("pretext_run", 0),
                "accuracy": float(np.mean([r["accuracy"] for r in draw])),
                "episode_hits": np.mean([r["episode_hits"] for r in draw], axis=0).tolist(),
                "episode_frames": draw[0]["episode_frames"],
            }
        )
    return out


def compare_families(
    results: Results, first: str = "current", second: str = "seeds"
) -> tuple[FamilyComparison, ...]:
    """``first`` minus ``second`` (``methods.FAMILIES``) at every budget and k where both families
    have an arm with stored runs; () where they never do (a comparison of one family, or results
    that kept no runs)."""
    members = {name: set(FAMILIES[name]) for name in (first, second)}
    out = []
    for b in results.budgets:
        for k in results.ks:
            at = results.at(b.labelled_episodes, k)
            if at is None:
                continue
            arms = [
                tuple(
                    arm
                    for arm in results.arms
                    if results.arm_details[arm].method in members[name]
                    and arm in at.arms
                    and at.arms[arm].runs
                )
                for name in (first, second)
            ]
            if not all(arms):
                continue
            a, b_runs = family_runs(at, arms[0]), family_runs(at, arms[1])
            d = paired_difference(a, b_runs)
            means = tuple(float(np.mean([at.arms[arm].accuracy_mean for arm in group])) for group in arms)
            best = tuple(max(group, key=lambda arm: at.arms[arm].accuracy_mean) for group in arms)
            out.append(
                FamilyComparison(
                    str(b.budget), k, (first, second), (arms[0], arms[1]), means, best, MeanCI(d.mean, d.ci95)
                )
            )
    return tuple(out)


def family_lines(comparisons: Sequence[FamilyComparison], budgets: Sequence[str]) -> list[str]:
    """The leaderboard page's section on the families: per k, a table over the budgets of each
    family's mean accuracy and best arm and the paired difference; [] without comparisons."""
    if not comparisons:
        return []
    first, second = comparisons[0].families
    lines = [
        "## Method families",
        "",
        f"The {first} family ({', '.join(FAMILIES[first])}) against the {second} family "
        f"({', '.join(FAMILIES[second])}): each family's mean accuracy over its arms, the difference "
        "of the two means paired draw by draw (points, 95% interval), and each family's best arm "
        "by mean accuracy (a description: it is chosen on the test accuracy).",
    ]
    for k in sorted({c.k for c in comparisons}):
        at = {c.budget: c for c in comparisons if c.k == k}
        keys = [key for key in budgets if key in at]
        head = " | ".join("all ep." if key == "all" else f"{key} ep." for key in keys)
        lines += ["", f"k = {k}:", "", f"| | {head} |", "| --- |" + " --- |" * len(keys)]
        for i, name in enumerate((first, second)):
            cells = [f"{100 * at[key].means[i]:.1f}% (best: {at[key].best[i]})" for key in keys]
            lines.append(f"| {name} | {' | '.join(cells)} |")
        cells = [points(at[key].difference) for key in keys]
        lines.append(f"| {first} minus {second} | {' | '.join(cells)} |")
    return lines


def points(d: MeanCI) -> str:
    """A difference of accuracies in points with its interval: ``+1.2 [-0.3, +2.8]``."""
    ci = f" [{100 * d.ci95[0]:+.1f}, {100 * d.ci95[1]:+.1f}]" if d.ci95 else ""
    return f"{100 * d.mean:+.1f}{ci}"
