"""The comparison's plots, drawn from a ``results.Results``; every plot iterates over its arms.

matplotlib is imported where a figure is made, so that reading results needs none of it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airhockey.learn.config import SCRATCH
from airhockey.learn.protocol.results import (
    BudgetResult,
    ConvergenceBudget,
    OracleBudget,
    PositionBudget,
    Results,
    finite,
)
from airhockey.learn.protocol.summaries import GOAL_POINTS
from airhockey.writing import atomic_file

COLORS = (
    "tab:blue",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "navy",
    "darkgoldenrod",
    "magenta",
    "lime",
    "sienna",
    "teal",
)
"""Line colours of the arms after the reference arm (which is drawn in orange), in order."""
PLOTS = {
    "budget": "accuracy_vs_budget.png",
    "position": "accuracy_by_position.png",
    "curves": "learning_curves.png",
    "frames_k": "accuracy_vs_frames.png",
    "probes": "probes.png",
}
HIGHLIGHT = 2
"""Pretrained arms drawn in colour beside the supervised arms when there are more than ``HIGHLIGHT``
+ 1 of them: those furthest ahead of the better supervised arm; the others are drawn faded."""
FADED = {"color": "0.6", "lw": 0.8, "alpha": 0.6}
"""How the arms that are not highlighted are drawn."""
DPI = 110
PROBE_FLOOR = -0.1
"""Probe R² below this is drawn at it (a probe can be arbitrarily worse than the mean)."""


def arm_styles(results: Results) -> dict[str, dict[str, str]]:
    """Each arm's plot label and colour: the reference arm orange, the others in ``COLORS`` order."""
    styles = {}
    for i, name in enumerate(results.arms):
        method = results.arm_details[name].method
        if method is None:  # a supervised arm: scratch, or another baseline named as it is
            label = "scratch (random init)" if name == SCRATCH else name
        else:
            label = name if name == method else f"{name} ({method})"
        color = "tab:orange" if i == 0 else COLORS[(i - 1) % len(COLORS)]
        styles[name] = {"label": label, "color": color}
    return styles


