"""The label-efficiency comparison, for any arms (Han, Singh and Kim 2021, section 6; the protocol of
Srivastava, Mansimov and Salakhutdinov 2015, sections 3.3-3.4).

An arm is a way to initialise the classifier's encoder: ``scratch`` (random weights, the
supervised baseline), ``practitioner`` (``CompareConfig.practitioner``: a small CNN over the k
stacked frames and their differences, trained from scratch) or a pretext method's runs (any
registered method's encoder, through ``PretextRun``; several runs of one method spread the
repeats over them). For each label budget
(a number of labelled training episodes) and each repeat (a different, class-balanced draw of
episodes and a different seed), every arm is trained on the same frames with the same seed, and
tested on the same episodes, which no pretext run read (those of a separately generated test
set with ``test_data``). ``compare_on_dataset`` runs it all and writes the report folder (see
``report``), in four named parts: plan the groups of runs, run them, summarise them into a
``results.Results``, write the report:

- the same hyperparameter search for every arm (``CompareConfig.candidates``) at each k run,
  each k's runs with the choice made at that k;
- validation (epoch selection) drawn from each run's own budget, so the labels it uses count;
- accuracy per budget and arm with 95% bootstrap intervals resampling the repeats (pretext runs,
  then draws) and the test episodes (``stats.bootstrap_accuracy``), and the paired difference to
  the reference arm (``scratch`` by default);
- the oracle: the same head, and boosted trees, on the true state (``probes``), the ceiling;
- accuracy against the k frames the classifier reads, at every budget (or ``frames_k_budget``),
  each arm paired with the reference and every other supervised arm; by position in the episode: fraction
  of the time to the hit, frames before the hit, before and after the strike;
- linear probes of each arm's frozen encoder for the true positions and the puck's velocity;
- convergence at every budget and k: validation accuracy against steps and training seconds, the
  area under it, and the steps to ``CompareConfig.convergence_accuracy`` (runs not reaching it
  counted as such);
- the effect of frames with a lit button: the largest budget run again with the other setting;
- every run's record beside its summary (every budget, k and arm, and the oracle's), so that each
  interval can be recomputed from ``results.json`` alone.

The arms and repeats are in ``arms``, the classifier jobs, the search, the oracle and the probes
in ``jobs``, the run log that lets an interrupted comparison finish in ``runlog``, the statistics
of the runs in ``summaries``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airhockey.backends import LOCAL, Backend
from airhockey.errors import UserError
from airhockey.learn.config import SCRATCH, THRESHOLD, CompareConfig
from airhockey.learn.device import check_device
from airhockey.learn.downstream.labelled import VALIDATION_MIN_BUDGET, ClassifierData, assert_disjoint
from airhockey.learn.downstream.scoring import FRACTION_BINS
from airhockey.learn.pretext.guards import check_out_folder, data_fingerprint
from airhockey.learn.protocol.arms import (
    Arm,
    ArmSource,
    Repeat,
    build_arms,
    open_arms,
    repeats,
    resolve_budgets,
)
from airhockey.learn.protocol.horizon import horizon_summary
from airhockey.learn.protocol.jobs import (
    ClassifierJob,
    Runner,
    oracle_records,
    oracle_search,
    oracle_summary,
    probe_jobs,
    run_search,
)
from airhockey.learn.protocol.report import write_report
from airhockey.learn.protocol.results import (
    FORMAT_VERSION,
    Convergence,
    ConvergenceBudget,
    DataInfo,
    OracleBudget,
    PositionBudget,
    Positions,
    Results,
    Search,
    Settings,
)
from airhockey.learn.protocol.runlog import RUN_LOG, optional_runs, read_done, restore_nan, write_settings
from airhockey.learn.protocol.stats import BOOTSTRAP_SAMPLES
from airhockey.learn.protocol.summaries import (
    Run,
    after_hit_summary,
    budget_result,
    convergence_summary,
    position_summary,
)

Group = tuple[int, bool, int]
"""A group of runs: (budget, include_after_hit, k)."""


@dataclass(frozen=True)
class Plan:
    """The groups of runs a comparison makes, every arm and repeat in each."""

    budgets: list[int]
    """The main budgets, as numbers of episodes."""
    include: bool
    """The default hit setting."""
    k_budgets: list[int]
    """The budgets of the k-frame runs: every budget, or ``CompareConfig.frames_k_budget``."""
    groups: list[Group]
    """The main budgets; the largest again with the other hit setting; each of ``k_budgets`` with
    each k > 1."""
    ks: list[int]
    """The k-frame runs' k with 1 (the k = 1 run of their budget); [1] without k-frame runs."""

    @property
    def at_k(self) -> list[tuple[int, int]]:
        """Every (budget, k) with the default hit setting: k = 1 first, budget by budget, then each
        of ``k_budgets`` at each k > 1."""
        return [(b, 1) for b in self.budgets] + [(b, k) for b in self.k_budgets for k in self.ks if k != 1]


