"""The comparison's report folder: ``results.json``, the PNG plots, and ``report.md`` that embeds them.

Every table, plot and conclusion iterates over the comparison's arms (``Results.arms``, the
reference arm first), so any number of pretext runs is reported the same way.

REPORT/results.json              everything ``compare_on_dataset`` measured (``results.Results``)
REPORT/accuracy_vs_budget.png    test accuracy against labelled episodes, 95% intervals; paired differences;
                                 a row per k
REPORT/accuracy_by_position.png  accuracy by fraction of the time to the hit and by frames before it
REPORT/learning_curves.png       validation accuracy against steps and training seconds, per budget and k
REPORT/report.md                 the tables, the plots, and the conclusions in numbers
REPORT/runs.jsonl                every run's record as it finished (``runlog``)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from airhockey.learn.protocol.formatting import interval, number, pct, points, whole_interval
from airhockey.learn.protocol.horizon import render_horizon
from airhockey.learn.protocol.plots import plotted, write_plots
from airhockey.learn.protocol.results import (
    AfterHit,
    ConvergenceSummary,
    MeanCI,
    OracleBudget,
    PairedDifference,
    PositionSummary,
    Results,
    write_results,
)
from airhockey.learn.protocol.summaries import GOAL_BUDGET, GOAL_POINTS, goal
from airhockey.writing import write_atomic

SMOKE_TEST = "**A smoke test of the machinery (--quick): its numbers are not results.**"
"""The first line of a quick run's report."""
SCHEDULES = {
    "same": "the pretrained arms' schedule, its random encoder frozen for the same first epochs",
    "unfrozen": "encoder trained from the first epoch at the head's learning rate",
}
"""How each ``CompareConfig.scratch_schedule`` reads in the report."""


def write_report(results: Results, out: str | Path) -> Path:
    """Writes ``results.json``, the plots and ``report.md`` into ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_results(results, out)
    return render_report(results, out)


def render_report(results: Results, out: Path) -> Path:
    """Writes the plots and ``report.md`` (which links exactly those plots) into the folder ``out``;
    returns the report's path."""
    write_plots(results, out)
    path = out / "report.md"
    write_atomic(path, render_markdown(results))
    return path


def _image(results: Results, key: str, alt: str) -> list[str]:
    """The markdown lines that show the plot ``key``, or none where the results have no data for it."""
    name = plotted(results).get(key)
    return [f"![{alt}]({name})", ""] if name else []


def render_markdown(results: Results) -> str:
    """The report: settings, the tables (one column or row per arm), the plots, and the conclusions."""
    lines = [
        *_header_lines(results),
        *_budget_lines(results),
        *_search_lines(results),
        *_frames_k_lines(results),
        *_baseline_lines(results),
        *_probe_lines(results),
        *_position_lines(results),
        *render_horizon(results),
        *_convergence_lines(results),
        "",
        *_after_hit_lines(results.after_hit, results.arms),
        "## Conclusions",
        "",
        *conclusions(results),
    ]
    return "\n".join(lines) + "\n"


def _header_lines(results: Results) -> list[str]:
    settings, data = results.settings, results.data
    lines = [
        f"# Direction classifiers: {', '.join(results.arms)}",
        "",
        *([SMOKE_TEST, ""] if results.smoke_test else []),
        f"Data: `{data.path}`, classes {', '.join(data.label_names)}, frames "
        f"{data.frame_size[0]}x{data.frame_size[1]}; {data.train_episodes} training, "
        f"{data.val_episodes} validation and {data.test_episodes} test episodes (the test ones were "
        "read by no pretext run and no classifier).",
        f"Each budget: {settings.repeats} repeats, each on another class-balanced subset of training "
        f"episodes with another seed, the arms paired on the same subset and seed; differences are to "
        f"`{results.reference}`. Intervals are 95% percentile bootstrap intervals (resampling the repeats "
        f"and, independently, the test episodes). Frames with a lit button are "
        f"{'included' if settings.include_after_hit else 'excluded'}. Scratch schedule: "
        f"{SCHEDULES[settings.scratch_schedule]}. Run time {results.seconds / 60:.1f} min.",
        "",
    ]
    for arm in results.pretrained:
        detail = results.arm_details[arm]
        runs = []
        for pretext in detail.pretext_runs:
            metrics = pretext.metrics or {}
            stopped = (
                f"; stopped by {metrics['stopped_by']} after {metrics['steps']} steps)" if metrics else ")"
            )
            runs.append(f"`{pretext.path}` (best weights at step {pretext.step}" + stopped)
        lines.append(f"- `{arm}`: method `{detail.method}`, pretext runs " + ", ".join(runs) + ".")
    return lines


