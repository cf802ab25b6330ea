"""The comparison's plots, drawn from a ``results.Results``; every plot iterates over its arms.

matplotlib is imported where a figure is made, so that reading results needs none of it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airhockey.learn.protocol.results import ConvergenceBudget, PositionBudget, Results

COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
"""Line colours of the arms after the reference arm (which is drawn in orange), in order."""
PLOTS = {
    "budget": "accuracy_vs_budget.png",
    "position": "accuracy_by_position.png",
    "curves": "learning_curves.png",
    "frames_k": "accuracy_vs_frames.png",
    "probes": "probes.png",
}
GOAL_POINTS = 5.0
"""Han, Singh and Kim 2021's goal: a pretrained arm ahead of scratch by this many points at the
smallest budget."""


def arm_styles(results: Results) -> dict[str, dict[str, str]]:
    """Each arm's plot label and colour: the reference arm orange, the others in ``COLORS`` order."""
    styles = {}
    for i, name in enumerate(results.arms):
        method = results.arm_details[name].method
        label = (
            "scratch (random init)" if method is None else name if name == method else f"{name} ({method})"
        )
        color = "tab:orange" if i == 0 else COLORS[(i - 1) % len(COLORS)]
        styles[name] = {"label": label, "color": color}
    return styles


def figure(rows: int, cols: int, width: float = 4.0, height: float = 3.2) -> tuple[Any, Any]:
    """A figure of ``rows`` x ``cols`` axes (a 2-D array), each ``width`` x ``height`` inches."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def write_plots(results: Results, out: Path) -> None:
    """Writes every plot the results have data for into ``out``."""
    plot_accuracy_vs_budget(results, out / PLOTS["budget"])
    plot_accuracy_by_position(results, out / PLOTS["position"])
    plot_learning_curves(results, out / PLOTS["curves"])
    if results.frames_k:
        plot_accuracy_vs_frames(results, out / PLOTS["frames_k"])
    if results.probes:
        plot_probes(results, out / PLOTS["probes"])


def _band(
    ax: Any, x: Sequence[float], mean: Sequence[float], ci: Sequence[Any], style: dict[str, str]
) -> None:
    """A mean curve and its 95% band (where an interval exists)."""
    ax.plot(x, mean, marker=".", color=style["color"], label=style["label"])
    lo = [c[0] if c else math.nan for c in ci]
    hi = [c[1] if c else math.nan for c in ci]
    ax.fill_between(x, lo, hi, color=style["color"], alpha=0.2)


def _accuracy_axis(ax: Any, threshold: float) -> None:
    ax.axhline(threshold, color="grey", lw=0.8, ls="--", label=f"{threshold:.0%}")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)


def _errorbars(
    ax: Any, x: Sequence[float], means: Sequence[float], cis: Sequence[Any], style: dict[str, str]
) -> None:
    """Means with their 95% intervals as error bars."""
    lo = [m - ci[0] for m, ci in zip(means, cis, strict=True)]
    hi = [ci[1] - m for m, ci in zip(means, cis, strict=True)]
    ax.errorbar(x, means, yerr=[lo, hi], marker="o", capsize=3, **style)


def plot_accuracy_vs_budget(results: Results, path: Path) -> Path:
    """Test accuracy of every arm against labelled episodes (error bars: 95% intervals), and beside
    it each arm's paired difference to the reference arm."""
    fig, axes = figure(1, 2, width=5.0)
    budgets, styles = results.budgets, arm_styles(results)
    x = [b.labelled_episodes for b in budgets]
    arms = results.arms
    offsets = [1.0 + 0.03 * (i - (len(arms) - 1) / 2) for i in range(len(arms))]
    for offset, arm in zip(offsets, arms, strict=True):
        summaries = [b.arms[arm] for b in budgets]
        means, cis = [s.accuracy_mean for s in summaries], [s.accuracy_ci95 for s in summaries]
        _errorbars(axes[0, 0], [v * offset for v in x], means, cis, styles[arm])
    for oracle, style in (("head", "-"), ("boosting", ":")):
        rows = [getattr(o, oracle) for o in results.oracle if getattr(o, oracle) is not None]
        if rows:
            ox = [o.labelled_episodes for o in results.oracle]
            axes[0, 0].plot(
                ox,
                [r.accuracy_mean for r in rows],
                color="black",
                ls=style,
                label=f"oracle ({oracle}, true state)",
            )
            axes[0, 0].fill_between(
                ox,
                [r.accuracy_ci95[0] for r in rows],
                [r.accuracy_ci95[1] for r in rows],
                color="grey",
                alpha=0.2,
            )
    _accuracy_axis(axes[0, 0], results.threshold)
    axes[0, 0].set_ylabel("test accuracy (mean, 95% interval)")
    axes[0, 0].legend(loc="lower right", fontsize=7, ncol=2)
    for offset, arm in zip(offsets[1:], arms[1:], strict=True):
        diff = [b.paired_difference[arm] for b in budgets]
        means = [100 * d.mean for d in diff]
        cis = [[100 * d.ci95[0], 100 * d.ci95[1]] for d in diff]
        _errorbars(axes[0, 1], [v * offset for v in x], means, cis, styles[arm])
    axes[0, 1].axhline(0.0, color="grey", lw=0.8)
    axes[0, 1].axhline(
        GOAL_POINTS, color="tab:green", lw=0.8, ls="--", label=f"goal: +{GOAL_POINTS:g} points"
    )
    axes[0, 1].set_ylabel(f"minus {results.reference} (points)")
    axes[0, 1].legend(loc="upper right", fontsize=7, ncol=2)
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_xticks(x, [str(v) for v in x])
        ax.minorticks_off()
        ax.set_xlabel("labelled training episodes")
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