def plan_runs(config: CompareConfig, budgets: list[int]) -> Plan:
    """The comparison's groups of runs.

    Args:
        config: the protocol; its ``frames_k_budget`` (one of its budgets, resolved) restricts
            the k > 1 runs to that budget.
        budgets: ``config.budgets`` as numbers of episodes (``arms.resolve_budgets``), in order.
    """
    include = config.training.include_after_hit
    groups = [(b, include, 1) for b in budgets]
    if config.after_hit_effect:
        groups.append((budgets[-1], not include, 1))
    k_budgets = budgets if config.frames_k_budget is None else [config.frames_k_budget]
    groups += [(b, include, k) for b in k_budgets for k in sorted(set(config.frames_k)) if k != 1]
    return Plan(budgets, include, k_budgets, groups, sorted({1, *config.frames_k}))


@dataclass(frozen=True)
class Measured:
    """What the runs gave: each group's records per arm, the oracle's per (budget, k), the search,
    the probes' R² by arm and variable (None without probes)."""

    runs: dict[Group, dict[str, list[Run]]]
    oracle: dict[tuple[int, int], dict[str, list[Run]]]
    search: Search | None
    probes: dict[str, dict[str, float]] | None = None


def compare_on_dataset(
    data: str | Path,
    arms: Sequence[ArmSource],
    out: str | Path,
    config: CompareConfig,
    *,
    reference: str = SCRATCH,
    test_data: str | Path | None = None,
    backend: Backend = LOCAL,
    workers: int | None = 1,
    smoke_test: bool = False,
    progress: bool = True,
    command: str = "",
) -> Results:
    """Runs the comparison on a generated dataset and writes the report folder ``out``.

    Args:
        data: a dataset directory or shard file written by ``airhockey generate``.
        arms: ``"scratch"``, ``"practitioner"`` (added anyway with ``config.practitioner``) and
            pretext runs (folders, checkpoints or opened runs) whose encoders the classifiers load,
            or sequences of runs of one method (``ArmSource``); all runs must share one split of
            this dataset.
        out: the report folder: ``results.json``, the plots and ``report.md``; a folder holding an
            interrupted comparison with the same settings is continued, and a finished one with
            other ``OPTIONAL_RUNS`` (more k, say) is extended: its runs are reused.
        config: the protocol and the schedule.
        reference: the arm the others are paired against (``scratch`` by default, then added if
            missing).
        test_data: a separately generated dataset to test on (all its episodes; their seeds must
            be disjoint from ``data``'s); None tests on the split's test episodes of ``data``.
        backend: where the classifier runs go (``backends.Backend``): each is a task, local or on
            Ray (``--device cuda`` runs reserve a GPU there); results are the same on any.
        workers: local processes for the runs; 1 runs them one after another in this process.
        smoke_test: mark the report as a check of the machinery whose numbers are not results.
        progress: show progress bars.
        command: the command line, recorded in ``results.json``.

    Returns:
        What ``results.json`` holds.

    Raises:
        UserError: a missing or mismatched dataset or pretext run, a budget above the number of
            training episodes, an unavailable device, ``out`` in a dataset's folder or holding
            another comparison (or runs of data regenerated or pretext runs retrained since), or a
            diverged classifier (naming its arm, budget and draw; nothing is recorded of it).
    """
    check_device(config.training.device, config.training.precision)
    out = Path(out)
    check_out_folder(out, data, test_data)
    start = time.monotonic()
    arm_runs, names = open_arms(arms, reference, config.practitioner, config.scratch_per_backbone)
    prepared = ClassifierData.load(data, [r for runs in arm_runs for r in runs], test_data=test_data)
    split = prepared.split
    # classifier_split checked that this is every pretext run's split: they trained on split.train.
    assert_disjoint(split.test, split.train, split.val)
    arm_list = build_arms(names, arm_runs, prepared.image_size)
    plan = plan_runs(config, resolve_budgets(config.budgets, len(split.train)))
    fingerprint = data_fingerprint(data)
    settings = {
        "data": str(data),
        "test_data": None if test_data is None else str(test_data),
        "data_fingerprint": fingerprint,
        "test_data_fingerprint": None if test_data is None else data_fingerprint(test_data),
        "arms": [a.summary() for a in arm_list],
        "config": dataclasses.asdict(config),
    }
    done = read_done(out, settings, config)
    out.mkdir(parents=True, exist_ok=True)
    write_settings(out, settings)
    shared = (
        prepared,
        [a.spec for a in arm_list],
        [[run.encoder_state() for run in a.runs] or [None] for a in arm_list],
        len(prepared.label_names),
        config.hidden,
    )
    hashes = {a["name"]: [r["sha256"] for r in a["pretext_runs"]] or [None] for a in settings["arms"]}
    runner = Runner(shared, done, out / RUN_LOG, backend, workers, progress, fingerprint, hashes)
    measured = run_plan(prepared, arm_list, plan, config, runner)
    info = data_info(prepared, data, test_data)
    results = summarise(prepared, arm_list, plan, config, measured, info, smoke_test, command, start)
    write_report(results, out)
    return results