def figure(rows: int, cols: int, width: float = 4.0, height: float = 3.2) -> tuple[Any, Any]:
    """A figure of ``rows`` x ``cols`` axes (a 2-D array), each ``width`` x ``height`` inches."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def plotted(results: Results) -> dict[str, str]:
    """The plots the results have data for, by ``PLOTS`` key: the file names ``write_plots`` writes
    and the report links. Learning curves need a budget with validation episodes."""
    keys = ["budget", "position"]
    if any(_has_validation(b) for b in results.convergence.budgets):
        keys.append("curves")
    if results.frames_k:
        keys.append("frames_k")
    if results.probes:
        keys.append("probes")
    return {key: PLOTS[key] for key in keys}


def write_plots(results: Results, out: Path) -> list[Path]:
    """Writes every plot the results have data for (``plotted``) into ``out``; returns their paths."""
    draw = {
        "budget": plot_accuracy_vs_budget,
        "position": plot_accuracy_by_position,
        "curves": plot_learning_curves,
        "frames_k": plot_accuracy_vs_frames,
        "probes": plot_probes,
    }
    return [draw[key](results, out / name) for key, name in plotted(results).items()]


def holds_every_class(results: Results, labelled_episodes: int) -> bool:
    """Whether a draw of ``labelled_episodes`` episodes holds every class.

    Draws are as class-balanced as they can be, so they hold every class from one episode per class
    on; below that a classifier never sees some class and its accuracy says little.
    """
    return labelled_episodes >= len(results.data.label_names)


def supervised_arms(results: Results) -> list[str]:
    """The arms without a pretext run (scratch, the practitioner, ...), the reference first."""
    return [arm for arm in results.arms if results.arm_details[arm].method is None]


def better_baseline(results: Results, budget: BudgetResult) -> str:
    """The supervised arm of the higher mean accuracy at ``budget`` (its k): what the goal and the
    leaderboard measure pretraining against."""
    arms = [arm for arm in supervised_arms(results) if arm in budget.arms] or [results.arms[0]]
    return max(arms, key=lambda arm: budget.arms[arm].accuracy_mean)


def baseline_difference(results: Results, budget: BudgetResult, arm: str) -> Any:
    """``arm`` minus ``better_baseline`` at ``budget``, paired (``PairedDifference``)."""
    return budget.difference(arm, better_baseline(results, budget)) or budget.paired_difference[arm]


def highlighted(results: Results) -> list[str]:
    """The arms drawn in colour: every supervised arm and the ``HIGHLIGHT`` pretrained arms with the
    largest mean paired difference to the better supervised arm over the budgets whose draws hold
    every class, at every k (all arms when there are few)."""
    arms, baselines = list(results.arms), supervised_arms(results)
    if len(arms) <= HIGHLIGHT + len(baselines) + 1:
        return arms
    budgets = [b for b in results.budgets if holds_every_class(results, b.labelled_episodes)]
    budgets = budgets or list(results.budgets)
    settings = [at for b in budgets for k in results.ks if (at := results.at(b.labelled_episodes, k))]

    def ahead(arm: str) -> float:
        diffs = [baseline_difference(results, at, arm).mean for at in settings if arm in at.arms]
        return sum(diffs) / len(diffs)

    best = sorted((a for a in arms if a not in baselines), key=ahead, reverse=True)[:HIGHLIGHT]
    return [arm for arm in arms if arm in baselines or arm in best]


def save(fig: Any, path: Path) -> Path:
    """Saves ``fig`` as a PNG with no software version in its metadata, so that the bytes depend on
    the drawing alone."""
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=DPI, metadata={"Software": None})
    return path


def curve_styles(results: Results) -> dict[str, dict[str, Any]]:
    """Each arm's style for curves, the faded arms first (so that the highlighted are drawn on top):
    a highlighted arm's ``arm_styles``, or ``{"faded": True, "label": ...}`` (only the first faded arm
    labelled, for all of them)."""
    styles, shown = arm_styles(results), highlighted(results)
    faded = [arm for arm in results.arms if arm not in shown]
    out: dict[str, dict[str, Any]] = {
        arm: {"faded": True, "label": f"other arms ({len(faded)}; see the tables)" if i == 0 else None}
        for i, arm in enumerate(faded)
    }
    return out | {arm: styles[arm] for arm in shown}


def _band(
    ax: Any, x: Sequence[float], mean: Sequence[float], ci: Sequence[Any], style: dict[str, Any]
) -> None:
    """A mean curve and its 95% band (where an interval exists); a faded arm's curve without a band."""
    if style.get("faded"):
        ax.plot(x, mean, marker=".", ms=3, label=style["label"], zorder=1, **FADED)
        return
    ax.plot(x, mean, marker=".", color=style["color"], label=style["label"])
    lo = [c[0] if c else math.nan for c in ci]
    hi = [c[1] if c else math.nan for c in ci]
    ax.fill_between(x, lo, hi, color=style["color"], alpha=0.2)


def _accuracy_axis(ax: Any, threshold: float) -> None:
    ax.axhline(threshold, color="grey", lw=0.8, ls="--", label=f"{threshold:.0%} accuracy")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)


def _errorbars(
    ax: Any, x: Sequence[float], means: Sequence[float], cis: Sequence[Any], style: dict[str, str]
) -> None:
    """Means with their 95% intervals as error bars."""
    lo = [m - ci[0] if ci else 0.0 for m, ci in zip(means, cis, strict=True)]
    hi = [ci[1] - m if ci else 0.0 for m, ci in zip(means, cis, strict=True)]
    ax.errorbar(x, means, yerr=[lo, hi], marker="o", capsize=3, **style)


def budget_rows(results: Results) -> dict[int, list[BudgetResult]]:
    """Each k run at two budgets or more (k = 1 always), with its budgets' results in order."""
    rows = {
        k: [r for b in results.budgets if (r := results.at(b.labelled_episodes, k)) is not None]
        for k in results.ks
    }
    return {k: r for k, r in rows.items() if k == 1 or len(r) > 1}


