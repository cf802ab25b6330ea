"""``results.json``: what a comparison measured, as typed records; the one place that writes and reads it.

``Results`` holds, for the arms in order (the reference arm first): accuracy per budget and arm
with each run's record (``BudgetResult``), the paired differences to the reference and to every
other supervised arm, the oracle (``OracleBudget``), the same at every budget run with k > 1
frames read (``Results.by_k``, ``Results.oracle_by_k``; ``Results.at`` gives any budget and k), the
linear probes, the hyperparameter search (``Search``), accuracy by position (``Positions``) and
by horizon (``Horizon``),
convergence (``Convergence``), the effect of frames with a lit button (``AfterHit``), the
settings and the data. Every ``ArmAccuracy`` keeps the records of the runs behind it
(``ArmAccuracy.runs``: every budget, k and arm as the run log wrote them, ``runlog``, and the
oracle's), so that each accuracy interval and paired difference can be recomputed from this file
alone (``summaries.arm_summary``, ``summaries.paired_difference``).

``FORMAT_VERSION`` is written with every file. An older file (version 1, or one without a
version, written before the field existed) is read through ``results_upgrade.upgrade_results``; a
file of another version is refused. Positions and convergence hold every budget and k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airhockey.jsonio import write_json
from airhockey.learn.protocol.results_upgrade import upgrade_results
from airhockey.records import OMIT, read_json_file, to_json, versioned_record

FORMAT_VERSION = 2
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
    ``scoring.score_predictions`` fields), in repeat order; None in files written before the
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
    """Every arm's accuracy at one budget and k, and the paired differences to the reference arm
    and to the other supervised arms."""

    labelled_episodes: int
    budget: int | str
    """As the user names it: a number, or 'all' for every training episode."""
    arms: dict[str, ArmAccuracy]
    paired_difference: dict[str, PairedDifference]
    """The arms after the reference, minus the reference."""
    context_frames: int = 1
    """The frames k the classifiers read."""
    to_baselines: dict[str, dict[str, PairedDifference]] = field(default_factory=dict)
    """Keyed by each supervised arm (no pretext run) but the reference, then by every other arm:
    that arm minus the baseline, paired; {} with no such arm."""

    def difference(self, arm: str, baseline: str) -> PairedDifference | None:
        """``arm`` minus ``baseline`` (the reference or one of ``to_baselines``); None where not kept."""
        if baseline in self.to_baselines:
            return self.to_baselines[baseline].get(arm)
        return self.paired_difference.get(arm)


@dataclass(frozen=True)
class OracleBudget:
    """The oracle at one budget and k: its two classifiers of the true state, the arms' head and
    boosted trees."""

    labelled_episodes: int
    context_frames: int = 1
    """The frames k it reads: positions at k = 1, positions and velocities from k = 2."""
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
    """Each candidate's ``ClassifyConfig`` as plain data (the one read at k = 1; at another k
    the same with ``context_frames`` = k)."""
    arms: dict[str, SearchChoice]
    """Each arm's search at k = 1, whose choice runs every budget at k = 1 (and the after-hit run)."""
    oracle_head: OracleHeadSearch | None = field(default=None, metadata=OMIT)
    frames_k: dict[str, dict[int, SearchChoice]] | None = field(default=None, metadata=OMIT)
    """Each arm's search at each k > 1 of the k-frame runs, by arm then k, whose choice runs that
    k; None without k-frame runs, and in files written before the search ran at every k (their
    k-frame runs used the k = 1 choice)."""

    def by_k(self) -> dict[int, dict[str, SearchChoice]]:
        """Each arm's search by k (k = 1 first, then the k-frame runs' k in increasing order), then arm."""
        out = {1: dict(self.arms)}
        for arm, choices in (self.frames_k or {}).items():
            for k, choice in choices.items():
                out.setdefault(k, {})[arm] = choice
        return dict(sorted(out.items()))


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
class StrikeCurve:
    """Accuracy by offset from the strike (frames; negative before it)."""

    frames_from_strike: tuple[int, ...]
    accuracy_mean: tuple[float, ...]
    accuracy_ci95: tuple[Interval | None, ...]
    episodes: tuple[int, ...]
    """Test episodes with a scored frame at each offset."""


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
    by_frames_from_strike: StrikeCurve | None = field(default=None, metadata=OMIT)
    """None in files written before runs kept accuracy by offset from the strike."""
    earliest_from_strike: int | None = field(default=None, metadata=OMIT)
    """The earliest offset from the strike from which accuracy stays >= ``THRESHOLD``."""
    earliest_from_strike_ci95: Interval | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class PositionBudget:
    labelled_episodes: int
    arms: dict[str, PositionSummary]
    context_frames: int = 1


@dataclass(frozen=True)
class Positions:
    """Accuracy by position in the episode, per budget and k (k = 1 first, budget by budget)."""

    fraction_bin_edges: tuple[float, ...]
    budgets: tuple[PositionBudget, ...]


@dataclass(frozen=True)
class OffsetAccuracy:
    """Accuracy on the frame at one offset from an event, over the test episodes that have it."""

    offset: int
    """Frames after the event (negative: before it)."""
    accuracy_mean: float | None
    """None where no test episode has a scored frame there."""
    accuracy_ci95: Interval | None
    episodes: int
    """Test episodes with a scored frame at the offset."""


@dataclass(frozen=True)
class HorizonSummary:
    """One arm's accuracy by horizon at one budget (``horizon.horizon_summary``)."""

    overall: MeanCI
    before_strike: MeanCI | None
    """On the scored frames before the strike; None where no test episode has one."""
    after_strike: MeanCI | None
    """On the scored frames from the strike on."""
    strike: tuple[OffsetAccuracy, ...]
    hit: tuple[OffsetAccuracy, ...]


