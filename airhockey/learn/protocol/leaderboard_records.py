"""``leaderboard.json``: a benchmark's leaderboard as typed records; the one place that reads it,
and reads older files as the current format.

A ``Leaderboard`` holds one ``Row`` per arm, each with a ``Cell`` at every budget the comparison ran
(keyed '2', '4', ..., and 'all' where the budget is every training episode) and each k the
classifiers read: the accuracy, the paired differences to each supervised baseline (scratch, the
practitioner's) and the gap to the oracle's ceiling; the oracle's row; per budget and k the ranks
and the ``Headroom``; the goal. ``leaderboard.leaderboard`` builds it from a comparison's results.

``FORMAT_VERSION`` is written with every file. Version 3 keys everything by budget and k; versions 1
and 2 kept accuracy at four budgets at k = 1 and at k = 1 and 4 at one budget
(``frames_k_budget``), and the difference to scratch alone. ``upgrade_leaderboard`` moves every
stored number of such a file to its (budget, k) and computes none: what the old file did not hold
(the differences at k > 1, ranks and headroom there) stays absent. A file of another version is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airhockey.learn.config import SCRATCH
from airhockey.learn.protocol.families import FamilyComparison
from airhockey.learn.protocol.results import DataInfo, Interval, MeanCI
from airhockey.learn.protocol.summaries import Goal
from airhockey.records import OMIT, read_json_file, versioned_record

ORACLE = "oracle"
FORMAT_VERSION = 3
"""The version of ``leaderboard.json`` this module reads and ``leaderboard`` writes (3: every budget
and k; 2: ``task`` and ``headroom``)."""
LEADERBOARD_FILE = "leaderboard.json"
TASK_OF_LABELS = {"leftright": "leftright", "all": "buttons5"}
"""The task (``airhockey.tasks.TASKS``) whose data has each label set."""


@dataclass(frozen=True)
class Entry:
    """An accuracy and its 95% interval."""

    accuracy_mean: float
    ci95: Interval | None


@dataclass(frozen=True)
class Cell:
    """One arm at one budget and k."""

    accuracy: Entry
    difference: dict[str, MeanCI]
    """This arm minus each supervised arm (scratch, the practitioner), by that arm's name, paired
    repeat by repeat; the arm itself, and baselines the comparison kept no difference to, left out."""
    gap_to_oracle: float | None
    """The mean accuracy minus the oracle's ceiling (its head in files older than the ceiling);
    None where the oracle did not run (or the file did not keep the gap)."""


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
    flops_per_step: float | None = field(default=None, metadata=OMIT)
    """One training step's FLOPs (the first run's ``flops_per_step``); None for runs older than it."""
    flops: float | None = field(default=None, metadata=OMIT)
    """Training FLOPs summed over the runs (``pretext_flops``); None where a run lacks it."""


@dataclass(frozen=True)
class Row:
    """One arm's row: a ``Cell`` by budget key ('2', ..., 'all'), then by k."""

    arm: str
    method: str | None
    cells: dict[str, dict[int, Cell]]
    probe_r2: ProbeR2
    pretext: PretextCost | None

    def at(self, key: str, k: int) -> Cell | None:
        """The cell at budget ``key`` and ``k``; None where the arm did not run there."""
        return self.cells.get(key, {}).get(k)

    @property
    def accuracy(self) -> dict[str, Entry]:
        """The accuracy at k = 1 by budget key."""
        return {key: by_k[1].accuracy for key, by_k in self.cells.items() if 1 in by_k}


@dataclass(frozen=True)
class OracleRow:
    """The oracle's row: its head, boosted trees and ceiling (the one better on validation) by
    budget key, then by k."""

    arm: str
    head: dict[str, dict[int, Entry]]
    boosting: dict[str, dict[int, Entry]]
    ceiling: dict[str, dict[int, Entry]] | None = field(default=None, metadata=OMIT)
    """None in files written before the ceiling was recorded."""

    def best(self, key: str, k: int) -> Entry | None:
        """The ceiling at ``key`` and ``k`` (the head in files older than the ceiling)."""
        return (self.ceiling or self.head).get(key, {}).get(k)