def _budget_lines(results: Results) -> list[str]:
    arms, ref = results.arms, results.reference
    oracle = {o.labelled_episodes: o for o in results.oracle}
    ceiling = any(o.ceiling is not None for o in results.oracle)  # not in results written before it
    lines = [
        "",
        "## Accuracy against labelled episodes",
        "",
        *_image(results, "budget", "accuracy vs budget"),
        "| labelled episodes | "
        + " | ".join(arms)
        + " | "
        + " | ".join(f"{a} minus {ref} (points)" for a in arms[1:])
        + (
            " | oracle (head) | oracle (boosted trees) | "
            + ("ceiling | " if ceiling else "")
            + " | ".join(f"{a} minus {'ceiling' if ceiling else 'oracle'}" for a in arms)
            if oracle
            else ""
        )
        + " |",
        "| --- |" + " --- |" * (2 * len(arms) - 1 + (2 + ceiling + len(arms) if oracle else 0)),
    ]
    for b in results.budgets:
        cells = [f"{pct(b.arms[a].accuracy_mean)} {interval(b.arms[a].accuracy_ci95)}" for a in arms]
        diffs = [
            f"{points(d.mean)} {interval(d.ci95)} ({d.wins} of {d.repeats} ahead)"
            for d in (b.paired_difference[a] for a in arms[1:])
        ]
        o = oracle.get(b.labelled_episodes)
        if o and o.head is not None and o.boosting is not None:
            diffs += [f"{pct(m.accuracy_mean)} {interval(m.accuracy_ci95)}" for m in (o.head, o.boosting)]
            top = o.ceiling or o.head
            if ceiling:
                diffs.append(f"{pct(top.accuracy_mean)} {interval(top.accuracy_ci95)} ({_ceiling_name(o)})")
            diffs += [points(b.arms[a].accuracy_mean - top.accuracy_mean) for a in arms]
        lines.append(f"| {b.labelled_episodes} | " + " | ".join(cells + diffs) + " |")
    if oracle:
        lines += [
            "",
            (
                "Oracle: the classifiers' head (same seeds, trained to convergence: stopped early on the "
                "validation frames) and scikit-learn's boosted trees (leaf size chosen on them) on the "
                "true bar and puck positions of each frame, what one frame can tell; ceiling: the one of "
                "the two of better mean validation accuracy (never test), the head where no validation "
                "frames were held out; minus ceiling: the gap to it. Validation: "
                if ceiling
                else "Oracle: the classifiers' head (same schedule and seeds) and scikit-learn's boosted "
                "trees on the true bar and puck positions of each frame, the ceiling of what one frame "
                "can tell; minus oracle: the gap to the head's ceiling. Validation: "
            )
            + (
                "a quarter of each budget's episodes from "
                f"{results.settings.validation_min_budget} up, none below (fixed epochs)."
                if results.settings.validation == "budget"
                else "the split's validation episodes (not counted in the budgets)."
            ),
        ]
    return lines


def _ceiling_name(oracle: OracleBudget) -> str:
    """The ceiling's model as the report names it."""
    return "boosted trees" if oracle.ceiling_model == "boosting" else "head"


def _search_lines(results: Results) -> list[str]:
    search = results.search
    if not search:
        return []
    names = list(search.candidates)
    lines = [
        "",
        "## The hyperparameter search",
        "",
        f"Every arm tried the same candidates on the first {search.draws} draws of {search.budget} "
        "labelled episodes (a quarter of them validating); the one with the best mean validation accuracy "
        "(each run at its best epoch) ran every budget. Mean best validation accuracy:",
        "",
        "| arm | " + " | ".join(names) + " | chosen |",
        "| --- |" + " --- |" * (len(names) + 1),
    ]
    for arm, row in search.arms.items():
        scores = row.mean_best_val_accuracy
        lines.append(f"| {arm} | " + " | ".join(pct(scores[n]) for n in names) + f" | {row.chosen} |")
    head = search.oracle_head
    if head:
        tried = ", ".join(f"{lr}: {pct(a)}" for lr, a in head.mean_val_accuracy.items())
        lines += [
            "",
            f"The oracle's head (no encoder) tried the same learning rates on the same draws ({tried}) "
            f"and runs at lr={head.chosen:g}.",
        ]
    return lines


