"""``results.json``: what a comparison measured, as typed records; the one place that writes and reads it.

``Results`` holds, for the arms in order (the reference arm first): accuracy per budget and arm
with each run's record (``BudgetResult``), the paired differences to the reference, the oracle
(``OracleBudget``), accuracy against the k frames read (``Results.frames_k``, k an int), the
linear probes, the hyperparameter search (``Search``), accuracy by position (``Positions``),
convergence (``Convergence``), the effect of frames with a lit button (``AfterHit``), the
settings and the data. Every ``ArmAccuracy`` keeps the records of the runs behind it
(``ArmAccuracy.runs``: every budget, k and arm as the run log wrote them, ``runlog``, and the
oracle's), so that each accuracy interval and paired difference can be recomputed from this file
alone (``summaries.arm_summary``, ``summaries.paired_difference``).

``FORMAT_VERSION`` is written with every file. A file without one (written before the field
existed) is read through ``upgrade_v0``; a file of another version is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airhockey.jsonio import write_json
from airhockey.records import OMIT, read_json_file, to_json, versioned_record

FORMAT_VERSION = 1
"""The version of ``results.json`` this module writes."""
RESULTS_FILE = "results.json"

Interval = tuple[float, ...]
"""A 95% interval ``(lo, hi)``."""


@dataclass(frozen=True)
class MeanCI:
    """A mean and its 95% bootstrap interval (None with fewer than two values)."""

    mean: float
    ci95: Interval | None


@dataclass(frozen=True)
class ArmAccuracy:
    """Test accuracy of one arm's runs of one setting: the mean over runs with its 95% interval."""

    accuracy_mean: float
    accuracy_ci95: Interval | None
    runs: tuple[dict[str, Any], ...] | None = field(default=None, metadata=OMIT)
    """Each run's record (``runlog``; the oracle's: its ``repeat``, ``context_frames`` and
    ``classify.score_predictions`` fields), in repeat order; None in files written before the
    records of k > 1 and of the oracle were kept."""


@dataclass(frozen=True)
class PairedDifference:
    """An arm's minus the reference arm's accuracy, paired repeat by repeat."""

    mean: float
    ci95: Interval | None
    per_repeat: tuple[float, ...]
    wins: int
    """Repeats where the arm is ahead."""
    ties: int
    repeats: int


@dataclass(frozen=True)
class BudgetResult:
    """Every arm's accuracy at one budget, and the paired differences to the reference arm."""

    labelled_episodes: int
    budget: int | str
    """As the user names it: a number, or 'all' for every training episode."""
    arms: dict[str, ArmAccuracy]
    paired_difference: dict[str, PairedDifference]
    """The arms after the reference."""


@dataclass(frozen=True)
class OracleModels:
    """The oracle's two classifiers of the true state: the arms' head and boosted trees."""

    head: ArmAccuracy | None = field(default=None, metadata=OMIT)
    boosting: ArmAccuracy | None = field(default=None, metadata=OMIT)
    ceiling: ArmAccuracy | None = field(default=None, metadata=OMIT)
    """The ceiling: the one of the two of better mean validation accuracy (``ceiling_model``), its
    test accuracy and interval (its runs are in its own entry)."""
    ceiling_model: str | None = field(default=None, metadata=OMIT)
    """Which of the two ``ceiling`` is, 'head' or 'boosting': chosen on validation frames, never
    test; the head where no validation frames were held out (``jobs.ceiling_model``)."""
    val_accuracy: dict[str, float] | None = field(default=None, metadata=OMIT)
    """Each model's mean validation accuracy over the draws; None without validation frames."""


@dataclass(frozen=True)
class OracleBudget:
    """The oracle at one budget."""

    labelled_episodes: int
    head: ArmAccuracy | None = field(default=None, metadata=OMIT)
    boosting: ArmAccuracy | None = field(default=None, metadata=OMIT)
    ceiling: ArmAccuracy | None = field(default=None, metadata=OMIT)
    """The ceiling: the one of the two of better mean validation accuracy (``ceiling_model``), its
    test accuracy and interval (its runs are in its own entry)."""
    ceiling_model: str | None = field(default=None, metadata=OMIT)
    """Which of the two ``ceiling`` is, 'head' or 'boosting': chosen on validation frames, never
    test; the head where no validation frames were held out (``jobs.ceiling_model``)."""
    val_accuracy: dict[str, float] | None = field(default=None, metadata=OMIT)
    """Each model's mean validation accuracy over the draws; None without validation frames."""


@dataclass(frozen=True)
class SearchChoice:
    """One arm's hyperparameter search: each candidate's score, and the one chosen."""

    mean_best_val_accuracy: dict[str, float]
    chosen: str