def run_plan(
    data: ClassifierData, arms: Sequence[Arm], plan: Plan, config: CompareConfig, runner: Runner
) -> Measured:
    """Runs the search, then every arm's classifier and the oracle in every group and repeat (the runs
    already in ``runner.done`` are reused) and the probes (tasks run with the classifiers); returns
    their records."""
    reps = repeats(config)
    selection = selection_data(data)
    chosen, search = run_search(selection, arms, reps, config, runner, plan.ks)
    head_search = oracle_search(selection, reps, config)
    if search is not None and head_search is not None:
        search = dataclasses.replace(search, oracle_head=head_search)
    oracle_lr = None if head_search is None else head_search.chosen
    test_frames = data.frames.of_episodes(data.split.test).usable(True, config.training.test_frame_stride)
    oracle: dict[tuple[int, int], dict[str, list[Run]]] = {}
    jobs: list[ClassifierJob] = []
    for budget, after_hit, k in plan.groups:
        for rep in reps:
            rng = np.random.default_rng(rep.order_seed)
            if config.validation == "budget":
                labelled, val_ids = data.labelled_and_validation(budget, rng)
            else:
                labelled, val_ids = data.labelled(budget, rng), None
            jobs += _group_jobs(arms, rep, (budget, after_hit, k), labelled, val_ids, config, chosen, runner)
            if config.oracle and after_hit == plan.include:
                try:
                    records = oracle_records(
                        selection, labelled, val_ids, test_frames, config, rep.seed, k, oracle_lr
                    )
                except UserError as err:
                    raise UserError(
                        f"oracle, budget {budget}, draw {rep.index + 1}, k = {k}: {err}"
                    ) from None
                for name, record in records.items():
                    record = {**record, "repeat": rep.index, "context_frames": k}
                    oracle.setdefault((budget, k), {}).setdefault(name, []).append(record)
    if config.probes:
        jobs += probe_jobs(arms, config, runner.in_process)
    probes = runner.run(jobs, "runs")
    runs = {
        (budget, after_hit, k): {
            arm.name: [
                restore_nan(runner.done[arm.name, budget, after_hit, rep.index, k, ""]) for rep in reps
            ]
            for arm in arms
        }
        for budget, after_hit, k in plan.groups
    }
    return Measured(runs, oracle, search, probes if config.probes else None)


def selection_data(data: ClassifierData) -> ClassifierData:
    """``data`` as every choice made from downstream results sees it (the search's schedule, the
    oracle head's rate, its epoch and the trees' leaf size): the training and validation episodes'
    frames, an empty test split; the oracle gets its test frames apart, only to score. The search's
    runs are scored by their validation accuracy alone; this view keeps any choice from reading a
    test label even by mistake. The frames are shared with ``data``, not copied."""
    split = dataclasses.replace(data.split, test=data.split.test[:0])
    seen = data.frames.of_episodes(np.concatenate([data.split.train, data.split.val]))
    return dataclasses.replace(data, split=split, frames=seen)


def _group_jobs(
    arms: Sequence[Arm],
    rep: Repeat,
    group: Group,
    labelled: np.ndarray,
    val_ids: np.ndarray | None,
    config: CompareConfig,
    chosen: dict[tuple[str, int], Any],
    runner: Runner,
) -> list[ClassifierJob]:
    """The jobs of one group and repeat that are not done yet, each arm with the schedule the search
    chose for it at the group's k (``chosen``, by arm and k; without a search, ``config``'s)."""
    budget, after_hit, k = group
    jobs = []
    for i, arm in enumerate(arms):
        if (arm.name, budget, after_hit, rep.index, k, "") in runner.done:
            continue
        base = chosen.get((arm.name, k)) or config.arm_training(arm.kind, rep.seed, after_hit)
        training = dataclasses.replace(
            base,
            seed=rep.seed,
            include_after_hit=after_hit,
            context_frames=k,
            select_best=val_ids is None or len(val_ids) > 0,
        )
        jobs.append(ClassifierJob.of(arm, i, rep, budget, labelled, val_ids, training, runner.in_process))
    return jobs


