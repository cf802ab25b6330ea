"""The comparison's report folder: ``results.json``, three PNG plots, and ``report.md`` that embeds them.

REPORT/results.json              everything ``compare_on_dataset`` measured (see its docstring)
REPORT/accuracy_vs_budget.png    test accuracy against labelled episodes, 95% intervals; paired difference
REPORT/accuracy_by_position.png  accuracy by fraction of the time to the hit and by frames before it
REPORT/learning_curves.png       validation accuracy against epochs and against training seconds
REPORT/report.md                 the tables, the plots, and the conclusions in numbers
REPORT/runs.jsonl                every run's record as it finished (written by ``compare``)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airhockey.learn.classify import write_json

ARM_STYLE = {
    "self_supervised": {"label": "self-supervised (pretext encoder)", "color": "tab:blue"},
    "supervised": {"label": "supervised (random init)", "color": "tab:orange"},
}
PLOTS = {
    "budget": "accuracy_vs_budget.png",
    "position": "accuracy_by_position.png",
    "curves": "learning_curves.png",
}
_SCHEDULES = {
    "same": "the self-supervised arm's, random encoder frozen for the same first epochs",
    "unfrozen": "encoder trained from the first epoch at the head's learning rate",
}
GOAL_POINTS = 5.0
"""The issue's goal: the self-supervised arm ahead by this many points at the smallest budgets."""