def plot_accuracy_vs_budget(results: Results, path: Path) -> Path:
    """Test accuracy of every arm against labelled episodes (error bars: 95% intervals), and beside
    it each pretrained arm's paired difference to the better supervised arm at each budget (the
    goal's measure, ``better_baseline``); one row per k read (``budget_rows``).

    The supervised arms, the arms furthest ahead of them (``highlighted``) and the oracle are drawn in colour,
    the other arms faded. Budgets whose draws lack a class (``holds_every_class``) are shaded; their
    differences are left out, since a classifier that never saw a class tells nothing about the
    encoder it was trained on.
    """
    by_k = budget_rows(results)
    fig, axes = figure(len(by_k), 2, width=5.0, height=3.4)
    for (k, rows), (left, right) in zip(by_k.items(), axes, strict=True):
        _budget_row(results, k, rows, left, right)
        if len(by_k) > 1:
            left.set_title(f"k = {k} frame{'s' if k > 1 else ''} read", fontsize=9)
    _figure_legend(fig, axes.flat)
    return save(fig, path)


def _budget_row(results: Results, k: int, rows: Sequence[BudgetResult], left: Any, right: Any) -> None:
    """Accuracy against budget at k frames read (``left``), and the paired differences (``right``)."""
    x = [b.labelled_episodes for b in results.budgets]
    compared = [b for b in rows if holds_every_class(results, b.labelled_episodes)]
    _arm_lines(left, results, rows, lambda b, arm: (b.arms[arm].accuracy_mean, b.arms[arm].accuracy_ci95))
    oracle = [o for b in rows if (o := results.oracle_at(b.labelled_episodes, k)) is not None]
    _oracle_lines(left, oracle)
    _accuracy_axis(left, results.threshold)
    left.set_ylabel("test accuracy (mean, 95% interval)")

    def difference(b: Any, arm: str) -> tuple[float, Any]:
        d = baseline_difference(results, b, arm)
        return 100 * d.mean, d.ci95 and [100 * d.ci95[0], 100 * d.ci95[1]]

    baselines = supervised_arms(results)
    _arm_lines(right, results, compared, difference, skip=baselines)
    right.axhline(0.0, color="grey", lw=0.8)
    right.axhline(GOAL_POINTS, color="tab:green", lw=0.8, ls="--", label=f"goal: +{GOAL_POINTS:g} points")
    which = "the better supervised arm" if len(baselines) > 1 else results.reference
    right.set_ylabel(f"minus {which} (points)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlim(x[0] / 1.5, x[-1] * 1.5)
        ax.set_xticks(x, [str(v) for v in x])
        ax.minorticks_off()
        ax.set_xlabel("labelled training episodes")
        ax.grid(alpha=0.3)
    _shade_partial(left, right, results)


def _arm_lines(
    ax: Any,
    results: Results,
    budgets: Sequence[Any],
    value: Callable[[Any, str], tuple[float, Any]],
    skip: Sequence[str] = (),
) -> None:
    """One line per arm but those in ``skip`` over ``budgets``, ``value(budget, arm)`` giving (mean,
    95% interval): the highlighted arms in colour with error bars, a little apart along x, the
    others faded."""
    styles, shown = arm_styles(results), highlighted(results)
    arms = [arm for arm in results.arms if arm not in skip]
    if not budgets:
        return
    x = [b.labelled_episodes for b in budgets]
    faded = [arm for arm in arms if arm not in shown]
    for i, arm in enumerate(faded):
        means = [value(b, arm)[0] for b in budgets]
        label = f"other arms ({len(faded)}; see the table)" if i == 0 else None
        ax.plot(x, means, marker=".", ms=3, label=label, zorder=1, **FADED)
    bright = [arm for arm in arms if arm in shown]
    for i, arm in enumerate(bright):
        offset = 1.0 + 0.04 * (i - (len(bright) - 1) / 2)
        means, cis = zip(*(value(b, arm) for b in budgets), strict=True)
        _errorbars(ax, [v * offset for v in x], means, cis, styles[arm])


def _oracle_lines(ax: Any, budgets: Sequence[OracleBudget]) -> None:
    """The oracle's head (solid) and boosted trees (dotted) in black, with the head's 95% band."""
    for oracle, style in (("head", "-"), ("boosting", ":")):
        rows = [(o.labelled_episodes, getattr(o, oracle)) for o in budgets]
        rows = [(n, r) for n, r in rows if r is not None]
        if not rows:
            continue
        ox = [n for n, _ in rows]
        ax.plot(ox, [r.accuracy_mean for _, r in rows], color="black", ls=style, label=f"oracle ({oracle})")
        if oracle == "head":
            lo = [r.accuracy_ci95[0] if r.accuracy_ci95 else math.nan for _, r in rows]
            hi = [r.accuracy_ci95[1] if r.accuracy_ci95 else math.nan for _, r in rows]
            ax.fill_between(ox, lo, hi, color="grey", alpha=0.2)


def _shade_partial(left: Any, right: Any, results: Results) -> None:
    """Shades the budgets whose draws lack a class on both panels and says so."""
    partial = [
        b.labelled_episodes for b in results.budgets if not holds_every_class(results, b.labelled_episodes)
    ]
    if not partial:
        return
    full = [b.labelled_episodes for b in results.budgets if holds_every_class(results, b.labelled_episodes)]
    edge = math.sqrt(partial[-1] * full[0]) if full else partial[-1] * 1.5
    # The left panel's note low (its points lie near chance), the right one's where the points would be.
    for ax, text, y in (
        (left, "draws lack\na class", 0.03),
        (right, "not compared:\ndraws lack\na class", 0.5),
    ):
        ax.axvspan(partial[0] / 1.5, edge, color="0.85", alpha=0.6, lw=0, zorder=0)
        ax.text(
            math.sqrt(partial[0] / 1.5 * edge),
            y,
            text,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom" if y < 0.5 else "center",
            fontsize=7,
            color="0.3",
        )


def _figure_legend(fig: Any, axes: Sequence[Any], loc: str = "outside lower center", ncol: int = 4) -> None:
    """One legend for the figure, outside the axes so that it covers no data; entries named twice
    (an arm on both panels) once."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc=loc, ncol=ncol, fontsize=7, frameon=False)


def plot_accuracy_vs_frames(results: Results, path: Path) -> Path:
    """Test accuracy at the k runs' budget against the k frames read, every arm (those not
    ``highlighted`` faded) and the oracle; the legend beside the axes."""
    fig, axes = figure(1, 1, width=6.5)
    ax = axes[0, 0]
    styles, frames_k = curve_styles(results), results.frames_k or {}
    for arm, style in styles.items():
        if arm not in frames_k:
            continue
        by_k = frames_k[arm]
        ks = sorted(by_k)
        means, cis = [by_k[k].accuracy_mean for k in ks], [by_k[k].accuracy_ci95 for k in ks]
        if style.get("faded"):
            ax.plot(ks, means, marker=".", ms=3, label=style["label"], zorder=1, **FADED)
        else:
            _errorbars(ax, ks, means, cis, style)
    oracle = results.oracle_frames_k
    if oracle:
        ks = sorted(oracle)
        ax.plot(
            ks,
            [oracle[k].head.accuracy_mean for k in ks],  # type: ignore[union-attr]
            color="black",
            label="oracle (head)",
        )
    _accuracy_axis(ax, results.threshold)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("frames the classifier reads (k)")
    ax.set_ylabel("test accuracy (mean, 95% interval)")
    _figure_legend(fig, [ax], loc="outside right upper", ncol=1)
    return save(fig, path)


def plot_probes(results: Results, path: Path) -> Path:
    """R² of linear probes from each arm's frozen encoder to each true variable, grouped bars; the
    legend beside the axes."""
    fig, axes = figure(1, 1, width=7.5, height=3.4)
    ax = axes[0, 0]
    styles = arm_styles(results)
    probes = results.probes or {}
    variables = list(next(iter(probes.values())))
    width = 0.8 / len(probes)
    for i, (arm, r2) in enumerate(probes.items()):
        x = [j + (i - (len(probes) - 1) / 2) * width for j in range(len(variables))]
        ax.bar(
            x,
            [max(r2[v], PROBE_FLOOR) for v in variables],
            width,
            color=styles[arm]["color"],
            label=styles[arm]["label"],
        )
    ax.set_xticks(range(len(variables)), variables)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylim(PROBE_FLOOR, 1.0)
    ax.set_ylabel("probe R² on test frames")
    ax.set_xlabel(
        f"true variable (velocities from 2 frames; R² below {PROBE_FLOOR:g} drawn at {PROBE_FLOOR:g})"
    )
    ax.grid(alpha=0.3, axis="y")
    _figure_legend(fig, [ax], loc="outside right upper", ncol=1)
    return save(fig, path)


def _budget_grid(
    results: Results,
    budgets: Sequence[PositionBudget | ConvergenceBudget],
    draw: Callable[[Any, Any, Any], None],
    xlabels: tuple[str, str],
    ylabel: str,
    path: Path,
) -> Path:
    """Two rows of accuracy plots with one column per budget; ``draw(top, bottom, budget)`` fills a
    column. A budget whose draws lack a class says so in its title; the legend is beside the grid."""
    fig, axes = figure(2, len(budgets))
    for col, budget in enumerate(budgets):
        top, bottom = axes[:, col]
        draw(top, bottom, budget)
        n, k = budget.labelled_episodes, budget.context_frames
        title = f"{n} labelled episode{'s' if n != 1 else ''}" + (f", k = {k}" if k > 1 else "")
        if not holds_every_class(results, budget.labelled_episodes):
            title += "\n(draws lack a class)"
        top.set_title(title)
        for ax, label in zip((top, bottom), xlabels, strict=True):
            ax.set_xlabel(label)
            _accuracy_axis(ax, results.threshold)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    _figure_legend(fig, axes.flat, loc="outside right upper", ncol=1)
    return save(fig, path)


def plot_accuracy_by_position(results: Results, path: Path) -> Path:
    """Test accuracy by fraction of the time to the hit (top) and by frames before the hit (bottom),
    one column per budget at k = 1 (the report's tables give every k); the arms that are not
    ``highlighted`` faded."""
    position, styles = results.accuracy_by_position, curve_styles(results)
    centres = [(a + b) / 2 for a, b in itertools.pairwise(position.fraction_bin_edges)]

    def draw(top: Any, bottom: Any, budget: PositionBudget) -> None:
        for arm, style in styles.items():
            by_fraction = budget.arms[arm].by_fraction
            _band(top, centres, by_fraction.accuracy_mean, by_fraction.accuracy_ci95, style)
            by_k = budget.arms[arm].by_frames_before_hit
            _band(bottom, by_k.frames_before_hit, by_k.accuracy_mean, by_k.accuracy_ci95, style)
        bottom.invert_xaxis()

    xlabels = ("fraction of the time to the hit", "frames before the hit")
    budgets = [b for b in position.budgets if b.context_frames == 1]
    return _budget_grid(results, budgets, draw, xlabels, "test accuracy", path)


def _has_validation(budget: ConvergenceBudget) -> bool:
    """Whether any arm of ``budget`` has a validation accuracy (budgets below the validation minimum
    have none)."""
    return any(finite(v) for c in budget.arms.values() for v in c.val_accuracy_mean)


def plot_learning_curves(results: Results, path: Path) -> Path:
    """Validation accuracy against optimiser steps (top) and training seconds (bottom), one column per
    budget and k with validation episodes; the dotted line marks the end of the last epoch with the
    encoder frozen."""
    styles = curve_styles(results)

    def draw(top: Any, bottom: Any, budget: ConvergenceBudget) -> None:
        for arm, style in styles.items():
            c = budget.arms[arm]
            _band(top, c.steps or c.epochs, c.val_accuracy_mean, c.val_accuracy_ci95, style)
            _band(bottom, c.elapsed_s_mean, c.val_accuracy_mean, c.val_accuracy_ci95, style)
        c = max((budget.arms[arm] for arm in styles), key=lambda c: sum(c.encoder_frozen))
        frozen = sum(c.encoder_frozen)
        if frozen:
            top.axvline(
                (c.steps or c.epochs)[frozen - 1], color="grey", lw=0.8, ls=":", label="last frozen epoch"
            )

    budgets = [b for b in results.convergence.budgets if _has_validation(b)]
    xlabels = ("optimiser steps", "classifier training seconds")
    return _budget_grid(results, budgets, draw, xlabels, "validation accuracy", path)