def _frames_k_lines(results: Results) -> list[str]:
    by_arm = results.frames_k
    if not by_arm:
        return []
    ks = sorted({k for v in by_arm.values() for k in v})
    oracle = results.oracle_frames_k
    lines = [
        "",
        "## Accuracy against the frames the classifier reads",
        "",
        *_image(results, "frames_k", "accuracy vs frames"),
        f"At {results.k_budget} labelled episodes, the classifier reading the k "
        "frames ending at the classified one (before frame k - 1 the window repeats the episode's first):",
        "",
        "| arm | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "| --- |" + " --- |" * len(ks),
    ]
    for arm, by_k in by_arm.items():
        cells = [f"{pct(by_k[k].accuracy_mean)} {interval(by_k[k].accuracy_ci95)}" for k in ks]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    rows = [r for k in ks if (r := results.at(results.k_budget, k)) is not None]
    for arm in results.arms[1:]:
        if all(arm in row.paired_difference for row in rows):
            cells = [f"{points(d.mean)} {interval(d.ci95)}" for d in (r.paired_difference[arm] for r in rows)]
            lines.append(f"| {arm} minus {results.reference} (points) | " + " | ".join(cells) + " |")
    if oracle:
        cells = [
            pct(oracle[k].head.accuracy_mean) if k in oracle and oracle[k].head is not None else "n/a"  # type: ignore[union-attr]
            for k in ks
        ]
        lines.append("| oracle (head; positions, and velocities from k = 2) | " + " | ".join(cells) + " |")
        ceilings = [
            f"{pct(c.accuracy_mean)} {interval(c.accuracy_ci95)} ({_ceiling_name(oracle[k])})"
            if k in oracle and (c := oracle[k].ceiling) is not None
            else "n/a"
            for k in ks
        ]
        if any(o.ceiling is not None for o in oracle.values()):  # not in results written before it
            lines.append("| ceiling (the oracle model better on validation) | " + " | ".join(ceilings) + " |")
    return lines


def _baseline_lines(results: Results) -> list[str]:
    """Every arm against every supervised arm at each budget and k, where there is a supervised arm
    besides the reference or k > 1 runs at more than one budget (else the tables above hold it)."""
    baselines = [results.reference, *(b for b in results.supervised if b != results.reference)]
    if len(baselines) < 2 and len({r.labelled_episodes for r in results.by_k}) < 2:
        return []
    rows = sorted((*results.budgets, *results.by_k), key=lambda r: (r.labelled_episodes, r.context_frames))
    lines = [
        "",
        "## Each arm against the supervised baselines, at each budget and k",
        "",
        "Accuracy, and paired differences in points (95% intervals), at each budget and k frames read; "
        "ceiling: the oracle model better on validation at the same budget and k.",
        "",
        "| labelled episodes | k | arm | accuracy | "
        + " | ".join(f"minus {b} (points)" for b in baselines)
        + " | minus ceiling (points) |",
        "| --- | --- | --- | --- |" + " --- |" * (len(baselines) + 1),
    ]
    for row in rows:
        oracle = results.oracle_at(row.labelled_episodes, row.context_frames)
        top = oracle and (oracle.ceiling or oracle.head)
        for arm in (a for a in results.arms if a in row.arms):
            accuracy = row.arms[arm]
            diffs = [
                "" if d is None else f"{points(d.mean)} {interval(d.ci95)}"
                for d in (row.difference(arm, b) if arm != b else None for b in baselines)
            ]
            gap = "n/a" if not top else points(accuracy.accuracy_mean - top.accuracy_mean)
            lines.append(
                f"| {row.labelled_episodes} | {row.context_frames} | {arm} | "
                f"{pct(accuracy.accuracy_mean)} {interval(accuracy.accuracy_ci95)} | "
                + " | ".join([*diffs, gap])
                + " |"
            )
    return lines