def write_report(results: dict[str, Any], out: str | Path) -> Path:
    """Writes ``results.json``, the plots and ``report.md`` into ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    plot_accuracy_vs_budget(results, out / PLOTS["budget"])
    plot_accuracy_by_position(results, out / PLOTS["position"])
    plot_learning_curves(results, out / PLOTS["curves"])
    path = out / "report.md"
    path.write_text(render_markdown(results))
    return path


def _band(ax: Any, x: Sequence[float], mean: Sequence[float], ci: Sequence[Any], arm: str) -> None:
    """A mean curve and its 95% band (where an interval exists)."""
    style = ARM_STYLE[arm]
    ax.plot(x, mean, marker=".", color=style["color"], label=style["label"])
    lo = [c[0] if c else math.nan for c in ci]
    hi = [c[1] if c else math.nan for c in ci]
    ax.fill_between(x, lo, hi, color=style["color"], alpha=0.2)


def _figure(rows: int, cols: int, width: float = 4.0, height: float = 3.2) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _accuracy_axis(ax: Any) -> None:
    ax.axhline(0.9, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)


def plot_accuracy_vs_budget(results: dict[str, Any], path: Path) -> Path:
    """Test accuracy of both arms against labelled episodes (error bars: 95% t intervals over repeats),
    and beside it the paired difference."""
    fig, axes = _figure(1, 2, width=5.0)
    budgets = results["budgets"]
    x = [b["labelled_episodes"] for b in budgets]
    for offset, arm in zip((0.97, 1.03), ARM_STYLE, strict=True):
        means = [b[arm]["accuracy_mean"] for b in budgets]
        errors = [
            [m - b[arm]["accuracy_ci95"][0] for m, b in zip(means, budgets, strict=True)],
            [b[arm]["accuracy_ci95"][1] - m for m, b in zip(means, budgets, strict=True)],
        ]
        axes[0, 0].errorbar([v * offset for v in x], means, yerr=errors, marker="o", capsize=3, **_style(arm))
    _accuracy_axis(axes[0, 0])
    axes[0, 0].set_ylabel("test accuracy (mean, 95% interval)")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    diff = [b["paired_difference"] for b in budgets]
    axes[0, 1].errorbar(
        x,
        [100 * d["mean"] for d in diff],
        yerr=[
            [100 * (d["mean"] - d["ci95"][0]) for d in diff],
            [100 * (d["ci95"][1] - d["mean"]) for d in diff],
        ],
        marker="o",
        capsize=3,
        color="black",
    )
    axes[0, 1].axhline(0.0, color="grey", lw=0.8)
    axes[0, 1].axhline(
        GOAL_POINTS, color="tab:green", lw=0.8, ls="--", label=f"goal: +{GOAL_POINTS:g} points"
    )
    axes[0, 1].set_ylabel("self-supervised minus supervised (points)")
    axes[0, 1].legend(loc="upper right", fontsize=8)
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_xticks(x, [str(v) for v in x])
        ax.minorticks_off()
        ax.set_xlabel("labelled training episodes")
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


def _style(arm: str) -> dict[str, str]:
    return {"color": ARM_STYLE[arm]["color"], "label": ARM_STYLE[arm]["label"]}


def _budget_grid(
    budgets: list[dict[str, Any]],
    draw: Callable[[Any, Any, dict[str, Any]], None],
    xlabels: tuple[str, str],
    ylabel: str,
    path: Path,
) -> Path:
    """Two rows of accuracy plots with one column per budget; ``draw(top, bottom, budget)`` fills a column."""
    fig, axes = _figure(2, len(budgets))
    for col, budget in enumerate(budgets):
        top, bottom = axes[:, col]
        draw(top, bottom, budget)
        top.set_title(f"{budget['labelled_episodes']} labelled episodes")
        for ax, label in zip((top, bottom), xlabels, strict=True):
            ax.set_xlabel(label)
            _accuracy_axis(ax)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(loc="lower right", fontsize=7)
    fig.savefig(path, dpi=110)
    return path


def plot_accuracy_by_position(results: dict[str, Any], path: Path) -> Path:
    """Test accuracy by fraction of the time to the hit (top) and by frames before the hit (bottom),
    one column per budget."""
    position = results["accuracy_by_position"]
    centres = [(a + b) / 2 for a, b in itertools.pairwise(position["fraction_bin_edges"])]

    def draw(top: Any, bottom: Any, budget: dict[str, Any]) -> None:
        for arm in ARM_STYLE:
            by_fraction = budget[arm]["by_fraction"]
            _band(top, centres, by_fraction["accuracy_mean"], by_fraction["accuracy_ci95"], arm)
            by_k = budget[arm]["by_frames_before_hit"]
            _band(bottom, by_k["frames_before_hit"], by_k["accuracy_mean"], by_k["accuracy_ci95"], arm)
        bottom.invert_xaxis()

    xlabels = ("fraction of the time to the hit", "frames before the hit")
    return _budget_grid(position["budgets"], draw, xlabels, "test accuracy", path)


def plot_learning_curves(results: dict[str, Any], path: Path) -> Path:
    """Validation accuracy against epochs (top) and training seconds (bottom), one column per budget;
    the dotted line marks the last epoch with the encoder frozen."""

    def draw(top: Any, bottom: Any, budget: dict[str, Any]) -> None:
        for arm in ARM_STYLE:
            c = budget[arm]
            _band(top, c["epochs"], c["val_accuracy_mean"], c["val_accuracy_ci95"], arm)
            _band(bottom, c["elapsed_s_mean"], c["val_accuracy_mean"], c["val_accuracy_ci95"], arm)
        frozen = budget["self_supervised"]["encoder_frozen"]
        if any(frozen):
            top.axvline(sum(frozen), color="grey", lw=0.8, ls=":")

    xlabels = ("epoch", "training seconds (pretext time not included)")
    return _budget_grid(results["convergence"]["budgets"], draw, xlabels, "validation accuracy", path)


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _interval(ci: Sequence[float] | None, scale: float = 100.0, unit: str = "%") -> str:
    return "n/a" if ci is None else f"[{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]{unit}"


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _verdict(diff: dict[str, Any]) -> str:
    """Whether pretraining helped, hurt or made no clear difference: does the paired interval exclude 0?"""
    ci = diff["ci95"]
    if ci is not None and ci[0] > 0:
        return "pretraining helped"
    if ci is not None and ci[1] < 0:
        return "pretraining hurt"
    return "no clear difference"


def _fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "never" if value is None or math.isnan(value) else f"{value:.{digits}f}{unit}"


def render_markdown(results: dict[str, Any]) -> str:
    """The report: settings, the three tables, the plots, and what the numbers say."""
    settings, data = results["settings"], results["data"]
    lines = [
        "# Self-supervised vs supervised direction classifier",
        "",
        f"Data: `{data['path']}`, classes {', '.join(data['label_names'])}, frames "
        f"{data['frame_size'][0]}x{data['frame_size'][1]}; {data['train_episodes']} training, "
        f"{data['val_episodes']} validation and {data['test_episodes']} test episodes (the test ones were "
        f"read by neither the pretext run nor any classifier). Pretext run: `{results['pretext']['path']}`.",
        f"Each budget: {settings['repeats']} repeats, each on another class-balanced subset of training "
        f"episodes with another seed, the two arms paired on the same subset and seed. Intervals are 95% "
        f"t intervals over repeats (with few repeats they can reach past 0% and 100%). Frames with a lit "
        f"button are {'included' if settings['include_after_hit'] else 'excluded'}. Supervised schedule: "
        f"{_SCHEDULES[settings['scratch_schedule']]}. Run time {results['seconds'] / 60:.1f} min.",
        "",
    ]
    pretext = (results["pretext"] or {}).get("metrics")
    if pretext:
        lines += [
            f"The pretext model's validation next-frame MSE: {pretext['val_mse']:.6f} against "
            f"{pretext['baseline_copy_last_mse']:.6f} for copying the last frame "
            f"({_relative(pretext['val_mse_vs_copy_last'])}).",
            "",
        ]
    lines += [
        "## Accuracy against labelled episodes",
        "",
        f"![accuracy vs budget]({PLOTS['budget']})",
        "",
        "| labelled episodes | self-supervised | supervised | difference (points) "
        "| self-supervised better in |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in results["budgets"]:
        ssl, sup, d = b["self_supervised"], b["supervised"], b["paired_difference"]
        lines.append(
            f"| {b['labelled_episodes']} | {_pct(ssl['accuracy_mean'])} {_interval(ssl['accuracy_ci95'])} "
            f"| {_pct(sup['accuracy_mean'])} {_interval(sup['accuracy_ci95'])} "
            f"| {_points(d['mean'])} {_interval(d['ci95'], unit='')} "
            f"| {d['self_supervised_wins']} of {d['repeats']} repeats |"
        )
    lines += [
        "",
        "## How many frames each needs",
        "",
        f"![accuracy by position]({PLOTS['position']})",
        "",
        "Earliest position from which mean test accuracy stays at or above 90%:",
        "",
        "| labelled episodes | self-supervised: fraction of time to hit | supervised | "
        "self-supervised: frames before hit | supervised |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in results["accuracy_by_position"]["budgets"]:
        ssl, sup = b["self_supervised"], b["supervised"]
        lines.append(
            f"| {b['labelled_episodes']} | {_fmt(ssl['earliest_fraction_90'])} | "
            f"{_fmt(sup['earliest_fraction_90'])} | {ssl['most_frames_before_hit_90'] or 'never'} | "
            f"{sup['most_frames_before_hit_90'] or 'never'} |"
        )
    lines += [
        "",
        "A fraction f means: from f of the way between the first frame and the hit on; k frames means: "
        "from k frames before the hit on ('never': not even the last frame before the hit).",
        "",
        "## Convergence",
        "",
        f"![learning curves]({PLOTS['curves']})",
        "",
        "| labelled episodes | arm | final val accuracy | epochs to 90% (mean) | runs reaching 90% "
        "| training seconds to 90% (mean) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in results["convergence"]["budgets"]:
        for arm in ARM_STYLE:
            c = b[arm]
            lines.append(
                f"| {b['labelled_episodes']} | {arm.replace('_', '-')} "
                f"| {_pct(c['val_accuracy_mean'][-1])} | "
                f"{_fmt(c['epochs_to_90_mean'])} | {c['runs_reaching_90']} of {c['runs']} | "
                f"{_fmt(c['seconds_to_90_mean'], 0, ' s')} |"
            )
    lines += ["", *_after_hit_lines(results.get("after_hit")), "## Conclusions", "", *conclusions(results)]
    return "\n".join(lines) + "\n"


def _after_hit_lines(after: dict[str, Any] | None) -> list[str]:
    if after is None:
        return []
    lines = [
        "## Frames with a lit button",
        "",
        f"At {after['labelled_episodes']} labelled episodes, trained with and without the frames in which "
        "a button is lit (which give the label away), tested on the same episodes:",
        "",
        "| trained | arm | before the hit | after the hit | all frames |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setting in ("excluded", "included"):
        for arm in ARM_STYLE:
            s = after[setting][arm]
            lines.append(
                f"| {setting} | {arm.replace('_', '-')} | "
                + " | ".join(
                    f"{_pct(s[k]['mean'])} {_interval(s[k]['ci95'])}"
                    for k in ("accuracy_before_hit", "accuracy_after_hit", "accuracy_all_frames")
                )
                + " |"
            )
    return [*lines, ""]


def _relative(gain: float) -> str:
    return f"{abs(100 * gain):.1f}% {'lower' if gain >= 0 else 'higher'}"


def _reached(c: dict[str, Any]) -> str:
    """'after 3.0 epochs on average (2 of 3 runs)' or 'in no run'."""
    if not c["runs_reaching_90"]:
        return "in no run"
    return (
        f"after {c['epochs_to_90_mean']:.1f} epochs on average ({c['runs_reaching_90']} of {c['runs']} runs)"
    )


def conclusions(results: dict[str, Any]) -> list[str]:
    """Plain sentences, each with its numbers: accuracy per budget, the goal, frames, convergence."""
    out = []
    for b in results["budgets"]:
        d = b["paired_difference"]
        out.append(
            f"- {b['labelled_episodes']} labelled episodes: {_verdict(d)} "
            f"({_points(d['mean'])} points, 95% interval {_interval(d['ci95'], unit='')}; "
            f"self-supervised {_pct(b['self_supervised']['accuracy_mean'])}, "
            f"supervised {_pct(b['supervised']['accuracy_mean'])})."
        )
    smallest = results["budgets"][0]
    d = smallest["paired_difference"]
    if d["ci95"] is not None and 100 * d["ci95"][0] >= GOAL_POINTS:
        goal = "met, with the whole interval above it"
    elif 100 * d["mean"] >= GOAL_POINTS:
        goal = "met on the mean, but the interval reaches below it"
    else:
        goal = "not met"
    out.append(
        f"- Goal (self-supervised ahead by >= {GOAL_POINTS:g} points at the smallest budget): {goal} "
        f"({_points(d['mean'])} points at {smallest['labelled_episodes']} episodes, 95% interval "
        f"{_interval(d['ci95'], unit='')})."
    )
    budgets = zip(results["accuracy_by_position"]["budgets"], results["convergence"]["budgets"], strict=True)
    for pos, conv in budgets:
        frames = [pos[arm]["most_frames_before_hit_90"] for arm in ARM_STYLE]
        out.append(
            f"- {pos['labelled_episodes']} labelled episodes: mean accuracy is >= 90% over the last "
            + " vs ".join(f"{k or 0}" for k in frames)
            + " frames before the hit (self-supervised vs supervised); validation accuracy reached 90% "
            f"{_reached(conv['self_supervised'])} (self-supervised) and {_reached(conv['supervised'])} "
            "(supervised)."
        )
    return out