@dataclass(frozen=True)
class OracleHeadSearch:
    """The oracle head's learning-rate search: each rate's mean validation accuracy, and the choice."""

    mean_val_accuracy: dict[str, float]
    """Keyed by the rate written with ``:g``."""
    chosen: float


@dataclass(frozen=True)
class Search:
    """The hyperparameter search every arm ran."""

    budget: int
    draws: int
    candidates: dict[str, dict[str, Any]]
    """Each candidate's ``ClassifyConfig`` as plain data."""
    arms: dict[str, SearchChoice]
    oracle_head: OracleHeadSearch | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class FractionCurve:
    """Accuracy by fraction of the time to the hit, bin by bin."""

    accuracy_mean: tuple[float, ...]
    accuracy_ci95: tuple[Interval | None, ...]
    frames: tuple[int, ...]
    """Test frames in each bin."""


@dataclass(frozen=True)
class FramesBeforeHitCurve:
    """Accuracy by frames before the hit, 1, 2, ..."""

    frames_before_hit: tuple[int, ...]
    accuracy_mean: tuple[float, ...]
    accuracy_ci95: tuple[Interval | None, ...]
    episodes: tuple[int, ...]
    """Test episodes with a frame at each position."""


@dataclass(frozen=True)
class PositionSummary:
    """One arm's accuracy by position at one budget, and the earliest positions it is good from."""

    by_fraction: FractionCurve
    earliest_fraction: float | None
    earliest_fraction_ci95: Interval | None
    by_frames_before_hit: FramesBeforeHitCurve
    most_frames_before_hit: int | None
    most_frames_before_hit_ci95: Interval | None
    before_strike: MeanCI
    strike_to_hit: MeanCI


@dataclass(frozen=True)
class PositionBudget:
    labelled_episodes: int
    arms: dict[str, PositionSummary]


@dataclass(frozen=True)
class Positions:
    """Accuracy by position in the episode, per budget."""

    fraction_bin_edges: tuple[float, ...]
    budgets: tuple[PositionBudget, ...]


@dataclass(frozen=True)
class ConvergenceSummary:
    """One arm's validation curves at one budget (means over runs) and how soon they rise."""

    epochs: tuple[int, ...]
    steps: tuple[int, ...] | None
    """Optimiser steps after each epoch (None in files older than the field)."""
    encoder_frozen: tuple[bool, ...]
    val_accuracy_mean: tuple[float, ...]
    val_accuracy_ci95: tuple[Interval | None, ...]
    elapsed_s_mean: tuple[float, ...]
    area_under_curve: MeanCI | None
    steps_to_95pct_of_final: MeanCI | None
    epochs_to_threshold: tuple[float, ...]
    epochs_to_threshold_mean: float
    seconds_to_threshold_mean: float
    runs_reaching_threshold: int
    runs: int


@dataclass(frozen=True)
class ConvergenceBudget:
    labelled_episodes: int
    arms: dict[str, ConvergenceSummary]


@dataclass(frozen=True)
class Convergence:
    budgets: tuple[ConvergenceBudget, ...]


@dataclass(frozen=True)
class HitAccuracy:
    """Accuracy on the frames before the hit, after it, and on all."""

    accuracy_before_hit: MeanCI
    accuracy_after_hit: MeanCI
    accuracy_all_frames: MeanCI


@dataclass(frozen=True)
class AfterHit:
    """The largest budget trained with and without the frames that show the lit button."""

    labelled_episodes: int
    included_by_default: bool
    included: dict[str, HitAccuracy]
    excluded: dict[str, HitAccuracy]


@dataclass(frozen=True)
class PretextRunSummary:
    """A pretext run an arm loads, as ``PretextRun.summary`` gives it."""

    path: str
    method: str
    method_config: dict[str, Any]
    step: int
    metrics: dict[str, Any] | None
    """The run's ``metrics.json`` (None while it trains)."""


@dataclass(frozen=True)
class ArmDetail:
    """One arm: its name, kind ('scratch' or 'pretrained'), method and encoder, its pretext runs."""

    name: str
    kind: str
    method: str | None
    encoder: dict[str, Any]
    pretext_runs: tuple[PretextRunSummary, ...]


@dataclass(frozen=True)
class Settings:
    """The protocol's settings as run."""

    budgets: tuple[int, ...]
    repeats: int
    seed: int
    scratch_schedule: str
    training: dict[str, dict[str, Any]]
    """Each arm kind's ``ClassifyConfig`` as plain data."""
    hidden: int
    include_after_hit: bool
    optional_runs: dict[str, Any] | None
    """``CompareConfig``'s fields of ``runlog.OPTIONAL_RUNS`` (None in files older than the field)."""
    validation: str
    validation_min_budget: int
    bootstrap: str