@dataclass(frozen=True)
class HorizonBudget:
    labelled_episodes: int
    arms: dict[str, HorizonSummary]
    context_frames: int = 1


@dataclass(frozen=True)
class Horizon:
    """Accuracy at fixed offsets from the strike and from the hit, per budget, each with a 95%
    interval resampling the runs and the test episodes."""

    strike_offsets: tuple[int, ...]
    hit_offsets: tuple[int, ...]
    budgets: tuple[HorizonBudget, ...]
    """The (budget, k) settings whose runs all recorded their predictions at the offsets, k = 1
    first, budget by budget."""


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
    epochs_to_threshold: tuple[float, ...]
    epochs_to_threshold_mean: float
    seconds_to_threshold_mean: float
    runs_reaching_threshold: int
    runs: int
    to_accuracy: StepsToAccuracy | None = field(default=None, metadata=OMIT)
    """Optimiser steps to ``Convergence.accuracy`` (None in files older than the field)."""
    steps_to_95pct_of_final: MeanCI | None = field(default=None, metadata=OMIT)
    """Steps to 95% of the run's own final accuracy: in older files only (it favours runs that
    plateau low)."""


@dataclass(frozen=True)
class StepsToAccuracy:
    """How soon the runs of one arm reach a fixed validation accuracy (``summaries.steps_to_accuracy``).

    A run that never reaches it gets no step count: it counts in ``reached`` as one that did not,
    and is left out of the median."""

    steps: tuple[int | None, ...]
    """Each run's first optimiser step count at or above the accuracy; None: not reached."""
    reached: MeanCI
    """The fraction of runs reaching it, with its 95% bootstrap interval over the runs."""
    median_steps: float | None
    """The median steps of the runs that reached it; None where none did."""
    median_steps_ci95: Interval | None
    """95% bootstrap interval of that median, resampling the runs that reached it."""


@dataclass(frozen=True)
class ConvergenceBudget:
    labelled_episodes: int
    arms: dict[str, ConvergenceSummary]
    context_frames: int = 1


@dataclass(frozen=True)
class Convergence:
    """Validation curves per budget and k (k = 1 first, budget by budget)."""

    budgets: tuple[ConvergenceBudget, ...]
    accuracy: float | None = field(default=None, metadata=OMIT)
    """The fixed validation accuracy of ``ConvergenceSummary.to_accuracy`` (None in older files)."""


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
    """Every budget at k = 1."""
    oracle: tuple[OracleBudget, ...]
    """The oracle at every budget at k = 1."""
    by_k: tuple[BudgetResult, ...]
    """Every budget run with k > 1 frames read, at each such k (budget by budget, k ascending)."""
    frames_k_budget: int | None
    """The one budget the k > 1 runs were restricted to; None: every budget."""
    oracle_by_k: tuple[OracleBudget, ...]
    """The oracle at each budget and k of ``by_k``."""
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
    horizon: Horizon | None = field(default=None, metadata=OMIT)
    """Accuracy by horizon; None in files written before runs recorded it."""

    @property
    def pretrained(self) -> list[str]:
        """The arms that load a pretext run's encoder."""
        return [a for a in self.arms if self.arm_details[a].method is not None]

    @property
    def supervised(self) -> list[str]:
        """The arms that load no pretext run (scratch, and any other supervised baseline)."""
        return [a for a in self.arms if self.arm_details[a].method is None]

    @property
    def ks(self) -> list[int]:
        """Every k run, 1 first."""
        return sorted({1, *(b.context_frames for b in self.by_k)})

    def at(self, labelled_episodes: int, k: int = 1) -> BudgetResult | None:
        """Every arm at ``labelled_episodes`` and ``k``; None where that was not run."""
        rows = self.budgets if k == 1 else self.by_k
        key = (labelled_episodes, k)
        return next((b for b in rows if (b.labelled_episodes, b.context_frames) == key), None)

    def oracle_at(self, labelled_episodes: int, k: int = 1) -> OracleBudget | None:
        """The oracle at ``labelled_episodes`` and ``k``; None where it was not run."""
        rows = self.oracle if k == 1 else self.oracle_by_k
        key = (labelled_episodes, k)
        return next((o for o in rows if (o.labelled_episodes, o.context_frames) == key), None)

    @property
    def k_budget(self) -> int:
        """The largest budget run with k > 1 (the largest budget without such runs)."""
        return max((b.labelled_episodes for b in self.by_k), default=self.budgets[-1].labelled_episodes)

    @property
    def frames_k(self) -> dict[str, dict[int, ArmAccuracy]] | None:
        """Each arm's accuracy at each k (with k = 1) at ``k_budget``; None without k > 1 runs."""
        rows = [b for k in self.ks if (b := self.at(self.k_budget, k)) is not None]
        if len(rows) < 2:
            return None
        arms = [a for a in self.arms if any(a in b.arms for b in rows)]
        return {arm: {b.context_frames: b.arms[arm] for b in rows if arm in b.arms} for arm in arms}

    @property
    def oracle_frames_k(self) -> dict[int, OracleBudget]:
        """The oracle at each k (with k = 1) at ``k_budget``; {} without k > 1 runs of it."""
        rows = [o for k in self.ks if (o := self.oracle_at(self.k_budget, k)) is not None]
        return {o.context_frames: o for o in rows} if len(rows) > 1 else {}


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
        upgrade=upgrade_results,
        file="a comparison's results.json",
        kind="results",
        remedy="run the comparison again",
    )


def finite(value: float | None) -> bool:
    """Whether ``value`` is a number (not None, not NaN)."""
    return value is not None and not math.isnan(value)
