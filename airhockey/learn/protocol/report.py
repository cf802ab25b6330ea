"""The comparison's report folder: ``results.json``, three PNG plots, and ``report.md`` that embeds them.

Every table, plot and conclusion iterates over the comparison's arms (``results["arms"]``, the
reference arm first), so any number of pretext runs is reported the same way.

REPORT/results.json              everything ``compare_on_dataset`` measured (see its docstring)
REPORT/accuracy_vs_budget.png    test accuracy against labelled episodes, 95% intervals; paired differences
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

from airhockey.jsonio import write_json
from airhockey.learn.config import SCRATCH

COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
"""Line colours of the arms after the reference arm (which is drawn in orange), in order."""
PLOTS = {
    "budget": "accuracy_vs_budget.png",
    "position": "accuracy_by_position.png",
    "curves": "learning_curves.png",
    "frames_k": "accuracy_vs_frames.png",
    "probes": "probes.png",
}
SMOKE_TEST = "**A smoke test of the machinery (--quick): its numbers are not results.**"
"""The first line of a quick run's report."""
_SCHEDULES = {
    "same": "the pretrained arms' schedule, its random encoder frozen for the same first epochs",
    "unfrozen": "encoder trained from the first epoch at the head's learning rate",
}
GOAL_POINTS = 5.0
"""Seed 000's goal: a pretrained arm ahead of scratch by this many points at the smallest budget."""