def summarise(
    data: ClassifierData,
    arms: Sequence[Arm],
    plan: Plan,
    config: CompareConfig,
    measured: Measured,
    info: DataInfo,
    smoke_test: bool,
    command: str,
    start: float,
) -> Results:
    """The results of the runs: accuracy and paired differences (to the reference and to every other
    supervised arm) per budget and k, the oracle, the probes, positions and convergence per budget
    and k, and the after-hit effect, with the data ``info``, the ``command`` and the seconds since
    ``start`` (``time.monotonic``)."""
    names = [a.name for a in arms]
    details = {a.name: a.detail() for a in arms}
    baselines = [n for n in names[1:] if details[n].method is None]
    runs, oracle = measured.runs, measured.oracle
    n_train = len(data.split.train)
    by_k = {
        (b, k): budget_result(runs[b, plan.include, k], b, "all" if b == n_train else b, k, baselines)
        for b, k in plan.at_k
    }
    at_k = [(b, k, runs[b, plan.include, k]) for b, k in plan.at_k]
    target = config.convergence_accuracy
    return Results(
        format_version=FORMAT_VERSION,
        arms=tuple(names),
        reference=names[0],
        arm_details=details,
        threshold=THRESHOLD,
        smoke_test=smoke_test,
        budgets=tuple(r for (_, k), r in by_k.items() if k == 1),
        oracle=tuple(
            OracleBudget(b, 1, **oracle_summary(oracle[b, 1])) for b in plan.budgets if (b, 1) in oracle
        ),
        by_k=tuple(r for (_, k), r in by_k.items() if k != 1),
        frames_k_budget=config.frames_k_budget if len(plan.ks) > 1 else None,
        oracle_by_k=tuple(
            OracleBudget(b, k, **oracle_summary(oracle[b, k]))
            for b, k in plan.at_k
            if k != 1 and (b, k) in oracle
        ),
        probes=measured.probes,
        search=measured.search,
        accuracy_by_position=Positions(
            tuple(np.linspace(0.0, 1.0, FRACTION_BINS + 1).tolist()),
            tuple(
                PositionBudget(b, {n: position_summary(r[n], len(data.split.test)) for n in names}, k)
                for b, k, r in at_k
            ),
        ),
        convergence=Convergence(
            tuple(
                ConvergenceBudget(
                    b, {n: convergence_summary(r[n], config.training, target) for n in names}, k
                )
                for b, k, r in at_k
            ),
            config.convergence_accuracy,
        ),
        after_hit=(
            after_hit_summary(
                runs[plan.budgets[-1], plan.include, 1],
                runs[plan.budgets[-1], not plan.include, 1],
                plan.include,
            )
            if config.after_hit_effect
            else None
        ),
        settings=settings_record(config, arms, plan),
        data=info,
        command=command,
        seconds=round(time.monotonic() - start, 1),
        horizon=horizon_summary(at_k),
    )


def settings_record(config: CompareConfig, arms: Sequence[Arm], plan: Plan) -> Settings:
    """The protocol's settings as ``results.json`` records them."""
    return Settings(
        budgets=tuple(plan.budgets),
        repeats=config.repeats,
        seed=config.seed,
        scratch_schedule=config.scratch_schedule,
        training={
            kind: json_plain(dataclasses.asdict(config.arm_training(kind, config.training.seed)))
            for kind in sorted({a.kind for a in arms})
        },
        hidden=config.hidden,
        include_after_hit=plan.include,
        optional_runs=optional_runs(config),
        validation=config.validation,
        validation_min_budget=VALIDATION_MIN_BUDGET,
        bootstrap=f"percentile, {BOOTSTRAP_SAMPLES:,} resamples of the repeats (pretext runs, then "
        "their draws) and, independently, of the test episodes",
    )


def data_info(data: ClassifierData, path: str | Path, test_path: str | Path | None) -> DataInfo:
    """The dataset compared on and its split, as ``results.json`` records them."""
    split = data.split
    return DataInfo(
        path=str(path),
        test_path=None if test_path is None else str(test_path),
        label_names=tuple(data.label_names),
        frame_size=tuple(data.image_size),
        train_episodes=len(split.train),
        val_episodes=len(split.val),
        test_episodes=len(split.test),
        test_episode_ids=tuple(split.test.tolist()),
    )


def json_plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples as lists), so that a record equals its reading."""
    return json.loads(json.dumps(value))