@dataclass(frozen=True)
class Headroom:
    """The room a task leaves a method at one budget and k: its ceiling against its baselines."""

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
        and above(ceiling, random_encoder)
        and (baseline is None or above(ceiling, baseline))
    )
    return Headroom(random_encoder, baseline, ceiling, earns)


@dataclass(frozen=True)
class GoalCheck:
    """The comparison's goal (``summaries.goal``) as the leaderboard records it."""

    baselines: tuple[str, ...]
    """The supervised arms the goal is judged against."""
    found: Goal | None
    """The arm that meets it, or the best gap; None where it could not be judged."""


@dataclass(frozen=True)
class Leaderboard:
    """Everything ``leaderboard.json`` holds."""

    format_version: int
    rows: tuple[Row, ...]
    oracle: OracleRow
    ranks: dict[str, dict[int, dict[str, int]]]
    """By budget key and k, each arm's rank: 1 + the number of arms whose whole interval lies above
    its own."""
    budgets: tuple[str, ...]
    """The budget keys, increasing ('all' last)."""
    ks: tuple[int, ...]
    """The k run, increasing."""
    test_data: DataInfo
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
    headroom: dict[str, dict[int, Headroom]]
    """By budget key and k, the task's headroom; {} without the scratch arm."""
    goal: GoalCheck | None = field(default=None, metadata=OMIT)
    """None in files written before the goal was recorded."""
    families: tuple[FamilyComparison, ...] | None = field(default=None, metadata=OMIT)
    """The current method families against the seeds' (``families.compare_families``) at each
    budget and k where both ran; None without both, or in files written before it was recorded."""

    @property
    def baselines(self) -> list[Row]:
        """The supervised arms' rows (no pretext run: scratch, the practitioner's)."""
        return [row for row in self.rows if row.method is None]

    @property
    def methods(self) -> list[Row]:
        """The pretrained arms' rows."""
        return [row for row in self.rows if row.method is not None]

    def better_baseline(self, key: str, k: int) -> str | None:
        """The supervised arm of the higher mean accuracy at ``key`` and ``k`` (the first on ties);
        None where none ran there."""
        ran = [(cell.accuracy.accuracy_mean, row.arm) for row in self.baselines if (cell := row.at(key, k))]
        return max(ran, key=lambda item: item[0])[1] if ran else None

    def minus_better_baseline(self, arm: str, key: str, k: int) -> MeanCI | None:
        """``arm`` minus ``better_baseline(key, k)``, paired; None where either did not run there
        or the difference was not kept."""
        row = next((r for r in self.rows if r.arm == arm), None)
        baseline = self.better_baseline(key, k)
        cell = row.at(key, k) if row is not None else None
        return cell.difference.get(baseline) if cell is not None and baseline is not None else None


def above(other: Entry, entry: Entry) -> bool:
    """Whether ``other``'s whole interval lies above ``entry``'s."""
    return other.ci95 is not None and entry.ci95 is not None and other.ci95[0] > entry.ci95[1]


def read_leaderboard(path: str | Path) -> Leaderboard:
    """The leaderboard in ``path`` (a ``leaderboard.json`` or its folder); a file of an older format
    (version 2, 1 or none) is read through ``upgrade_leaderboard``.

    Raises:
        UserError: in one line naming the file, for one that is missing, not JSON, of an unknown
            version, or with a field missing or of the wrong type.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LEADERBOARD_FILE
    return leaderboard_of(read_json_file(path), path)


def leaderboard_of(data: Any, source: str | Path) -> Leaderboard:
    """The ``Leaderboard`` of plain data read from ``source`` (named in errors), upgraded from an
    older version."""
    return versioned_record(
        Leaderboard,
        data,
        source,
        current=FORMAT_VERSION,
        upgrade=upgrade_leaderboard,
        file="a benchmark's leaderboard.json",
        kind="leaderboard",
        remedy="run the benchmark again",
    )


def upgrade_leaderboard(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a leaderboard.json of version 0 (no ``format_version``), 1 or 2 as version 3;
    data of another version is returned as it is."""
    version = data.get("format_version", 0)
    if version == 0:
        data = upgrade_v0(data)
    if data.get("format_version") == 1:
        data = upgrade_v1(data)
    if data.get("format_version") == 2:
        data = upgrade_v2(data)
    return data