def arm_styles(results: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each arm's plot label and colour: the reference arm orange, the others in ``COLORS`` order."""
    styles = {}
    for i, name in enumerate(results["arms"]):
        detail = results["arm_details"][name]
        method = detail["method"]
        label = (
            "scratch (random init)" if method is None else name if name == method else f"{name} ({method})"
        )
        color = "tab:orange" if i == 0 else COLORS[(i - 1) % len(COLORS)]
        styles[name] = {"label": label, "color": color}
    return styles


def write_report(results: dict[str, Any], out: str | Path) -> Path:
    """Writes ``results.json``, the plots and ``report.md`` into ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    plot_accuracy_vs_budget(results, out / PLOTS["budget"])
    plot_accuracy_by_position(results, out / PLOTS["position"])
    plot_learning_curves(results, out / PLOTS["curves"])
    if results.get("frames_k"):
        plot_accuracy_vs_frames(results, out / PLOTS["frames_k"])
    if results.get("probes"):
        plot_probes(results, out / PLOTS["probes"])
    path = out / "report.md"
    path.write_text(render_markdown(results))
    return path


def _band(
    ax: Any, x: Sequence[float], mean: Sequence[float], ci: Sequence[Any], style: dict[str, str]
) -> None:
    """A mean curve and its 95% band (where an interval exists)."""
    ax.plot(x, mean, marker=".", color=style["color"], label=style["label"])
    lo = [c[0] if c else math.nan for c in ci]
    hi = [c[1] if c else math.nan for c in ci]
    ax.fill_between(x, lo, hi, color=style["color"], alpha=0.2)


def _figure(rows: int, cols: int, width: float = 4.0, height: float = 3.2) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _accuracy_axis(ax: Any, threshold: float) -> None:
    ax.axhline(threshold, color="grey", lw=0.8, ls="--", label=f"{threshold:.0%}")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)


def plot_accuracy_vs_budget(results: dict[str, Any], path: Path) -> Path:
    """Test accuracy of every arm against labelled episodes (error bars: 95% t intervals over repeats),
    and beside it each arm's paired difference to the reference arm."""
    fig, axes = _figure(1, 2, width=5.0)
    budgets, styles = results["budgets"], arm_styles(results)
    x = [b["labelled_episodes"] for b in budgets]
    arms = results["arms"]
    offsets = [1.0 + 0.03 * (i - (len(arms) - 1) / 2) for i in range(len(arms))]
    for offset, arm in zip(offsets, arms, strict=True):
        _errorbars(axes[0, 0], [v * offset for v in x], [b["arms"][arm] for b in budgets], styles[arm])
    for oracle, style in (("head", "-"), ("boosting", ":")):
        rows = [o[oracle] for o in results.get("oracle") or [] if oracle in o]
        if rows:
            ox = [o["labelled_episodes"] for o in results["oracle"]]
            axes[0, 0].plot(
                ox,
                [r["accuracy_mean"] for r in rows],
                color="black",
                ls=style,
                label=f"oracle ({oracle}, true state)",
            )
            axes[0, 0].fill_between(
                ox,
                [r["accuracy_ci95"][0] for r in rows],
                [r["accuracy_ci95"][1] for r in rows],
                color="grey",
                alpha=0.2,
            )
    _accuracy_axis(axes[0, 0], results["threshold"])
    axes[0, 0].set_ylabel("test accuracy (mean, 95% interval)")
    axes[0, 0].legend(loc="lower right", fontsize=7, ncol=2)
    for offset, arm in zip(offsets[1:], arms[1:], strict=True):
        diff = [b["paired_difference"][arm] for b in budgets]
        _errorbars(axes[0, 1], [v * offset for v in x], diff, styles[arm], "mean", "ci95", scale=100.0)
    axes[0, 1].axhline(0.0, color="grey", lw=0.8)
    axes[0, 1].axhline(
        GOAL_POINTS, color="tab:green", lw=0.8, ls="--", label=f"goal: +{GOAL_POINTS:g} points"
    )
    axes[0, 1].set_ylabel(f"minus {results['reference']} (points)")
    axes[0, 1].legend(loc="upper right", fontsize=7, ncol=2)
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_xticks(x, [str(v) for v in x])
        ax.minorticks_off()
        ax.set_xlabel("labelled training episodes")
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


def _errorbars(
    ax: Any,
    x: Sequence[float],
    summaries: Sequence[dict[str, Any]],
    style: dict[str, str],
    mean: str = "accuracy_mean",
    ci: str = "accuracy_ci95",
    scale: float = 1.0,
) -> None:
    """Means with their 95% intervals as error bars, from summaries holding ``mean`` and ``ci``."""
    means = [scale * s[mean] for s in summaries]
    lo = [m - scale * s[ci][0] for m, s in zip(means, summaries, strict=True)]
    hi = [scale * s[ci][1] - m for m, s in zip(means, summaries, strict=True)]
    ax.errorbar(x, means, yerr=[lo, hi], marker="o", capsize=3, **style)


def plot_accuracy_vs_frames(results: dict[str, Any], path: Path) -> Path:
    """Test accuracy at the k runs' budget against the k frames read, every arm and the oracle."""
    fig, axes = _figure(1, 1, width=5.0)
    ax = axes[0, 0]
    styles = arm_styles(results)
    for arm, by_k in results["frames_k"].items():
        ks = sorted(int(k) for k in by_k)
        _errorbars(ax, ks, [by_k[str(k)] for k in ks], styles[arm])
    oracle = results.get("oracle_frames_k") or {}
    if oracle:
        ks = sorted(int(k) for k in oracle)
        ax.plot(
            ks,
            [oracle[str(k)]["head"]["accuracy_mean"] for k in ks],
            color="black",
            label="oracle (head, true state)",
        )
    _accuracy_axis(ax, results["threshold"])
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("frames the classifier reads (k)")
    ax.set_ylabel("test accuracy (mean, 95% interval)")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def plot_probes(results: dict[str, Any], path: Path) -> Path:
    """R² of linear probes from each arm's frozen encoder to each true variable, grouped bars."""
    fig, axes = _figure(1, 1, width=7.0)
    ax = axes[0, 0]
    styles = arm_styles(results)
    probes = results["probes"]
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
    budgets: list[dict[str, Any]],
    draw: Callable[[Any, Any, dict[str, Any]], None],
    xlabels: tuple[str, str],
    ylabel: str,
    path: Path,
    threshold: float,
) -> Path:
    """Two rows of accuracy plots with one column per budget; ``draw(top, bottom, budget)`` fills a column."""
    fig, axes = _figure(2, len(budgets))
    for col, budget in enumerate(budgets):
        top, bottom = axes[:, col]
        draw(top, bottom, budget)
        top.set_title(f"{budget['labelled_episodes']} labelled episodes")
        for ax, label in zip((top, bottom), xlabels, strict=True):
            ax.set_xlabel(label)
            _accuracy_axis(ax, threshold)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(loc="lower right", fontsize=7)
    fig.savefig(path, dpi=110)
    return path


