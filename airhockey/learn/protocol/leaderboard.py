"""The leaderboard of a benchmark: one row per arm and one for the oracle, from a comparison's results;
``leaderboard.json`` (typed records, written and read here), ``leaderboard.md`` and its plots.

Rows are built from the ``results.Results`` and each method's pretext metrics alone, so a method
added to the registry gets its row with no change here. Each budget's ``Headroom`` says whether the
task leaves a method room: whether its ceiling (the oracle) lies above the random-encoder arm
(scratch) and the practitioner's supervised baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from airhockey.jsonio import write_json
from airhockey.learn.config import PRACTITIONER, SCRATCH
from airhockey.learn.protocol.formatting import interval, pct, points
from airhockey.learn.protocol.plots import figure, plot_accuracy_vs_budget, plot_probes, save
from airhockey.learn.protocol.report import SMOKE_TEST
from airhockey.learn.protocol.results import ArmAccuracy, DataInfo, Interval, MeanCI, Results
from airhockey.records import OMIT, read_json_file, to_json, versioned_record
from airhockey.writing import write_atomic

LEADERBOARD_BUDGETS = (1, 4, 16, None)
"""Budgets the leaderboard shows (those the comparison ran); None: all training episodes."""
LEADERBOARD_K = (1, 4)
"""Context frames the leaderboard shows (those the comparison ran)."""
ORACLE = "oracle"
FORMAT_VERSION = 2
"""The version of ``leaderboard.json`` this module writes (2: ``task`` and ``headroom``)."""
TASK_OF_LABELS = {"leftright": "leftright", "all": "buttons5"}
"""The task (``airhockey.tasks.TASKS``) whose data has each label set."""
LEADERBOARD_FILE = "leaderboard.json"
ACCURACY_PLOT = "leaderboard_accuracy.png"
PROBES_PLOT = "leaderboard_probes.png"
ROLLOUTS_PLOT = "leaderboard_rollouts.png"

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """An accuracy and its 95% interval."""

    accuracy_mean: float
    ci95: Interval | None


@dataclass(frozen=True)
class ProbeR2:
    """Probe R² of an arm's frozen encoder, means of x and y (None without probes)."""

    puck_position: float | None
    puck_velocity: float | None
    bar_position: float | None


@dataclass(frozen=True)
class PretextCost:
    """What an arm's pretext runs cost."""

    runs: int
    steps: tuple[int | None, ...]
    seconds: float
    """Training seconds, summed over the runs."""
    parameters: int | None


@dataclass(frozen=True)
class Row:
    """One arm's row; budgets keyed '1', '4', ..., 'all', k as ints."""

    arm: str
    method: str | None
    accuracy: dict[str, Entry]
    difference_to_scratch: dict[str, MeanCI]
    gap_to_oracle: dict[str, float]
    accuracy_k: dict[int, Entry]
    probe_r2: ProbeR2
    pretext: PretextCost | None


@dataclass(frozen=True)
class OracleRow:
    """The oracle's row: its head, boosted trees and ceiling (the one better on validation) per
    budget, and at each k (head and boosting)."""

    arm: str
    accuracy: dict[str, Entry]
    boosting: dict[str, Entry]
    accuracy_k: dict[int, dict[str, Entry]]
    ceiling: dict[str, Entry] | None = field(default=None, metadata=OMIT)
    """None in files written before the ceiling was recorded."""


@dataclass(frozen=True)
class Headroom:
    """The room a task leaves a method at one budget: its ceiling against its baselines."""

    random_encoder: Entry
    """The scratch arm: the same classifier trained from a random encoder."""
    baseline: Entry | None
    """The practitioner's supervised baseline (``PRACTITIONER``); None where it did not run."""
    ceiling: Entry | None
    """The oracle's ceiling (its head in results older than the ceiling); None without the oracle."""
    earns_place: bool
    """Whether the ceiling's whole interval lies above the random encoder's and the baseline's."""


def headroom(random_encoder: Entry, baseline: Entry | None, ceiling: Entry | None) -> Headroom:
    """A task's headroom at one budget: it earns a place when the ceiling's whole 95% interval lies
    above the random encoder's and above the baseline's (where there is one); overlapping intervals,
    or a ceiling without an interval, do not."""
    earns = (
        ceiling is not None
        and _above(ceiling, random_encoder)
        and (baseline is None or _above(ceiling, baseline))
    )
    return Headroom(random_encoder, baseline, ceiling, earns)


