"""A benchmark over tasks: one benchmark per task, and the leaderboard across them.

``run_tasks_benchmark(out, config, tasks)`` (``airhockey learn benchmark OUT --tasks a,b``) runs
``benchmark.run_benchmark`` for each task (``airhockey.tasks.TASKS``) in ``OUT/<task>/``: its own
data, test data, pretext runs, comparison and leaderboard, the first task at the given edition and,
with ``edition='reduced'``, the others at a reduced one (``BenchmarkConfig.reduced``). It then
writes ``OUT/leaderboard.json`` (``TasksBoard``, written and read here) and ``OUT/leaderboard.md``:
a summary across the tasks (each method's mean rank; per task, budget and k the best method and
whether the task earns a place), then each task's tables beside its headroom.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airhockey.backends import LOCAL, Backend
from airhockey.errors import UserError
from airhockey.jsonio import write_json
from airhockey.learn.config import PRACTITIONER, SCRATCH
from airhockey.learn.protocol.benchmark import BenchmarkConfig, check_benchmark, run_benchmark
from airhockey.learn.protocol.families import points
from airhockey.learn.protocol.leaderboard import cell_text, columns, headroom_line
from airhockey.learn.protocol.leaderboard_records import (
    LEADERBOARD_FILE,
    ORACLE,
    Leaderboard,
    upgrade_leaderboard,
)
from airhockey.learn.protocol.report import SMOKE_TEST
from airhockey.records import read_json_file, to_json, versioned_record
from airhockey.tasks import get_task
from airhockey.writing import write_atomic

TASKS_FORMAT_VERSION = 2
"""The version of a benchmark-over-tasks ``leaderboard.json`` this module writes (2: each task's
leaderboard at every budget and k, its best method at each)."""
EDITIONS = ("same", "reduced")
"""How the tasks after the first run: 'same': the benchmark's edition; 'reduced': fewer budgets,
draws and pretext seeds (``BenchmarkConfig.reduced``)."""


@dataclass(frozen=True)
class TaskEntry:
    """One task of a benchmark over tasks."""

    folder: str
    """Its benchmark's folder, relative to the benchmark over tasks."""
    edition: str
    """'same' or 'reduced' (``EDITIONS``)."""
    board: Leaderboard


@dataclass(frozen=True)
class TasksBoard:
    """Everything a benchmark over tasks' ``leaderboard.json`` holds."""

    format_version: int
    tasks: dict[str, TaskEntry]
    """By task name, in the order they ran."""
    mean_rank: dict[str, float]
    """Each method's rank averaged over the tasks it ran in, and in each over every budget and k
    ranked there."""
    best: dict[str, dict[str, dict[int, str | None]]]
    """Per task, budget key and k, its method of best rank there (ties: the higher mean accuracy);
    None where no method ran."""
    smoke_test: bool