def plot_accuracy_vs_frames(results: Results, path: Path) -> Path:
    """Test accuracy at the k runs' budget against the k frames read, every arm and the oracle."""
    fig, axes = figure(1, 1, width=5.0)
    ax = axes[0, 0]
    styles = arm_styles(results)
    for arm, by_k in (results.frames_k or {}).items():
        ks = sorted(by_k)
        means, cis = [by_k[k].accuracy_mean for k in ks], [by_k[k].accuracy_ci95 for k in ks]
        _errorbars(ax, ks, means, cis, styles[arm])
    oracle = results.oracle_frames_k
    if oracle:
        ks = sorted(oracle)
        ax.plot(
            ks,
            [oracle[k].head.accuracy_mean for k in ks],  # type: ignore[union-attr]
            color="black",
            label="oracle (head, true state)",
        )
    _accuracy_axis(ax, results.threshold)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("frames the classifier reads (k)")
    ax.set_ylabel("test accuracy (mean, 95% interval)")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def plot_probes(results: Results, path: Path) -> Path:
    """R² of linear probes from each arm's frozen encoder to each true variable, grouped bars."""
    fig, axes = figure(1, 1, width=7.0)
    ax = axes[0, 0]
    styles = arm_styles(results)
    probes = results.probes or {}
    variables = list(next(iter(probes.values())))
    width = 0.8 / len(probes)
    for i, (arm, r2) in enumerate(probes.items()):
        x = [j + (i - (len(probes) - 1) / 2) * width for j in range(len(variables))]
        ax.bar(
            x,
            [max(r2[v], -0.1) for v in variables],
            width,
            color=styles[arm]["color"],
            label=styles[arm]["label"],
        )
    ax.set_xticks(range(len(variables)), variables)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylim(-0.1, 1.0)
    ax.set_ylabel("probe R² on test frames (below -0.1 shown at -0.1)")
    ax.set_xlabel("true variable (velocities from 2 frames)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.savefig(path, dpi=110)
    return path


def _budget_grid(
    budgets: Sequence[PositionBudget | ConvergenceBudget],
    draw: Callable[[Any, Any, Any], None],
    xlabels: tuple[str, str],
    ylabel: str,
    path: Path,
    threshold: float,
) -> Path:
    """Two rows of accuracy plots with one column per budget; ``draw(top, bottom, budget)`` fills a column."""
    fig, axes = figure(2, len(budgets))
    for col, budget in enumerate(budgets):
        top, bottom = axes[:, col]
        draw(top, bottom, budget)
        top.set_title(f"{budget.labelled_episodes} labelled episodes")
        for ax, label in zip((top, bottom), xlabels, strict=True):
            ax.set_xlabel(label)
            _accuracy_axis(ax, threshold)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(loc="lower right", fontsize=7)
    fig.savefig(path, dpi=110)
    return path


def plot_accuracy_by_position(results: Results, path: Path) -> Path:
    """Test accuracy by fraction of the time to the hit (top) and by frames before the hit (bottom),
    one column per budget."""
    position, styles = results.accuracy_by_position, arm_styles(results)
    centres = [(a + b) / 2 for a, b in itertools.pairwise(position.fraction_bin_edges)]

    def draw(top: Any, bottom: Any, budget: PositionBudget) -> None:
        for arm, style in styles.items():
            by_fraction = budget.arms[arm].by_fraction
            _band(top, centres, by_fraction.accuracy_mean, by_fraction.accuracy_ci95, style)
            by_k = budget.arms[arm].by_frames_before_hit
            _band(bottom, by_k.frames_before_hit, by_k.accuracy_mean, by_k.accuracy_ci95, style)
        bottom.invert_xaxis()

    xlabels = ("fraction of the time to the hit", "frames before the hit")
    return _budget_grid(position.budgets, draw, xlabels, "test accuracy", path, results.threshold)


def plot_learning_curves(results: Results, path: Path) -> Path:
    """Validation accuracy against optimiser steps (top) and training seconds (bottom), one column per
    budget; the dotted line marks the end of the last epoch with the encoder frozen."""
    styles = arm_styles(results)

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

    xlabels = ("optimiser steps", "training seconds (pretext time not included)")
    return _budget_grid(
        results.convergence.budgets, draw, xlabels, "validation accuracy", path, results.threshold
    )