@dataclass(frozen=True)
class Leaderboard:
    """Everything ``leaderboard.json`` holds."""

    format_version: int
    rows: tuple[Row, ...]
    oracle: OracleRow
    ranks: dict[str, dict[str, int]]
    """Per budget, each arm's rank: 1 + the number of arms whose whole interval lies above its own."""
    budgets: tuple[str, ...]
    test_data: DataInfo
    frames_k_budget: int
    settings: dict[str, Any]
    """The benchmark's settings (``BenchmarkConfig.to_dict``, with the methods run)."""
    command: str
    seconds: dict[str, float]
    """Each stage's wall seconds, summed over the sessions."""
    sessions: tuple[dict[str, Any], ...]
    """Each call's command and its stages' seconds."""
    smoke_test: bool
    task: str
    """The task (``airhockey.tasks.TASKS``) whose data the benchmark generated."""
    headroom: dict[str, Headroom]
    """Per budget (keyed as ``ranks``), the task's headroom; {} without the scratch arm."""


def _pick(entries: dict[int, T], largest: int) -> dict[str, T]:
    """The entries of ``LEADERBOARD_BUDGETS``, keyed '1', '4', ..., 'all'."""
    picked = {}
    for b in LEADERBOARD_BUDGETS:
        key = largest if b is None else b
        if key in entries:
            picked["all" if b is None else str(b)] = entries[key]
    return picked


def _entry(summary: ArmAccuracy) -> Entry:
    return Entry(summary.accuracy_mean, summary.accuracy_ci95)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _row(results: Results, arm: str, oracle_head: dict[int, float], metrics: list[dict[str, Any]]) -> Row:
    """One arm's row; ``metrics``: its pretext runs' ``metrics.json`` ({} for one not there)."""
    largest = results.budgets[-1].labelled_episodes
    by_budget = {b.labelled_episodes: b for b in results.budgets}
    accuracy = {n: b.arms[arm] for n, b in by_budget.items()}
    diff = {n: b.paired_difference.get(arm) for n, b in by_budget.items()}
    probes = (results.probes or {}).get(arm, {})
    frames_k = (results.frames_k or {}).get(arm, {})
    method = results.arm_details[arm].method
    return Row(
        arm=arm,
        method=method,
        accuracy=_pick({n: _entry(a) for n, a in accuracy.items()}, largest),
        difference_to_scratch=_pick({n: MeanCI(d.mean, d.ci95) for n, d in diff.items() if d}, largest),
        gap_to_oracle=_pick(
            {n: accuracy[n].accuracy_mean - head for n, head in oracle_head.items()}, largest
        ),
        accuracy_k={k: _entry(frames_k[k]) for k in LEADERBOARD_K if k in frames_k},
        probe_r2=ProbeR2(
            _mean([probes.get("puck_x"), probes.get("puck_y")]),
            _mean([probes.get("puck_vx"), probes.get("puck_vy")]),
            _mean([probes.get("bar_x"), probes.get("bar_y")]),
        ),
        pretext=PretextCost(
            len(metrics),
            tuple(m.get("steps") for m in metrics),
            sum(m.get("train_seconds_this_session", 0.0) for m in metrics),
            metrics[0].get("parameters"),
        )
        if metrics
        else None,
    )


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

    Each row (an arm, and the oracle): accuracy at ``LEADERBOARD_BUDGETS`` with its interval, the
    paired difference to scratch, the gap to the oracle, accuracy at ``LEADERBOARD_K`` frames, probe
    R² for the puck's position and velocity (means of x and y), and the pretext cost (steps, seconds,
    parameters). ``ranks`` per budget: 1 + the number of arms whose whole interval lies above this
    arm's (arms whose intervals overlap share a rank: ties are ties). ``settings``, ``command``,
    ``seconds``, ``sessions``, ``smoke_test`` and ``task`` are the benchmark's, recorded as given;
    ``headroom`` per budget (``headroom``).
    """
    largest = results.budgets[-1].labelled_episodes
    oracle = {o.labelled_episodes: o for o in results.oracle}
    # The gap to the oracle: to its ceiling, or to its head in results written before the ceiling.
    heads = {n: c.accuracy_mean for n, o in oracle.items() if (c := o.ceiling or o.head) is not None}
    rows = [
        _row(results, arm, heads, pretext_metrics.get(results.arm_details[arm].method or "", []))
        for arm in results.arms
    ]
    oracle_row = OracleRow(
        arm=ORACLE,
        accuracy=_pick({n: _entry(o.head) for n, o in oracle.items() if o.head is not None}, largest),
        boosting=_pick({n: _entry(o.boosting) for n, o in oracle.items() if o.boosting is not None}, largest),
        ceiling=_pick({n: _entry(o.ceiling) for n, o in oracle.items() if o.ceiling is not None}, largest),
        # k frames: positions (k = 1), positions and velocities (k > 1), at the k runs' budget.
        accuracy_k={
            k: {name: _entry(m) for name, m in (("head", o.head), ("boosting", o.boosting)) if m is not None}
            for k, o in results.oracle_frames_k.items()
            if k in LEADERBOARD_K
        },
    )
    keys = list(rows[0].accuracy) if rows else []
    ranks = {
        key: {
            row.arm: 1 + sum(_above(other.accuracy[key], row.accuracy[key]) for other in rows) for row in rows
        }
        for key in keys
    }
    by_arm = {row.arm: row.accuracy for row in rows}
    ceilings = oracle_row.ceiling or oracle_row.accuracy
    room = {
        key: headroom(by_arm[SCRATCH][key], by_arm.get(PRACTITIONER, {}).get(key), ceilings.get(key))
        for key in keys
        if key in by_arm.get(SCRATCH, {})
    }
    return Leaderboard(
        format_version=FORMAT_VERSION,
        rows=tuple(rows),
        oracle=oracle_row,
        ranks=ranks,
        budgets=tuple(keys),
        test_data=results.data,
        frames_k_budget=results.k_budget,
        settings=settings,
        command=command,
        seconds=seconds,
        sessions=tuple(sessions),
        smoke_test=smoke_test,
        task=task,
        headroom=room,
    )


def _above(other: Entry, entry: Entry) -> bool:
    """Whether ``other``'s whole interval lies above ``entry``'s."""
    return other.ci95 is not None and entry.ci95 is not None and other.ci95[0] > entry.ci95[1]


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


def read_leaderboard(path: str | Path) -> Leaderboard:
    """The leaderboard in ``path`` (a ``leaderboard.json`` or its folder); a file of an older format
    (version 1, or none) is read with what later writers added filled in.

    Raises:
        UserError: in one line naming the file, for one that is missing, not JSON, of an unknown
            version, or with a field missing or of the wrong type.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LEADERBOARD_FILE
    data = read_json_file(path)
    if isinstance(data, dict) and data.get("format_version") == 1:
        data = upgrade_v1(data)
    return versioned_record(
        Leaderboard,
        data,
        path,
        current=FORMAT_VERSION,
        upgrade=upgrade_v0,
        file="a benchmark's leaderboard.json",
        kind="leaderboard",
        remedy="run the benchmark again",
    )