def upgrade_v0(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 as version 1: the oracle's accuracy at k, which version 1 added, is filled in as none."""
    out = {**data, "format_version": 1}
    if isinstance(out.get("oracle"), dict):
        out["oracle"] = {**out["oracle"], "accuracy_k": out["oracle"].get("accuracy_k", {})}
    return out


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 as version 2: the task is the one of its data's labels (``TASK_OF_LABELS``), and
    no headroom was recorded."""
    settings = data.get("settings")
    data_settings = settings.get("data") if isinstance(settings, dict) else None
    labels = data_settings.get("labels") if isinstance(data_settings, dict) else None
    task = TASK_OF_LABELS.get(labels if isinstance(labels, str) else "leftright", "leftright")
    return {**data, "format_version": 2, "task": task, "headroom": {}}


def upgrade_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 as version 3: each budget's entry at k = 1, and the k runs of ``frames_k_budget``
    (keyed 'all' where it is every training episode) at that budget's key and their k."""
    out = {k: v for k, v in data.items() if k != "frames_k_budget"}
    out["format_version"] = 3
    test_data = data.get("test_data")
    at = data.get("frames_k_budget")
    everything = test_data.get("train_episodes") if isinstance(test_data, dict) else None
    k_key = "all" if at == everything else str(at)
    if isinstance(data.get("rows"), list):
        out["rows"] = [_row(row, k_key) if isinstance(row, dict) else row for row in data["rows"]]
    if isinstance(data.get("oracle"), dict):
        out["oracle"] = _oracle(data["oracle"], k_key)
    for name in ("ranks", "headroom"):
        if name in data:
            out[name] = _at_k1(data[name])
    cells = [_dict(row.get("cells")) for row in _list(out.get("rows")) if isinstance(row, dict)]
    if isinstance(data.get("budgets"), list) and all(isinstance(b, str) for b in data["budgets"]):
        keys = {key for row in cells for key in row}
        out["budgets"] = sorted({*data["budgets"], *keys}, key=budget_order)
    out["ks"] = sorted({int(k) for row in cells for by_k in row.values() for k in by_k if k.isdigit()} or {1})
    return out


def budget_order(key: str) -> tuple[int, int]:
    """Sorts budget keys by their number, 'all' last."""
    return (1, 0) if not key.isdigit() else (0, int(key))


def _row(row: dict[str, Any], k_key: str) -> dict[str, Any]:
    differences = _dict(row.get("difference_to_scratch"))
    gaps = _dict(row.get("gap_to_oracle"))
    cells: dict[str, dict[str, Any]] = {}
    for key, entry in _dict(row.get("accuracy")).items():
        difference = {SCRATCH: differences[key]} if key in differences else {}
        cells[key] = {"1": {"accuracy": entry, "difference": difference, "gap_to_oracle": gaps.get(key)}}
    for k, entry in _dict(row.get("accuracy_k")).items():
        cells.setdefault(k_key, {}).setdefault(
            str(k), {"accuracy": entry, "difference": {}, "gap_to_oracle": None}
        )
    kept = {
        k: v
        for k, v in row.items()
        if k not in ("accuracy", "difference_to_scratch", "gap_to_oracle", "accuracy_k")
    }
    return {**kept, "cells": cells}


def _oracle(oracle: dict[str, Any], k_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"arm": oracle.get("arm")}
    for name, old in (("head", "accuracy"), ("boosting", "boosting")):
        entries = _at_k1(oracle.get(old))
        if not isinstance(entries, dict):
            out[name] = entries
            continue
        for k, models in _dict(oracle.get("accuracy_k")).items():
            if isinstance(models, dict) and name in models:
                entries.setdefault(k_key, {}).setdefault(str(k), models[name])
        out[name] = entries
    if "ceiling" in oracle:
        out["ceiling"] = _at_k1(oracle["ceiling"]) if oracle["ceiling"] is not None else None
    return out


def _at_k1(entries: Any) -> Any:
    """``{budget: x}`` as ``{budget: {1: x}}``."""
    return {key: {"1": value} for key, value in entries.items()} if isinstance(entries, dict) else entries


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