@dataclass(frozen=True)
class DataInfo:
    """The dataset compared on, and its split."""

    path: str
    test_path: str | None
    label_names: tuple[str, ...]
    frame_size: tuple[int, ...]
    train_episodes: int
    val_episodes: int
    test_episodes: int
    test_episode_ids: tuple[int, ...]


@dataclass(frozen=True)
class Results:
    """Everything a comparison measured (``results.json``)."""

    format_version: int
    arms: tuple[str, ...]
    """The arms' names, the reference first."""
    reference: str
    arm_details: dict[str, ArmDetail]
    threshold: float
    smoke_test: bool
    budgets: tuple[BudgetResult, ...]
    oracle: tuple[OracleBudget, ...]
    frames_k: dict[str, dict[int, ArmAccuracy]] | None
    """Each arm's accuracy at each k frames read (with k = 1), at ``frames_k_budget``."""
    frames_k_difference: dict[str, dict[int, PairedDifference]] | None
    frames_k_budget: int | None
    oracle_frames_k: dict[int, OracleModels]
    probes: dict[str, dict[str, float]] | None
    """Each arm's probe R² per true variable."""
    search: Search | None
    accuracy_by_position: Positions
    convergence: Convergence
    after_hit: AfterHit | None
    settings: Settings
    data: DataInfo
    command: str
    seconds: float
    """The comparison's wall time."""

    @property
    def pretrained(self) -> list[str]:
        """The arms that load a pretext run's encoder."""
        return [a for a in self.arms if self.arm_details[a].method is not None]

    @property
    def k_budget(self) -> int:
        """The budget of the k > 1 runs (the largest where the file does not say)."""
        return self.frames_k_budget or self.budgets[-1].labelled_episodes


def write_results(results: Results, out: str | Path) -> Path:
    """Writes ``results`` to ``out/results.json``; returns its path."""
    return write_json(Path(out) / RESULTS_FILE, to_json(results))


def read_results(path: str | Path) -> Results:
    """The results in ``path`` (a ``results.json`` or the folder holding it), upgraded to this version.

    Raises:
        UserError: in one line naming the file, for one that is missing, not JSON, of an unknown
            version, or with a field missing or of the wrong type.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    return results_of(read_json_file(path), path)


def results_of(data: Any, source: str | Path) -> Results:
    """The ``Results`` of plain data read from ``source`` (named in errors)."""
    return versioned_record(
        Results,
        data,
        source,
        current=FORMAT_VERSION,
        upgrade=upgrade_v0,
        file="a comparison's results.json",
        kind="results",
        remedy="run the comparison again",
    )


_ADDED_AFTER_V0 = {
    "frames_k_budget": None,
    "frames_k_difference": None,
    "oracle_frames_k": {},
    "search": None,
    "probes": None,
    "after_hit": None,
    "oracle": [],
}
"""Top-level fields that results.json files without a format version may lack, and their values."""


def upgrade_v0(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a results.json without ``format_version`` as version 1: the fields that later
    writers added are filled in as absent (None), and the version is set."""
    out: dict[str, Any] = {"format_version": FORMAT_VERSION}
    out.update({k: v for k, v in data.items() if k != "format_version"})
    for key, value in _ADDED_AFTER_V0.items():
        out.setdefault(key, value)
    if isinstance(out.get("settings"), dict):
        out["settings"] = {"optional_runs": None, **out["settings"]}
        out["settings"].setdefault("validation", "split")
    for budget in _dicts(out.get("convergence"), "budgets"):
        for summary in _arm_values(budget):
            summary.setdefault("steps", None)
            summary.setdefault("area_under_curve", None)
            summary.setdefault("steps_to_95pct_of_final", None)
    for budget in _dicts(out.get("accuracy_by_position"), "budgets"):
        for summary in _arm_values(budget):
            summary.setdefault("earliest_fraction_ci95", None)
            summary.setdefault("most_frames_before_hit_ci95", None)
    return out


def _dicts(parent: Any, key: str) -> list[dict[str, Any]]:
    items = parent.get(key) if isinstance(parent, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _arm_values(budget: dict[str, Any]) -> list[dict[str, Any]]:
    arms = budget.get("arms")
    return [v for v in arms.values() if isinstance(v, dict)] if isinstance(arms, dict) else []


def finite(value: float | None) -> bool:
    """Whether ``value`` is a number (not None, not NaN)."""
    return value is not None and not math.isnan(value)