def upgrade_v0(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a leaderboard.json without ``format_version`` as the current version: the
    oracle's accuracy at k, which version 1 added, is filled in as none, then ``upgrade_v1``."""
    out = dict(data)
    if isinstance(out.get("oracle"), dict):
        out["oracle"] = {**out["oracle"], "accuracy_k": out["oracle"].get("accuracy_k", {})}
    return upgrade_v1(out)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a version 1 leaderboard.json as the current version: the task is the one of
    its data's labels (``TASK_OF_LABELS``), and no headroom was recorded."""
    settings = data.get("settings")
    data_settings = settings.get("data") if isinstance(settings, dict) else None
    labels = data_settings.get("labels") if isinstance(data_settings, dict) else None
    task = TASK_OF_LABELS.get(labels if isinstance(labels, str) else "leftright", "leftright")
    return {**data, "format_version": FORMAT_VERSION, "task": task, "headroom": {}}


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


def _cell(entry: Entry | None) -> str:
    return "n/a" if not entry else f"{pct(entry.accuracy_mean)} {interval(entry.ci95)}"


def _row_line(row: Row, keys: Sequence[str]) -> str:
    acc = [_cell(row.accuracy.get(k)) for k in keys]
    diff = [
        f"{points(d.mean)} {interval(d.ci95)}" if (d := row.difference_to_scratch.get(k)) else "-"
        for k in keys
    ]
    gaps = ", ".join(points(row.gap_to_oracle[k]) if k in row.gap_to_oracle else "n/a" for k in keys)
    ks = " / ".join(_cell(row.accuracy_k.get(k)) for k in LEADERBOARD_K)
    probe = (row.probe_r2.puck_position, row.probe_r2.puck_velocity)
    probes = " / ".join("n/a" if v is None else f"{v:.2f}" for v in probe)
    p = row.pretext
    cost = "-" if p is None else f"{list(p.steps)}, {p.seconds:.0f} s, {p.parameters:,}"
    return f"| {row.arm} | " + " | ".join(acc + diff) + f" | {gaps} | {ks} | {probes} | {cost} |"


def _oracle_line(oracle: OracleRow, keys: Sequence[str]) -> str:
    by_k = " / ".join(
        "; ".join(_cell(oracle.accuracy_k.get(k, {}).get(name)) for name in ("head", "boosting"))
        for k in LEADERBOARD_K
    )
    return (
        f"| {ORACLE} (head; boosted trees{'; ceiling' if oracle.ceiling else ''}) | "
        + " | ".join(
            f"{_cell(oracle.accuracy.get(k))}; {_cell(oracle.boosting.get(k))}"
            + (f"; {_cell(oracle.ceiling.get(k))}" if oracle.ceiling else "")
            for k in keys
        )
        + " |"
        + " |" * (len(keys) + 1)  # no differences to scratch, no gap to itself
        + f" {by_k} | | |"
    )


def headroom_line(key: str, room: Headroom) -> str:
    """Whether the task earns a place at budget ``key``, with the numbers that decide it."""
    baseline = (
        f" and the {PRACTITIONER}'s {_cell(room.baseline)}"
        if room.baseline
        else f" (no {PRACTITIONER} arm ran: judged on {SCRATCH} alone)"
    )
    return (
        f"- {key} labelled episode{'' if key == '1' else 's'}: "
        f"{'yes' if room.earns_place else 'no'}: ceiling {_cell(room.ceiling)} against "
        f"{SCRATCH} (random encoder) {_cell(room.random_encoder)}{baseline}."
    )


def headroom_lines(board: Leaderboard) -> list[str]:
    """The page's headroom section: per budget, whether the task earns a place."""
    if not board.headroom:
        return []
    return [
        "## Headroom",
        "",
        f"Task `{board.task}` earns a place where the ceiling's whole interval lies above both the "
        f"random-encoder arm's ({SCRATCH}) and the practitioner's baseline's ({PRACTITIONER}).",
        "",
        *(headroom_line(key, room) for key, room in board.headroom.items()),
        "",
    ]


def render_leaderboard(board: Leaderboard, rollouts: bool) -> str:
    """The leaderboard page: the table, the ranks (only where intervals separate), the plots."""
    keys = board.budgets
    lines = ["# Leaderboard: pretext methods through one protocol", ""]
    if board.smoke_test:
        lines += [SMOKE_TEST, ""]
    test = board.test_data
    lines += [
        f"Training data `{test.path}` ({test.train_episodes} training episodes); test data "
        f"`{test.test_path}` ({test.test_episodes} episodes, generated separately). Accuracy on "
        "the frames before the hit, with 95% bootstrap intervals (repeats, pretext runs and test episodes "
        "resampled); differences paired with scratch; the oracle is the same head on the true state"
        + (
            ", and boosted trees; its ceiling the one better on validation (the gap to the oracle is to it). "
            if board.oracle.ceiling
            else ". "
        )
        + f"k: the frames the classifier reads, at {board.frames_k_budget} labelled episodes.",
        "",
        "| arm | "
        + " | ".join(f"{k} ep." for k in keys)
        + " | "
        + " | ".join(f"minus scratch, {k} ep." for k in keys)
        + " | gap to oracle ("
        + ", ".join(keys)
        + ") | k = 1 / k = 4 | probe R²: puck position / velocity | "
        "pretext steps, seconds, parameters |",
        "| --- |" + " --- |" * (2 * len(keys) + 4),
        *(_row_line(row, keys) for row in board.rows),
        _oracle_line(board.oracle, keys),
        "",
        *headroom_lines(board),
        "## Ranks",
        "",
        "Rank 1 + the number of arms whose whole interval lies above; equal ranks are ties.",
        "",
    ]
    for key in keys:
        ranked = sorted(board.ranks[key].items(), key=lambda item: item[1])
        lines.append(
            f"- {key} labelled episode{'' if str(key) == '1' else 's'}: "
            + ", ".join(f"{arm} {rank}" for arm, rank in ranked)
            + "."
        )
    lines += ["", f"![accuracy vs budget]({ACCURACY_PLOT})"]
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
