"""The leaderboard of a benchmark, from a comparison's results: ``leaderboard.json`` (its records are
``leaderboard_records``), ``leaderboard.md`` and its plots.

Rows are built from the ``results.Results`` and each method's pretext metrics alone, so a method
added to the registry gets its row with no change here. The page shows, one table per k, each arm's
accuracy at every budget; each pretrained arm minus the better of the supervised baselines
(scratch, the practitioner's) at each budget and k; the goal (``summaries.goal``); the headroom
(whether the task leaves a method room: its ceiling above the random-encoder arm and the
practitioner's baseline); the ranks; probe R² and each method's pretext cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airhockey.jsonio import write_json
from airhockey.learn.config import PRACTITIONER, SCRATCH
from airhockey.learn.protocol.families import compare_families, family_lines
from airhockey.learn.protocol.formatting import interval, pct, points
from airhockey.learn.protocol.leaderboard_records import (
    FORMAT_VERSION,
    ORACLE,
    Cell,
    Entry,
    GoalCheck,
    Headroom,
    OracleRow,
    PretextCost,
    ProbeR2,
    Row,
    above,
    headroom,
)
from airhockey.learn.protocol.leaderboard_records import LEADERBOARD_FILE as LEADERBOARD_FILE
from airhockey.learn.protocol.leaderboard_records import TASK_OF_LABELS as TASK_OF_LABELS
from airhockey.learn.protocol.leaderboard_records import Leaderboard as Leaderboard
from airhockey.learn.protocol.leaderboard_records import read_leaderboard as read_leaderboard
from airhockey.learn.protocol.plots import figure, plot_accuracy_vs_budget, plot_probes, save
from airhockey.learn.protocol.report import SMOKE_TEST
from airhockey.learn.protocol.results import ArmAccuracy, BudgetResult, MeanCI, Results
from airhockey.learn.protocol.summaries import GOAL_BUDGET, GOAL_POINTS, goal
from airhockey.records import to_json
from airhockey.writing import write_atomic

ACCURACY_PLOT = "leaderboard_accuracy.png"
PROBES_PLOT = "leaderboard_probes.png"
ROLLOUTS_PLOT = "leaderboard_rollouts.png"


def _entry(summary: ArmAccuracy) -> Entry:
    return Entry(summary.accuracy_mean, summary.accuracy_ci95)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def pretext_cost(metrics: Sequence[dict[str, Any]]) -> PretextCost | None:
    """What a method's pretext runs cost, from their ``metrics.json`` ({} for a run not there);
    None without runs."""
    if not metrics:
        return None
    flops = [m.get("pretext_flops") for m in metrics]
    return PretextCost(
        len(metrics),
        tuple(m.get("steps") for m in metrics),
        sum(m.get("train_seconds_this_session", 0.0) for m in metrics),
        metrics[0].get("parameters"),
        metrics[0].get("flops_per_step"),
        sum(f for f in flops if f is not None) if all(f is not None for f in flops) else None,
    )


def _cell(results: Results, arm: str, at: BudgetResult) -> Cell:
    """``arm`` at one budget and k: its accuracy, its differences to the supervised arms, its gap."""
    difference = {}
    for baseline in results.supervised:
        kept = baseline == results.reference or baseline in at.to_baselines
        if baseline != arm and kept and (d := at.difference(arm, baseline)) is not None:
            difference[baseline] = MeanCI(d.mean, d.ci95)
    oracle = results.oracle_at(at.labelled_episodes, at.context_frames)
    ceiling = None if oracle is None else oracle.ceiling or oracle.head
    accuracy = at.arms[arm].accuracy_mean
    return Cell(
        _entry(at.arms[arm]), difference, None if ceiling is None else accuracy - ceiling.accuracy_mean
    )


def _row(results: Results, arm: str, settings: list[BudgetResult], metrics: list[dict[str, Any]]) -> Row:
    """One arm's row; ``metrics``: its pretext runs' ``metrics.json`` ({} for one not there)."""
    cells: dict[str, dict[int, Cell]] = {}
    for at in settings:
        if arm in at.arms:
            cells.setdefault(str(at.budget), {})[at.context_frames] = _cell(results, arm, at)
    probes = (results.probes or {}).get(arm, {})
    return Row(
        arm=arm,
        method=results.arm_details[arm].method,
        cells=cells,
        probe_r2=ProbeR2(
            _mean([probes.get("puck_x"), probes.get("puck_y")]),
            _mean([probes.get("puck_vx"), probes.get("puck_vy")]),
            _mean([probes.get("bar_x"), probes.get("bar_y")]),
        ),
        pretext=pretext_cost(metrics),
    )


def _oracle_row(results: Results) -> OracleRow:
    models: dict[str, dict[str, dict[int, Entry]]] = {"head": {}, "boosting": {}, "ceiling": {}}
    for b in results.budgets:
        for k in results.ks:
            oracle = results.oracle_at(b.labelled_episodes, k)
            for name, summary in (
                (("head", oracle.head), ("boosting", oracle.boosting), ("ceiling", oracle.ceiling))
                if oracle is not None
                else ()
            ):
                if summary is not None:
                    models[name].setdefault(str(b.budget), {})[k] = _entry(summary)
    return OracleRow(ORACLE, models["head"], models["boosting"], models["ceiling"] or None)


def leaderboard(
    results: Results,
    pretext_metrics: dict[str, list[dict[str, Any]]],
    *,
    settings: dict[str, Any],
    command: str,
    seconds: dict[str, float],
    sessions: Sequence[dict[str, Any]],
    smoke_test: bool,
    task: str = "leftright",
) -> Leaderboard:
    """The leaderboard of a comparison's results and each method's pretext runs' metrics (by method).

    Each row (an arm, and the oracle): at every budget and k the comparison ran, the accuracy with
    its interval, the paired differences to scratch and to the practitioner's baseline, and the gap
    to the oracle's ceiling; probe R² for the puck's position and velocity and the bar's position
    (means of x and y); the pretext cost (steps, seconds, parameters, FLOPs). ``ranks`` per budget
    and k: 1 + the number of arms whose whole interval lies above this arm's (arms whose intervals
    overlap share a rank: ties are ties); ``headroom`` per budget and k (``headroom``); the goal
    (``summaries.goal``). ``settings``, ``command``, ``seconds``, ``sessions``, ``smoke_test`` and
    ``task`` are the benchmark's, recorded as given.
    """
    ran = [at for b in results.budgets for k in results.ks if (at := results.at(b.labelled_episodes, k))]
    rows = [
        _row(results, arm, ran, pretext_metrics.get(results.arm_details[arm].method or "", []))
        for arm in results.arms
    ]
    oracle = _oracle_row(results)
    ranks: dict[str, dict[int, dict[str, int]]] = {}
    room: dict[str, dict[int, Headroom]] = {}
    by_arm = {row.arm: row for row in rows}
    for at in ran:
        key, k = str(at.budget), at.context_frames
        cells = {row.arm: cell.accuracy for row in rows if (cell := row.at(key, k)) is not None}
        ranks.setdefault(key, {})[k] = {
            arm: 1 + sum(above(other, entry) for other in cells.values()) for arm, entry in cells.items()
        }
        if SCRATCH in cells:
            practitioner = by_arm[PRACTITIONER].at(key, k) if PRACTITIONER in by_arm else None
            baseline = practitioner.accuracy if practitioner is not None else None
            room.setdefault(key, {})[k] = headroom(cells[SCRATCH], baseline, oracle.best(key, k))
    return Leaderboard(
        format_version=FORMAT_VERSION,
        rows=tuple(rows),
        oracle=oracle,
        ranks=ranks,
        budgets=tuple(str(b.budget) for b in results.budgets),
        ks=tuple(results.ks),
        test_data=results.data,
        settings=settings,
        command=command,
        seconds=seconds,
        sessions=tuple(sessions),
        smoke_test=smoke_test,
        task=task,
        headroom=room,
        goal=GoalCheck(tuple(results.supervised), goal(results)),
        families=compare_families(results) or None,
    )


def write_leaderboard(board: Leaderboard, results: Results, out: Path) -> Path:
    """Writes ``leaderboard.json``, ``leaderboard.md`` and the plots into ``out``."""
    write_json(out / LEADERBOARD_FILE, to_json(board))
    rollouts = plot_rollouts(out, results)
    return render_leaderboard_page(board, results, out, rollouts is not None)


def render_leaderboard_page(board: Leaderboard, results: Results, out: Path, rollouts: bool) -> Path:
    """Writes the accuracy and probe plots and ``leaderboard.md`` into ``out``; the page links the
    rollouts plot where ``rollouts`` says it is there. Returns the page's path."""
    plot_accuracy_vs_budget(results, out / ACCURACY_PLOT)
    if results.probes:
        plot_probes(results, out / PROBES_PLOT)
    path = out / "leaderboard.md"
    write_atomic(path, render_leaderboard(board, rollouts))
    return path