def parse_tasks(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``, each a task of ``airhockey.tasks.TASKS``.

    Raises:
        UserError: for no task, an unknown task or one named twice.
    """
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names:
        raise UserError("--tasks needs at least one task, e.g. leftright,buttons5")
    for name in names:
        get_task(name)
    if len(set(names)) < len(names):
        raise UserError(f"--tasks names a task twice: {text!r}")
    return names


def task_configs(config: BenchmarkConfig, tasks: tuple[str, ...], edition: str) -> dict[str, BenchmarkConfig]:
    """Each task's benchmark settings: ``config`` on the task's data; with ``edition`` 'reduced',
    the tasks after the first at ``config.reduced()``.

    Raises:
        UserError: for an edition not in ``EDITIONS`` or an unknown task.
    """
    if edition not in EDITIONS:
        raise UserError(f"--tasks-edition must be one of {', '.join(EDITIONS)}, got {edition!r}")
    reduce = edition == "reduced"
    return {
        name: (config.reduced() if reduce and i else config).with_task(name) for i, name in enumerate(tasks)
    }


def run_tasks_benchmark(
    out: str | Path,
    config: BenchmarkConfig,
    tasks: tuple[str, ...],
    *,
    edition: str = "same",
    smoke_test: bool = False,
    backend: Backend = LOCAL,
    workers: int | None = 1,
    progress: bool = True,
    command: str = "",
    say: Callable[[str], None] = print,
) -> TasksBoard:
    """Runs (or finishes, or reuses) the benchmark of each task in ``out/<task>/`` and writes the
    leaderboard over the tasks into ``out``.

    Args:
        out: the folder of the benchmark over tasks.
        config: the edition, e.g. ``benchmark.CPU``; each task's data replaces its data's labels,
            policies, nuisances and layouts (``BenchmarkConfig.with_task``).
        tasks: task names (``parse_tasks``), in the order they run.
        edition: 'same' (every task at ``config``) or 'reduced' (the tasks after the first reduced).
        smoke_test, backend, workers, progress, command, say: as ``benchmark.run_benchmark``.

    Raises:
        UserError: anything a task's ``benchmark.check_benchmark`` refuses, for every task before
            anything is written, or an error of any stage.
    """
    out = Path(out)
    configs = task_configs(config, tasks, edition)
    for name, task_config in configs.items():
        check_benchmark(out / name, task_config, backend)
    entries = {}
    for i, (name, task_config) in enumerate(configs.items()):
        say(f"task {name}: {out / name}/")
        board = run_benchmark(
            out / name,
            task_config,
            smoke_test=smoke_test,
            backend=backend,
            workers=workers,
            progress=progress,
            command=command,
            say=say,
        )
        entries[name] = TaskEntry(name, "reduced" if edition == "reduced" and i else "same", board)
    summary = tasks_board(entries, smoke_test)
    write_tasks_board(summary, out)
    say(f"wrote {out}/leaderboard.md")
    return summary


def best_methods(board: Leaderboard) -> dict[str, dict[int, str | None]]:
    """Per budget key and k the board ranked, the method of best rank there (ties: the higher mean
    accuracy); None where no method ran there."""
    best: dict[str, dict[int, str | None]] = {}
    for key, by_k in board.ranks.items():
        for k, ranks in by_k.items():
            ran = [
                (ranks[row.arm], -cell.accuracy.accuracy_mean, row.arm)
                for row in board.methods
                if row.arm in ranks and (cell := row.at(key, k)) is not None
            ]
            best.setdefault(key, {})[k] = min(ran)[2] if ran else None
    return best


def tasks_board(tasks: Mapping[str, TaskEntry], smoke_test: bool) -> TasksBoard:
    """The summary across ``tasks``: each method's mean rank over the tasks and their budgets and k,
    and each task's best method at each budget and k."""
    ranks: dict[str, list[int]] = {}
    for entry in tasks.values():
        for by_k in entry.board.ranks.values():
            for ranked in by_k.values():
                for row in entry.board.methods:
                    if row.arm in ranked:
                        ranks.setdefault(row.arm, []).append(ranked[row.arm])
    return TasksBoard(
        format_version=TASKS_FORMAT_VERSION,
        tasks=dict(tasks),
        mean_rank={arm: sum(r) / len(r) for arm, r in ranks.items()},
        best={name: best_methods(entry.board) for name, entry in tasks.items()},
        smoke_test=smoke_test,
    )


def write_tasks_board(board: TasksBoard, out: Path) -> Path:
    """Writes ``leaderboard.json`` and ``leaderboard.md`` into ``out``; returns the page's path."""
    write_json(out / LEADERBOARD_FILE, to_json(board))
    path = out / "leaderboard.md"
    write_atomic(path, render_tasks_board(board))
    return path


def read_tasks_board(path: str | Path) -> TasksBoard:
    """The benchmark over tasks in ``path`` (its ``leaderboard.json`` or its folder).

    Raises:
        UserError: in one line naming the file, for one that is missing, not JSON, of an unknown
            version, or with a field missing or of the wrong type.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LEADERBOARD_FILE
    data = read_json_file(path)
    return versioned_record(
        TasksBoard,
        data,
        path,
        current=TASKS_FORMAT_VERSION,
        upgrade=_upgrade,
        file="the leaderboard.json of a benchmark over tasks",
        kind="tasks leaderboard",
        remedy="run the benchmark again",
    )


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 as the current version (``upgrade_v1``). Every such file has a version: one without
    is read as the current one, so that a missing field (e.g. a single task's leaderboard.json) is
    named."""
    if data.get("format_version") == 1:
        return upgrade_v1(data)
    return {**data, "format_version": TASKS_FORMAT_VERSION}


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a version 1 file as version 2: each task's leaderboard upgraded
    (``leaderboard_records.upgrade_leaderboard``), its best method as the one at its largest budget
    at k = 1. Values that do not fit are passed on for the typed reader to name."""
    out = {**data, "format_version": TASKS_FORMAT_VERSION}
    tasks, best = data.get("tasks"), data.get("best")
    if not isinstance(tasks, dict) or not isinstance(best, dict):
        return out
    out["tasks"], out["best"] = {}, dict(best)
    for name, entry in tasks.items():
        board = entry.get("board") if isinstance(entry, dict) else None
        if isinstance(board, dict):
            board = upgrade_leaderboard(board)
            entry = {**entry, "board": board}
            budgets = board.get("budgets")
            if name in best and isinstance(budgets, list) and budgets:
                out["best"][name] = {budgets[-1]: {"1": best[name]}}
        out["tasks"][name] = entry
    return out


def _edition(entry: TaskEntry) -> str:
    settings = entry.board.settings
    compare = settings.get("compare", {})
    budgets = ", ".join("all" if b is None else str(b) for b in compare.get("budgets", []))
    seeds = len(settings.get("pretext_seeds", []))
    edition = "the benchmark's edition" if entry.edition == "same" else "a reduced edition"
    return (
        f"Run at {edition}: budgets {budgets}, {compare.get('repeats')} draws each, "
        f"{seeds} pretext seed{'' if seeds == 1 else 's'} per method."
    )


def _task_lines(name: str, entry: TaskEntry) -> list[str]:
    """One task's section: per k its table (random encoder, baseline, methods, ceiling) by budget,
    then whether it earns a place at each budget and k."""
    board = entry.board
    rows = {row.arm: row for row in board.rows}
    shown = [(f"{SCRATCH} (random encoder)", rows.get(SCRATCH))]
    shown += [(f"{PRACTITIONER} (baseline)", rows.get(PRACTITIONER))] if PRACTITIONER in rows else []
    shown += [(row.arm, row) for row in board.methods]
    lines = [
        f"## Task `{name}`",
        "",
        f"{_edition(entry)} Its page: [{entry.folder}/leaderboard.md]({entry.folder}/leaderboard.md).",
        "",
    ]
    for k in board.ks:
        keys = columns(board, k)
        lines += [
            f"k = {k}:",
            "",
            "| arm | " + " | ".join(f"{key} ep." for key in keys) + " |",
            "| --- |" + " --- |" * len(keys),
        ]
        for label, row in shown:
            if row is not None:
                cells = [cell_text(c.accuracy if (c := row.at(key, k)) else None) for key in keys]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        ceiling = [cell_text(board.oracle.best(key, k)) for key in keys]
        lines += [f"| ceiling ({ORACLE}) | " + " | ".join(ceiling) + " |", ""]
    lines.append("Earns a place (the ceiling's interval above both baselines'):")
    verdicts = [
        headroom_line(key, k, by_k[k]) for k in board.ks for key, by_k in board.headroom.items() if k in by_k
    ]
    return [*lines, *(verdicts or ["- n/a (no scratch arm)"]), ""]


def render_tasks_board(board: TasksBoard) -> str:
    """The page of a benchmark over tasks: the summary, then each task's tables."""
    lines = ["# Leaderboard over tasks", ""]
    if board.smoke_test:
        lines += [SMOKE_TEST, ""]
    lines += [
        "Each task ran the same methods through the same protocol on its own data and pretext runs. "
        "Ranks: 1 + the number of arms whose whole 95% interval lies above; equal ranks are ties. "
        "A method's mean rank averages its ranks over the tasks and, in each, over every budget and k.",
        "",
        "## Summary",
        "",
        "| method | mean rank | tasks |",
        "| --- | --- | --- |",
    ]
    for arm, rank in sorted(board.mean_rank.items(), key=lambda item: item[1]):
        ran = sum(any(row.arm == arm for row in e.board.rows) for e in board.tasks.values())
        lines.append(f"| {arm} | {rank:.2f} | {ran} |")
    lines += [
        "",
        "| task | labelled episodes | k | best method | earns a place |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, entry in board.tasks.items():
        for key, by_k in board.best[name].items():
            for k, best in by_k.items():
                room = entry.board.headroom.get(key, {}).get(k)
                verdict = "n/a" if room is None else "yes" if room.earns_place else "no"
                lines.append(f"| {name} | {key} | {k} | {best or '-'} | {verdict} |")
    lines += ["", *_family_summary(board)]
    for name, entry in board.tasks.items():
        lines += _task_lines(name, entry)
    return "\n".join(lines)


def _family_summary(board: TasksBoard) -> list[str]:
    """Per task, budget and k: the current method families minus the seeds' (``families``); [] where
    no task ran both."""
    rows = [
        f"| {name} | {c.budget} | {c.k} | {points(c.difference)} | {c.best[0]} | {c.best[1]} |"
        for name, entry in board.tasks.items()
        for c in entry.board.families or ()
    ]
    if not rows:
        return []
    return [
        "The current method families against the seeds' (each family's mean over its arms, paired "
        "draw by draw; points, 95% interval; each task's page has the means):",
        "",
        "| task | labelled episodes | k | current minus seeds | best current | best of the seeds |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