def _probe_lines(results: Results) -> list[str]:
    probes = results.probes
    if not probes:
        return []
    variables = list(next(iter(probes.values())))
    lines = [
        "",
        "## What the frozen encoders hold: linear probes",
        "",
        *_image(results, "probes", "probes"),
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


def _from_strike_cell(summary: PositionSummary) -> str:
    """`` / o [lo, hi]``: the earliest offset from the strike, where the results hold it."""
    if summary.by_frames_from_strike is None:
        return ""
    found = summary.earliest_from_strike
    shown = "not reached" if found is None else f"{found:+d}"
    return f" / {shown} {whole_interval(summary.earliest_from_strike_ci95)}"


def _position_lines(results: Results) -> list[str]:
    arms, budgets = results.arms, results.accuracy_by_position.budgets
    strike = any(p.by_frames_from_strike is not None for b in budgets for p in b.arms.values())
    lines = [
        "",
        "## How many frames each needs",
        "",
        *_image(results, "position", "accuracy by position"),
        f"Earliest position from which mean test accuracy stays at or above {results.threshold:.0%} "
        "(fraction of the time to the hit / frames before the hit"
        + (" / frames from the strike):" if strike else "):"),
        "",
        "| labelled episodes | " + " | ".join(arms) + " |",
        "| --- |" + " --- |" * len(arms),
    ]
    for b in budgets:
        cells = [
            f"{number(p.earliest_fraction)} {interval(p.earliest_fraction_ci95, 1.0)} / "
            f"{p.most_frames_before_hit or 'not reached'} {whole_interval(p.most_frames_before_hit_ci95)}"
            + _from_strike_cell(p)
            for p in (b.arms[a] for a in arms)
        ]
        lines.append(f"| {_budget_name(b.labelled_episodes, b.context_frames)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "A fraction f means: from f of the way between the first frame and the hit on; k frames means: "
        "from k frames before the hit on ('not reached': not even the last frame before the hit)"
        + (
            "; an offset o from the strike: from o frames after the bar first touched the puck on "
            "(negative: before it; where half the test episodes have a frame). "
            if strike
            else ". "
        )
        + "Intervals: 95% bootstrap over the repeats, a resample that does not reach the threshold counted "
        "as 1.0 / 0 frames" + (" / the window's end (+40)." if strike else "."),
        "",
        "Accuracy before the bar first touches the puck (the puck rests: only the bar's approach tells) and "
        "from that strike to the hit, mean over repeats (95% bootstrap interval):",
        "",
        "| labelled episodes | " + " | ".join(f"{a}: before strike / strike to hit" for a in arms) + " |",
        "| --- |" + " --- |" * len(arms),
    ]
    for b in budgets:
        cells = [
            f"{_mean_cell(p.before_strike)} / {_mean_cell(p.strike_to_hit)}"
            for p in (b.arms[a] for a in arms)
        ]
        lines.append(f"| {_budget_name(b.labelled_episodes, b.context_frames)} | " + " | ".join(cells) + " |")
    return lines


def _budget_name(labelled_episodes: int, k: int) -> str:
    """A budget as a table's first column names it: '16', or '16 (k = 4)' for k frames read."""
    return f"{labelled_episodes}" + (f" (k = {k})" if k > 1 else "")


def _mean_cell(summary: MeanCI) -> str:
    return f"{pct(summary.mean)} {interval(summary.ci95)}"


def _convergence_lines(results: Results) -> list[str]:
    threshold = f"{results.threshold:.0%}"
    target = results.convergence.accuracy
    fixed = f"{target or 0:.0%}"
    lines = [
        "",
        "## Convergence",
        "",
        *_image(results, "curves", "learning curves"),
        "Validation accuracy (on the budget's own validation episodes; none below "
        f"{results.settings.validation_min_budget} episodes) after each epoch; every arm of a budget "
        "runs the same optimiser steps per epoch. Area: the mean of validation accuracy over the steps "
        "(area under the curve over the steps)"
        + (
            "; means over the repeats with 95% bootstrap intervals."
            if target is None
            else f". Runs reaching {fixed}: the fraction of the repeats whose validation accuracy "
            "reaches it; steps to it: the median first step count of those that do (a run that does "
            "not is counted as not reaching it, not given a step count). Intervals: 95% bootstrap "
            "over the repeats."
        ),
        "",
        "| labelled episodes | arm | final val accuracy | area under curve | "
        + (
            ""
            if target is None
            else f"runs reaching {fixed} | steps to {fixed} (median of runs reaching it) | "
        )
        + f"epochs to {threshold} (mean) | runs reaching {threshold} | "
        f"training seconds to {threshold} (mean) |",
        "| --- | --- | --- | --- |" + " --- |" * (3 if target is None else 5),
    ]
    for b in results.convergence.budgets:
        name = _budget_name(b.labelled_episodes, b.context_frames)
        for arm in results.arms:
            lines.append(f"| {name} | {arm} |" + _convergence_cells(b.arms[arm]))
    return lines


def _convergence_cells(c: ConvergenceSummary) -> str:
    """One arm's row of the convergence table, after its budget and name."""
    final = c.val_accuracy_mean[-1]
    if math.isnan(final):
        return " no validation |" * (5 if c.to_accuracy is None else 7)
    area = c.area_under_curve or MeanCI(math.nan, None)
    to, fixed = c.to_accuracy, ""
    if to is not None:
        steps = (
            "not reached"
            if to.median_steps is None
            else f"{number(to.median_steps, 0)} {whole_interval(to.median_steps_ci95)}"
        )
        fixed = f"{pct(to.reached.mean)} {interval(to.reached.ci95)} | {steps} | "
    return (
        f" {pct(final)} | {pct(area.mean)} {interval(area.ci95)} | {fixed}"
        f"{number(c.epochs_to_threshold_mean)} | {c.runs_reaching_threshold} of {c.runs} | "
        f"{number(c.seconds_to_threshold_mean, 0, ' s')} |"
    )


def _after_hit_lines(after: AfterHit | None, arms: Sequence[str]) -> list[str]:
    if after is None:
        return []
    lines = [
        "## Frames with a lit button",
        "",
        f"At {after.labelled_episodes} labelled episodes, trained with and without the frames in which "
        "a button is lit (which give the label away), tested on the same episodes:",
        "",
        "| trained | arm | before the hit | after the hit | all frames |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setting, by_arm in (("excluded", after.excluded), ("included", after.included)):
        for arm in arms:
            s = by_arm[arm]
            cells = [
                _mean_cell(m) for m in (s.accuracy_before_hit, s.accuracy_after_hit, s.accuracy_all_frames)
            ]
            lines.append(f"| {setting} | {arm} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _verdict(diff: PairedDifference, arm: str, reference: str) -> str:
    """Whether ``arm`` beat, lost to or tied ``reference``: does the paired interval exclude 0?"""
    ci = diff.ci95
    if ci is not None and ci[0] > 0:
        return f"{arm} ahead of {reference}"
    if ci is not None and ci[1] < 0:
        return f"{arm} behind {reference}"
    return f"{arm} and {reference} not separated"


def _reached(c: ConvergenceSummary) -> str:
    """'after 3.0 epochs on average (2 of 3 runs)' or 'in no run'."""
    if not c.runs_reaching_threshold:
        return "in no run"
    runs = f"{c.runs_reaching_threshold} of {c.runs} runs"
    return f"after {c.epochs_to_threshold_mean:.1f} epochs on average ({runs})"


def goal_line(results: Results) -> str:
    """The goal (``summaries.goal``) as one sentence with its numbers."""
    rule = (
        f"Goal (a pretrained arm >= {GOAL_POINTS:g} points over the better of the supervised arms "
        f"({', '.join(results.supervised) or 'none'}) at <= {GOAL_BUDGET} labelled episodes, any k, "
        "95% interval above 0): "
    )
    found = goal(results)
    if found is None:
        return f"- {rule}not assessed (no pretrained arm, no supervised arm or no budget that small)."
    d = found.difference
    where = (
        f"{found.arm} at {found.labelled_episodes} labelled episodes, k = {found.context_frames}: "
        f"{points(d.mean)} points over {found.baseline}, 95% interval {interval(d.ci95)}"
    )
    return f"- {rule}" + (f"met by {where}." if found.met else f"not met; the best gap is {where}.")


def conclusions(results: Results) -> list[str]:
    """Plain sentences, each with its numbers: accuracy per budget and arm, the goal, frames, convergence."""
    arms, ref, threshold = results.arms, results.reference, f"{results.threshold:.0%}"
    out = []
    for b in results.budgets:
        for arm in arms[1:]:
            d = b.paired_difference[arm]
            out.append(
                f"- {b.labelled_episodes} labelled episodes: {_verdict(d, arm, ref)} "
                f"({points(d.mean)} points, 95% interval {interval(d.ci95)}; "
                f"{arm} {pct(b.arms[arm].accuracy_mean)}, {ref} {pct(b.arms[ref].accuracy_mean)})."
            )
    out.append(goal_line(results))
    budgets = zip(results.accuracy_by_position.budgets, results.convergence.budgets, strict=True)
    for pos, conv in budgets:
        k = f", k = {pos.context_frames}" if pos.context_frames > 1 else ""
        frames = ", ".join(f"{pos.arms[a].most_frames_before_hit or 0} ({a})" for a in arms)
        reached = "; ".join(f"{a} {_reached(conv.arms[a])}" for a in arms)
        out.append(
            f"- {pos.labelled_episodes} labelled episodes{k}: mean accuracy is >= {threshold} over the "
            f"last {frames} frames before the hit; validation accuracy reached {threshold}: {reached}."
        )
    return out