def has_probes(board: Leaderboard) -> bool:
    """Whether the comparison behind ``board`` ran the linear probes (and so has their plot)."""
    return any(row.probe_r2.puck_position is not None for row in board.rows)


def plot_rollouts(out: Path, results: Results, steps: int = 3, columns: int = 8) -> Path | None:
    """One test episode's truth and each predictive method's ``steps``-frame rollout, every other frame
    from the first that has one: small multiples, one row per method. None when no method predicts."""
    import numpy as np
    import torch

    from airhockey.generate import open_shards
    from airhockey.learn.pretext.run import PretextRun

    predictive = []
    for arm in results.arms:
        detail = results.arm_details[arm]
        if detail.pretext_runs:
            run = PretextRun.open(detail.pretext_runs[0].path)
            if run.method.predicts_frames:
                predictive.append((arm, run))
    if not predictive:
        return None
    with open_shards(out / "test_data") as episodes:
        frames = episodes.frames(0)  # (T, H, W, 3)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    shown = list(range(steps, min(len(frames), steps + 2 * columns), 2))
    fig, axes = figure(1 + len(predictive), len(shown), width=1.1, height=1.2)
    for col, t in enumerate(shown):
        axes[0, col].imshow(frames[t])
        axes[0, col].set_title(f"frame {t}", fontsize=7)
    for row, (arm, run) in enumerate(predictive, start=1):
        with torch.no_grad():
            _, k_step = run.method.predict_episode(run.model(), x, steps)
        images = (k_step.nan_to_num(0.0).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
        for col, t in enumerate(shown):
            axes[row, col].imshow(images[t])
        axes[row, 0].set_ylabel(arm, fontsize=7)
    axes[0, 0].set_ylabel("truth", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{steps}-frame rollouts (predictions fed back) of test episode 0", fontsize=8)
    return save(fig, out / ROLLOUTS_PLOT)


def cell_text(entry: Entry | None) -> str:
    """An accuracy with its interval, ``77.2% [74.7, 79.5]``; 'n/a' for none."""
    return "n/a" if not entry else f"{pct(entry.accuracy_mean)} {interval(entry.ci95)}"


def _episodes(key: str) -> str:
    return f"{key} labelled episode{'' if key == '1' else 's'}"


def columns(board: Leaderboard, k: int) -> list[str]:
    """The budget keys at which some arm or the oracle ran with ``k`` frames, increasing."""
    grids = [row.cells for row in board.rows] + [board.oracle.head, board.oracle.boosting]
    return [key for key in board.budgets if any(k in grid.get(key, {}) for grid in grids)]


def _table(header: str, keys: Sequence[str], lines: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """A markdown table: ``header`` then one column per budget key; ``lines``: (label, cells)."""
    return [
        f"| {header} | " + " | ".join(f"{key} ep." for key in keys) + " |",
        "| --- |" + " --- |" * len(keys),
        *(f"| {label} | " + " | ".join(cells) + " |" for label, cells in lines),
        "",
    ]


def _accuracy_table(board: Leaderboard, k: int) -> list[str]:
    """Every arm's accuracy at ``k`` by budget, then the oracle's models that ran there."""
    keys = columns(board, k)
    oracle = board.oracle
    models = [("head", oracle.head), ("boosted trees", oracle.boosting)]
    models += [("ceiling", oracle.ceiling)] if oracle.ceiling else []
    lines = [
        (row.arm, [cell_text(c.accuracy if (c := row.at(key, k)) else None) for key in keys])
        for row in board.rows
    ]
    lines += [
        (f"{ORACLE}: {name}", [cell_text(grid.get(key, {}).get(k)) for key in keys])
        for name, grid in models
        if any(k in grid.get(key, {}) for key in keys)
    ]
    return [f"## Accuracy, k = {k}", "", *_table("arm", keys, lines)]


def _value_tables(
    board: Leaderboard,
    rows: Sequence[Row],
    value: Callable[[Row, str, int], str | None],
    first: Callable[[str, int], tuple[str, str]] | None = None,
) -> list[str]:
    """Per k, a table of ``value(row, key, k)`` for ``rows`` by budget, '-' where it is None; only
    the budgets (and k) where some row has one. ``first``: a line above the rows, (label, cell)."""
    lines = []
    for k in board.ks:
        cells = {row.arm: {key: value(row, key, k) for key in columns(board, k)} for row in rows}
        keys = [key for key in columns(board, k) if any(c[key] is not None for c in cells.values())]
        if keys:
            top = [(first(keys[0], k)[0], [first(key, k)[1] for key in keys])] if first else []
            body = [(arm, [c[key] or "-" for key in keys]) for arm, c in cells.items()]
            lines += [f"k = {k}:", "", *_table("arm", keys, top + body)]
    return lines


def _difference_tables(board: Leaderboard) -> list[str]:
    """Per k: each pretrained arm minus the better supervised arm at each budget."""
    if not board.methods or not board.baselines:
        return []
    names = ", ".join(row.arm for row in board.baselines)

    def minus(row: Row, key: str, k: int) -> str | None:
        d = board.minus_better_baseline(row.arm, key, k)
        return None if d is None else f"{points(d.mean)} {interval(d.ci95)}"

    def better(key: str, k: int) -> tuple[str, str]:
        return "better baseline", board.better_baseline(key, k) or "-"

    return [
        "## Pretraining minus the better supervised baseline",
        "",
        f"At each budget and k, each pretrained arm minus the supervised arm ({names}) of the higher mean "
        "accuracy there, in points, paired repeat by repeat, with its 95% interval.",
        "",
        *_value_tables(board, board.methods, minus, better),
    ]


def _gap_tables(board: Leaderboard) -> list[str]:
    """Per k: each arm's mean accuracy minus the oracle's ceiling at each budget."""
    target = "ceiling" if board.oracle.ceiling else "head"

    def gap(row: Row, key: str, k: int) -> str | None:
        cell = row.at(key, k)
        return None if cell is None or cell.gap_to_oracle is None else points(cell.gap_to_oracle)

    tables = _value_tables(board, board.rows, gap)
    head = [
        f"## Gap to the oracle's {target}",
        "",
        f"Mean accuracy minus the oracle's {target}'s, in points.",
        "",
    ]
    return head + tables if tables else []


def goal_lines(board: Leaderboard) -> list[str]:
    """The goal (``summaries.goal``) as one sentence with its numbers; none in files older than it."""
    if board.goal is None:
        return []
    rule = (
        f"Goal (a pretrained arm >= {GOAL_POINTS:g} points over the better of the supervised arms "
        f"({', '.join(board.goal.baselines) or 'none'}) at <= {GOAL_BUDGET} labelled episodes, any k, "
        "95% interval above 0): "
    )
    found = board.goal.found
    if found is None:
        return [
            "## Goal",
            "",
            f"{rule}not assessed (no pretrained arm, no supervised arm or no budget that small).",
            "",
        ]
    d = found.difference
    where = (
        f"{found.arm} at {found.labelled_episodes} labelled episodes, k = {found.context_frames}: "
        f"{points(d.mean)} points over {found.baseline}, 95% interval {interval(d.ci95)}"
    )
    return [
        "## Goal",
        "",
        rule + (f"met by {where}." if found.met else f"not met; the best gap is {where}."),
        "",
    ]


def headroom_line(key: str, k: int, room: Headroom) -> str:
    """Whether the task earns a place at budget ``key`` and ``k``, with the numbers that decide it."""
    baseline = (
        f" and the {PRACTITIONER}'s {cell_text(room.baseline)}"
        if room.baseline
        else f" (no {PRACTITIONER} arm ran: judged on {SCRATCH} alone)"
    )
    return (
        f"- {_episodes(key)}, k = {k}: {'yes' if room.earns_place else 'no'}: ceiling "
        f"{cell_text(room.ceiling)} against {SCRATCH} (random encoder) {cell_text(room.random_encoder)}"
        f"{baseline}."
    )


def headroom_lines(board: Leaderboard) -> list[str]:
    """The page's headroom section: per budget and k, whether the task earns a place."""
    if not board.headroom:
        return []
    return [
        "## Headroom",
        "",
        f"Task `{board.task}` earns a place where the ceiling's whole interval lies above both the "
        f"random-encoder arm's ({SCRATCH}) and the practitioner's baseline's ({PRACTITIONER}).",
        "",
        *(
            headroom_line(key, k, board.headroom[key][k])
            for k in board.ks
            for key in board.budgets
            if k in board.headroom.get(key, {})
        ),
        "",
    ]


def _rank_tables(board: Leaderboard) -> list[str]:
    lines = [
        "## Ranks",
        "",
        "Rank 1 + the number of arms whose whole interval lies above; equal ranks are ties.",
        "",
    ]
    for k in board.ks:
        keys = [key for key in board.budgets if k in board.ranks.get(key, {})]
        if keys:
            ranks = [
                (row.arm, [str(board.ranks[key][k].get(row.arm, "-")) for key in keys]) for row in board.rows
            ]
            lines += [f"k = {k}:", "", *_table("arm", keys, ranks)]
    return lines


def _flops(value: float | None, scale: float) -> str:
    return "-" if value is None else f"{value / scale:.3g}"


def _cost_table(board: Leaderboard) -> list[str]:
    """Probe R² and each method's pretext cost."""
    lines = [
        "## Probes and pretext cost",
        "",
        "Probe R² of the frozen encoder (means of x and y); the pretext runs' steps, training seconds "
        "(summed over the runs), parameters, FLOPs of one training step and of all the runs' steps.",
        "",
        "| arm | probe R²: puck position | puck velocity | bar position | pretext runs | steps | seconds "
        "| parameters | GFLOPs per step | TFLOPs |",
        "| --- |" + " --- |" * 9,
    ]
    for row in board.rows:
        probe = (row.probe_r2.puck_position, row.probe_r2.puck_velocity, row.probe_r2.bar_position)
        cells = ["n/a" if v is None else f"{v:.2f}" for v in probe]
        p = row.pretext
        if p is None:
            cells += ["-"] * 6
        else:
            steps = sorted({str(s) for s in p.steps})
            cells += [
                str(p.runs),
                ", ".join(steps),
                f"{p.seconds:.0f}",
                "-" if p.parameters is None else f"{p.parameters:,}",
                _flops(p.flops_per_step, 1e9),
                _flops(p.flops, 1e12),
            ]
        lines.append(f"| {row.arm} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_leaderboard(board: Leaderboard, rollouts: bool) -> str:
    """The leaderboard page: accuracy per k, pretraining minus the better supervised baseline, the
    method families, the gap to the oracle, the goal, the headroom, the ranks (only where intervals
    separate), probes and cost, the plots."""
    lines = ["# Leaderboard: pretext methods through one protocol", ""]
    if board.smoke_test:
        lines += [SMOKE_TEST, ""]
    test = board.test_data
    oracle = (
        "the same head and boosted trees on the true state; its ceiling the one better on validation"
        if board.oracle.ceiling
        else "the same head and boosted trees on the true state"
    )
    lines += [
        f"Training data `{test.path}` ({test.train_episodes} training episodes); test data "
        f"`{test.test_path}` ({test.test_episodes} episodes, generated separately). Accuracy on "
        "the frames before the hit, with 95% bootstrap intervals (repeats, pretext runs and test episodes "
        "resampled), by labelled episodes (columns) and the frames k the classifier reads (one table "
        f"per k); differences are paired repeat by repeat; the oracle is {oracle}.",
        "",
    ]
    for k in board.ks:
        lines += _accuracy_table(board, k)
    lines += _difference_tables(board)
    if board.families:
        lines += [*family_lines(board.families, board.budgets), ""]
    lines += _gap_tables(board) + goal_lines(board) + headroom_lines(board)
    lines += _rank_tables(board) + _cost_table(board)
    lines += [f"![accuracy vs budget]({ACCURACY_PLOT})"]
    if has_probes(board):
        lines += ["", f"![probe R²]({PROBES_PLOT})"]
    if rollouts:
        lines += ["", f"![rollouts]({ROLLOUTS_PLOT})"]
    seconds, sessions = board.seconds, len(board.sessions) or 1
    lines += [
        "",
        f"Time (wall, summed over the {sessions} call{'s' if sessions > 1 else ''} that made it): "
        f"generation {seconds['generate']:.0f} s, pretext {seconds['pretext']:.0f} s, "
        f"comparison {seconds['compare']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"