def plot_accuracy_by_position(results: dict[str, Any], path: Path) -> Path:
    """Test accuracy by fraction of the time to the hit (top) and by frames before the hit (bottom),
    one column per budget."""
    position, styles = results["accuracy_by_position"], arm_styles(results)
    centres = [(a + b) / 2 for a, b in itertools.pairwise(position["fraction_bin_edges"])]

    def draw(top: Any, bottom: Any, budget: dict[str, Any]) -> None:
        for arm, style in styles.items():
            by_fraction = budget["arms"][arm]["by_fraction"]
            _band(top, centres, by_fraction["accuracy_mean"], by_fraction["accuracy_ci95"], style)
            by_k = budget["arms"][arm]["by_frames_before_hit"]
            _band(bottom, by_k["frames_before_hit"], by_k["accuracy_mean"], by_k["accuracy_ci95"], style)
        bottom.invert_xaxis()

    xlabels = ("fraction of the time to the hit", "frames before the hit")
    return _budget_grid(position["budgets"], draw, xlabels, "test accuracy", path, results["threshold"])


def plot_learning_curves(results: dict[str, Any], path: Path) -> Path:
    """Validation accuracy against optimiser steps (top) and training seconds (bottom), one column per
    budget; the dotted line marks the end of the last epoch with the encoder frozen."""

    styles = arm_styles(results)

    def draw(top: Any, bottom: Any, budget: dict[str, Any]) -> None:
        for arm, style in styles.items():
            c = budget["arms"][arm]
            _band(top, c.get("steps", c["epochs"]), c["val_accuracy_mean"], c["val_accuracy_ci95"], style)
            _band(bottom, c["elapsed_s_mean"], c["val_accuracy_mean"], c["val_accuracy_ci95"], style)
        c = max((budget["arms"][arm] for arm in styles), key=lambda c: sum(c["encoder_frozen"]))
        frozen = sum(c["encoder_frozen"])
        if frozen:
            top.axvline(
                c.get("steps", c["epochs"])[frozen - 1],
                color="grey",
                lw=0.8,
                ls=":",
                label="last frozen epoch",
            )

    xlabels = ("optimiser steps", "training seconds (pretext time not included)")
    return _budget_grid(
        results["convergence"]["budgets"], draw, xlabels, "validation accuracy", path, results["threshold"]
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _interval(ci: Sequence[float] | None, scale: float = 100.0) -> str:
    """``[lo, hi]`` of a 95% interval in percent (``scale`` 100), after the value it belongs to:
    ``48.0% [45.6, 50.4]``, the unit written once, on the value."""
    return "n/a" if ci is None else f"[{_signed(scale * ci[0], False)}, {_signed(scale * ci[1], False)}]"


def _whole_interval(ci: Sequence[float] | None) -> str:
    """An interval of whole numbers (frames), as ``[lo, hi]``."""
    return "n/a" if ci is None else f"[{ci[0]:.0f}, {ci[1]:.0f}]"


def _signed(value: float, plus: bool = True) -> str:
    """``value`` with one decimal, without a negative zero."""
    text = f"{value:+.1f}" if plus else f"{value:.1f}"
    return text.replace("-0.0", "0.0").replace("+0.0", "0.0") if abs(value) < 0.05 else text


def _points(value: float) -> str:
    return _signed(100 * value)


def _verdict(diff: dict[str, Any], arm: str, reference: str) -> str:
    """Whether ``arm`` beat, lost to or tied ``reference``: does the paired interval exclude 0?"""
    ci = diff["ci95"]
    if ci is not None and ci[0] > 0:
        return f"{arm} ahead of {reference}"
    if ci is not None and ci[1] < 0:
        return f"{arm} behind {reference}"
    return f"{arm} and {reference} not separated"


def _fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "not reached" if value is None or math.isnan(value) else f"{value:.{digits}f}{unit}"


def render_markdown(results: dict[str, Any]) -> str:
    """The report: settings, the tables (one column or row per arm), the plots, and the conclusions."""
    settings, data, arms, ref = results["settings"], results["data"], results["arms"], results["reference"]
    threshold = f"{results['threshold']:.0%}"
    pretrained = [a for a in arms if results["arm_details"][a]["kind"] != SCRATCH]
    oracle = {o["labelled_episodes"]: o for o in results.get("oracle") or []}
    lines = [
        f"# Direction classifiers: {', '.join(arms)}",
        "",
        *([SMOKE_TEST, ""] if results.get("smoke_test") else []),
        f"Data: `{data['path']}`, classes {', '.join(data['label_names'])}, frames "
        f"{data['frame_size'][0]}x{data['frame_size'][1]}; {data['train_episodes']} training, "
        f"{data['val_episodes']} validation and {data['test_episodes']} test episodes (the test ones were "
        "read by no pretext run and no classifier).",
        f"Each budget: {settings['repeats']} repeats, each on another class-balanced subset of training "
        f"episodes with another seed, the arms paired on the same subset and seed; differences are to "
        f"`{ref}`. Intervals are 95% percentile bootstrap intervals (resampling the repeats and, "
        f"independently, the test episodes). Frames with a lit button are "
        f"{'included' if settings['include_after_hit'] else 'excluded'}. Scratch schedule: "
        f"{_SCHEDULES[settings['scratch_schedule']]}. Run time {results['seconds'] / 60:.1f} min.",
        "",
    ]
    for arm in pretrained:
        detail = results["arm_details"][arm]
        runs = []
        for pretext in detail["pretext_runs"]:
            metrics = pretext.get("metrics") or {}
            runs.append(
                f"`{pretext['path']}` (best weights at step {pretext['step']}"
                + (
                    f"; stopped by {metrics['stopped_by']} after {metrics['steps']} steps)"
                    if metrics
                    else ")"
                )
            )
        lines.append(f"- `{arm}`: method `{detail['method']}`, pretext runs " + ", ".join(runs) + ".")
    lines += [
        "",
        "## Accuracy against labelled episodes",
        "",
        f"![accuracy vs budget]({PLOTS['budget']})",
        "",
        "| labelled episodes | "
        + " | ".join(arms)
        + " | "
        + " | ".join(f"{a} minus {ref} (points)" for a in arms[1:])
        + (
            " | oracle (head) | oracle (boosted trees) | " + " | ".join(f"{a} minus oracle" for a in arms)
            if oracle
            else ""
        )
        + " |",
        "| --- |" + " --- |" * (2 * len(arms) - 1 + (2 + len(arms) if oracle else 0)),
    ]
    for b in results["budgets"]:
        cells = [
            f"{_pct(b['arms'][a]['accuracy_mean'])} {_interval(b['arms'][a]['accuracy_ci95'])}" for a in arms
        ]
        diffs = [
            f"{_points(d['mean'])} {_interval(d['ci95'])} ({d['wins']} of {d['repeats']} ahead)"
            for d in (b["paired_difference"][a] for a in arms[1:])
        ]
        o = oracle.get(b["labelled_episodes"])
        if o:
            cells_o = [
                f"{_pct(o[m]['accuracy_mean'])} {_interval(o[m]['accuracy_ci95'])}"
                for m in ("head", "boosting")
            ]
            gaps = [_points(b["arms"][a]["accuracy_mean"] - o["head"]["accuracy_mean"]) for a in arms]
            diffs += cells_o + gaps
        lines.append(f"| {b['labelled_episodes']} | " + " | ".join(cells + diffs) + " |")
    if oracle:
        lines += [
            "",
            "Oracle: the classifiers' head (same schedule and seeds) and scikit-learn's boosted trees on "
            "the true bar and puck positions of each frame, the ceiling of what one frame can tell; minus "
            "oracle: the gap to the head's ceiling. Validation: "
            + (
                "a quarter of each budget's episodes from "
                f"{results['settings']['validation_min_budget']} up, none below (fixed epochs)."
                if results["settings"].get("validation") == "budget"
                else "the split's validation episodes (not counted in the budgets)."
            ),
        ]
    lines += [*_search_lines(results), *_frames_k_lines(results), *_probe_lines(results)]
    lines += [
        "",
        "## How many frames each needs",
        "",
        f"![accuracy by position]({PLOTS['position']})",
        "",
        f"Earliest position from which mean test accuracy stays at or above {threshold} (fraction of the "
        "time to the hit / frames before the hit):",
        "",
        "| labelled episodes | " + " | ".join(arms) + " |",
        "| --- |" + " --- |" * len(arms),
    ]
    for b in results["accuracy_by_position"]["budgets"]:
        cells = [
            f"{_fmt(p['earliest_fraction'])} {_interval(p.get('earliest_fraction_ci95'), 1.0)} / "
            f"{p['most_frames_before_hit'] or 'not reached'} "
            f"{_whole_interval(p.get('most_frames_before_hit_ci95'))}"
            for p in (b["arms"][a] for a in arms)
        ]
        lines.append(f"| {b['labelled_episodes']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "A fraction f means: from f of the way between the first frame and the hit on; k frames means: "
        "from k frames before the hit on ('not reached': not even the last frame before the hit). "
        "Intervals: 95% bootstrap over the repeats, a resample that does not reach the threshold counted "
        "as 1.0 / 0 frames.",
        "",
        "Accuracy before the bar first touches the puck (the puck rests: only the bar's approach tells) and "
        "from that strike to the hit, mean over repeats (95% bootstrap interval):",
        "",
        "| labelled episodes | " + " | ".join(f"{a}: before strike / strike to hit" for a in arms) + " |",
        "| --- |" + " --- |" * len(arms),
    ]
    for b in results["accuracy_by_position"]["budgets"]:
        cells = [
            f"{_pct(p['before_strike']['mean'])} {_interval(p['before_strike']['ci95'])} / "
            f"{_pct(p['strike_to_hit']['mean'])} {_interval(p['strike_to_hit']['ci95'])}"
            for p in (b["arms"][a] for a in arms)
        ]
        lines.append(f"| {b['labelled_episodes']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Convergence",
        "",
        f"![learning curves]({PLOTS['curves']})",
        "",
        "Validation accuracy (on the budget's own validation episodes; none below "
        f"{settings['validation_min_budget']} episodes) after each epoch; every arm of a budget runs the "
        "same optimiser steps per epoch. Area: the mean of validation accuracy over the steps (area under "
        "the curve over the steps); steps to 95%: the first step count reaching 95% of the run's own final "
        "accuracy; means over the repeats with 95% bootstrap intervals.",
        "",
        f"| labelled episodes | arm | final val accuracy | area under curve | steps to 95% of final | "
        f"epochs to {threshold} (mean) | runs reaching {threshold} | "
        f"training seconds to {threshold} (mean) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for b in results["convergence"]["budgets"]:
        for arm in arms:
            c = b["arms"][arm]
            area = c.get("area_under_curve") or {"mean": math.nan, "ci95": None}
            to_95 = c.get("steps_to_95pct_of_final") or {"mean": math.nan, "ci95": None}
            final = c["val_accuracy_mean"][-1]
            if final is None or math.isnan(final):  # None: read back from results.json
                lines.append(f"| {b['labelled_episodes']} | {arm} |" + " no validation |" * 6)
                continue
            area_cell = f"{_pct(area['mean'])} {_interval(area['ci95'])}"
            steps_cell = f"{_fmt(to_95['mean'], 0)} {_whole_interval(to_95['ci95'])}"
            lines.append(
                f"| {b['labelled_episodes']} | {arm} | {_pct(c['val_accuracy_mean'][-1])} | {area_cell} | "
                f"{steps_cell} | {_fmt(c['epochs_to_threshold_mean'])} | "
                f"{c['runs_reaching_threshold']} of {c['runs']} | "
                f"{_fmt(c['seconds_to_threshold_mean'], 0, ' s')} |"
            )
    lines += [
        "",
        *_after_hit_lines(results.get("after_hit"), arms),
        "## Conclusions",
        "",
        *conclusions(results),
    ]
    return "\n".join(lines) + "\n"


def _search_lines(results: dict[str, Any]) -> list[str]:
    search = results.get("search")
    if not search:
        return []
    names = list(search["candidates"])
    lines = [
        "",
        "## The hyperparameter search",
        "",
        f"Every arm tried the same candidates on the first {search['draws']} draws of {search['budget']} "
        "labelled episodes (a quarter of them validating); the one with the best mean validation accuracy "
        "(each run at its best epoch) ran every budget. Mean best validation accuracy:",
        "",
        "| arm | " + " | ".join(names) + " | chosen |",
        "| --- |" + " --- |" * (len(names) + 1),
    ]
    for arm, row in search["arms"].items():
        scores = row["mean_best_val_accuracy"]
        lines.append(f"| {arm} | " + " | ".join(_pct(scores[n]) for n in names) + f" | {row['chosen']} |")
    head = search.get("oracle_head")
    if head:
        tried = ", ".join(f"{lr}: {_pct(a)}" for lr, a in head["mean_val_accuracy"].items())
        lines += [
            "",
            f"The oracle's head (no encoder) tried the same learning rates on the same draws ({tried}) "
            f"and runs at lr={head['chosen']:g}.",
        ]
    return lines


def _k_budget(results: dict[str, Any]) -> int:
    """The budget of the k > 1 runs (the largest in reports written before it was a setting)."""
    return results.get("frames_k_budget") or results["budgets"][-1]["labelled_episodes"]


def _frames_k_lines(results: dict[str, Any]) -> list[str]:
    by_arm = results.get("frames_k")
    if not by_arm:
        return []
    ks = sorted({int(k) for v in by_arm.values() for k in v})
    oracle = results.get("oracle_frames_k") or {}
    lines = [
        "",
        "## Accuracy against the frames the classifier reads",
        "",
        f"![accuracy vs frames]({PLOTS['frames_k']})",
        "",
        f"At {_k_budget(results)} labelled episodes, the classifier reading the k "
        "frames ending at the classified one (before frame k - 1 the window repeats the episode's first):",
        "",
        "| arm | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "| --- |" + " --- |" * len(ks),
    ]
    for arm, by_k in by_arm.items():
        lines.append(
            f"| {arm} | "
            + " | ".join(
                f"{_pct(by_k[str(k)]['accuracy_mean'])} {_interval(by_k[str(k)]['accuracy_ci95'])}"
                for k in ks
            )
            + " |"
        )
    for arm, by_k in (results.get("frames_k_difference") or {}).items():
        lines.append(
            f"| {arm} minus {results['reference']} (points) | "
            + " | ".join(f"{_points(by_k[str(k)]['mean'])} {_interval(by_k[str(k)]['ci95'])}" for k in ks)
            + " |"
        )
    if oracle:
        lines.append(
            "| oracle (head; positions, and velocities from k = 2) | "
            + " | ".join(
                _pct(oracle[str(k)]["head"]["accuracy_mean"]) if str(k) in oracle else "n/a" for k in ks
            )
            + " |"
        )
    return lines


def _probe_lines(results: dict[str, Any]) -> list[str]:
    probes = results.get("probes")
    if not probes:
        return []
    variables = list(next(iter(probes.values())))
    lines = [
        "",
        "## What the frozen encoders hold: linear probes",
        "",
        f"![probes]({PLOTS['probes']})",
        "",
        "R² on the test frames of ridge regressions (standardised features, penalty by leave-one-out) from "
        "each arm's frozen encoder features to the true state: positions from one frame, the puck's velocity "
        "from two. The scratch arm's encoder is its random initial one. 1: held linearly; 0: not at all.",
        "",
        "| arm | " + " | ".join(variables) + " |",
        "| --- |" + " --- |" * len(variables),
    ]
    for arm, r2 in probes.items():
        lines.append(f"| {arm} | " + " | ".join(f"{r2[v]:.3f}" for v in variables) + " |")
    return lines


def _after_hit_lines(after: dict[str, Any] | None, arms: Sequence[str]) -> list[str]:
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
        for arm in arms:
            s = after[setting][arm]
            lines.append(
                f"| {setting} | {arm} | "
                + " | ".join(
                    f"{_pct(s[k]['mean'])} {_interval(s[k]['ci95'])}"
                    for k in ("accuracy_before_hit", "accuracy_after_hit", "accuracy_all_frames")
                )
                + " |"
            )
    return [*lines, ""]


def _reached(c: dict[str, Any]) -> str:
    """'after 3.0 epochs on average (2 of 3 runs)' or 'in no run'."""
    if not c["runs_reaching_threshold"]:
        return "in no run"
    return (
        f"after {c['epochs_to_threshold_mean']:.1f} epochs on average "
        f"({c['runs_reaching_threshold']} of {c['runs']} runs)"
    )


def conclusions(results: dict[str, Any]) -> list[str]:
    """Plain sentences, each with its numbers: accuracy per budget and arm, the goal, frames, convergence."""
    arms, ref, threshold = results["arms"], results["reference"], f"{results['threshold']:.0%}"
    out = []
    for b in results["budgets"]:
        for arm in arms[1:]:
            d = b["paired_difference"][arm]
            out.append(
                f"- {b['labelled_episodes']} labelled episodes: {_verdict(d, arm, ref)} "
                f"({_points(d['mean'])} points, 95% interval {_interval(d['ci95'])}; "
                f"{arm} {_pct(b['arms'][arm]['accuracy_mean'])}, "
                f"{ref} {_pct(b['arms'][ref]['accuracy_mean'])})."
            )
    smallest = results["budgets"][0]
    for arm in arms[1:]:
        d = smallest["paired_difference"][arm]
        if d["ci95"] is not None and 100 * d["ci95"][0] >= GOAL_POINTS:
            goal = "met, with the whole interval above it"
        elif 100 * d["mean"] >= GOAL_POINTS:
            goal = "met on the mean, but the interval reaches below it"
        else:
            goal = "not met"
        out.append(
            f"- Goal ({arm} ahead of {ref} by >= {GOAL_POINTS:g} points at the smallest budget): {goal} "
            f"({_points(d['mean'])} points at {smallest['labelled_episodes']} episodes, 95% interval "
            f"{_interval(d['ci95'])})."
        )
    budgets = zip(results["accuracy_by_position"]["budgets"], results["convergence"]["budgets"], strict=True)
    for pos, conv in budgets:
        frames = ", ".join(f"{pos['arms'][a]['most_frames_before_hit'] or 0} ({a})" for a in arms)
        reached = "; ".join(f"{a} {_reached(conv['arms'][a])}" for a in arms)
        out.append(
            f"- {pos['labelled_episodes']} labelled episodes: mean accuracy is >= {threshold} over the last "
            f"{frames} frames before the hit; validation accuracy reached {threshold}: {reached}."
        )
    return out
