"""A comparison's classifier runs as tasks, the hyperparameter search, the oracle and the probes.

Every classifier run is a task (``ClassifierJob``, ``backends.run_tasks``): in this process, in a
local pool, or on Ray, with the same results; each record is appended to the run log as it
finishes (``runlog``). The oracle is the ceiling: the same head, and boosted trees, on the true
state (``probes``). The probes fit ridge regressions from each arm's frozen encoder to the true
positions and the puck's velocity; each is a task too (``ProbeJob``), run with the classifiers.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from airhockey.backends import Backend, run_tasks
from airhockey.errors import UserError
from airhockey.learn.config import ClassifyConfig, CompareConfig
from airhockey.learn.downstream.classifier import ClassifierConfig, EncoderSpec, build_classifier
from airhockey.learn.downstream.classify import log_history, run_arm
from airhockey.learn.downstream.labelled import ClassifierData, FrameSet
from airhockey.learn.downstream.probes import (
    POSITIONS,
    PROBE_SOLVERS,
    VELOCITIES,
    encoder_features,
    fit_boosting,
    fit_state_head,
    oracle_features,
    probe_r2,
)
from airhockey.learn.downstream.scoring import score_predictions
from airhockey.learn.protocol.arms import Arm, Repeat
from airhockey.learn.protocol.results import OracleHeadSearch, Search, SearchChoice, finite
from airhockey.learn.protocol.runlog import Done, append_run, run_key
from airhockey.learn.protocol.summaries import arm_summary
from airhockey.tblog import TB_DIR
from airhockey.writing import open_append

SCHEDULE_FIELDS = ("lr", "encoder_lr", "freeze_epochs", "epochs", "head_norm")
"""The ``ClassifyConfig`` fields a run's record names as its ``schedule``: those the search varies."""


@dataclass(frozen=True)
class ClassifierJob:
    """One classifier run of a comparison: a pure function of these fields and the shared data."""

    arm: str
    """The arm's name."""
    arm_index: int
    """Its position in the shared lists of encoders."""
    run_index: int
    """Which of the arm's pretext runs it loads (0 for scratch)."""
    budget: int
    """Labelled episodes, validation ones included."""
    include_after_hit: bool
    context_frames: int
    repeat: int
    labelled: np.ndarray
    """The episodes trained on."""
    val_episodes: np.ndarray | None
    """The episodes that pick the best epoch (None: the split's validation episodes)."""
    training: ClassifyConfig
    in_process: bool
    """Whether it runs in the driver's process (which keeps the driver's torch threads)."""
    candidate: str = ""
    """The hyperparameter search's candidate this run scores ("" for the comparison's own runs)."""

    @classmethod
    def of(
        cls,
        arm: Arm,
        arm_index: int,
        rep: Repeat,
        budget: int,
        labelled: np.ndarray,
        val_episodes: np.ndarray | None,
        training: ClassifyConfig,
        in_process: bool,
        candidate: str = "",
    ) -> ClassifierJob:
        """The job of ``arm``'s run on repeat ``rep``; its hit setting and k are ``training``'s."""
        return cls(
            arm=arm.name,
            arm_index=arm_index,
            run_index=arm.run_index(rep.index),
            budget=budget,
            include_after_hit=training.include_after_hit,
            context_frames=training.context_frames,
            repeat=rep.index,
            labelled=labelled,
            val_episodes=val_episodes,
            training=training,
            in_process=in_process,
            candidate=candidate,
        )


def run_classifier_job(
    job: ClassifierJob,
    data: ClassifierData,
    specs: Sequence[EncoderSpec],
    states: Sequence[Sequence[dict[str, Any] | None]],
    n_classes: int,
    hidden: int,
) -> dict[str, Any]:
    """Trains and tests one classifier of a comparison (a ``backends.run_tasks`` task); returns its record.

    Raises:
        UserError: a diverged training (``train_classifier``), naming the arm, budget, draw and k
            (and search candidate): it is no result, and none is recorded.
    """
    if not job.in_process:
        torch.set_num_threads(1)  # a worker process or Ray task: parallelism comes from the tasks
    start = time.perf_counter()
    try:
        _, record = run_arm(
            data,
            job.labelled,
            job.training,
            ClassifierConfig(specs[job.arm_index], n_classes, hidden, head_norm=job.training.head_norm),
            states[job.arm_index][job.run_index],
            val_episodes=job.val_episodes,
            progress=False,
            test=not job.candidate,  # a search candidate is read by its validation alone
        )
    except UserError as err:
        run = f"arm {job.arm!r}, budget {job.budget}, draw {job.repeat + 1}, k = {job.context_frames}"
        candidate = f", search candidate {job.candidate!r}" if job.candidate else ""
        raise UserError(f"{run}{candidate}: {err}") from None
    return {
        "arm": job.arm,
        "search": job.candidate,
        "schedule": {k: getattr(job.training, k) for k in SCHEDULE_FIELDS},
        "pretext_run": job.run_index,
        "repeat": job.repeat,
        "include_after_hit": job.include_after_hit,
        "context_frames": job.context_frames,
        **record,
        "seconds": round(time.perf_counter() - start, 3),  # training and testing (not a search's), wall
    }


def tb_run_name(record: dict[str, Any]) -> str:
    """The folder of a comparison run's TensorBoard log in ``REPORT/tb/``: arm, budget, k, hit
    setting, draw and search candidate, e.g. ``scratch-n8-k1-before-r0``."""
    hit = "after" if record["include_after_hit"] else "before"
    name = f"{record['arm']}-n{record['labelled_episodes']}-k{record['context_frames']}-{hit}"
    name += f"-r{record['repeat']}"
    if record.get("search"):
        name += f"-{record['search']}"
    return re.sub(r"[^A-Za-z0-9._=-]", "_", name)


@dataclass
class Runner:
    """Where a comparison's classifier jobs run, what they share, and the runs done so far."""

    shared: tuple[Any, ...]
    """The arguments every job reads after itself (``run_classifier_job``'s data, encoders, ...)."""
    done: Done
    """Finished runs by key; each job's record is added as it finishes."""
    log: Path
    """The run log each record is appended to."""
    backend: Backend
    workers: int | None
    progress: bool
    data_fingerprint: str | None = None
    """The fingerprint of the data the runs train on, recorded in each run's record."""
    checkpoint_hashes: dict[str, list[str | None]] = dataclasses.field(default_factory=dict)
    """Each arm's pretext checkpoints' SHA-256 by ``run_index`` (``Arm.checkpoint_hashes``),
    recorded in each run's record."""

    @property
    def in_process(self) -> bool:
        """Whether the jobs run in this process."""
        return self.backend.kind == "local" and self.workers == 1

    def run(self, jobs: Sequence[ClassifierJob | ProbeJob], label: str) -> dict[str, dict[str, float]]:
        """Runs the jobs as tasks, appending each classifier's record to the run log and to ``done``.

        Returns:
            The probes' R² by arm, then by variable (``STATE_NAMES``), in the order of ``jobs``
            whatever order they finish in; empty without probe jobs.
        """
        probes: dict[int, dict[str, Any]] = {}
        with open_append(self.log) as log:
            for index, record in run_tasks(
                run_job,
                jobs,
                backend=self.backend,
                shared=self.shared,
                workers=self.workers,
                progress=label if self.progress else None,
            ):
                if isinstance(jobs[index], ProbeJob):
                    probes[index] = record
                    continue
                hashes = self.checkpoint_hashes.get(record["arm"], [None])
                record = {
                    **record,
                    "data_fingerprint": self.data_fingerprint,
                    "pretext_sha256": hashes[record["pretext_run"]],
                }
                append_run(log, record)
                self.done[run_key(record)] = record
                schedule = record["schedule"]
                tb = self.log.parent / TB_DIR / tb_run_name(record)
                log_history(
                    tb, record["history"], schedule["lr"], schedule["encoder_lr"], record.get("accuracy")
                )
        by_arm: dict[str, dict[str, float]] = {}
        for index in sorted(probes):
            by_arm.setdefault(probes[index]["arm"], {}).update(probes[index]["r2"])
        return by_arm


def run_search(
    data: ClassifierData,
    arms: Sequence[Arm],
    reps: Sequence[Repeat],
    config: CompareConfig,
    runner: Runner,
    ks: Sequence[int] = (1,),
) -> tuple[dict[tuple[str, int], ClassifyConfig], Search | None]:
    """The same hyperparameter search for every arm (``CompareConfig.candidates``) at each k of
    ``ks`` (k = 1 and the comparison's ``frames_k``): each candidate reading k frames on the first
    ``search_draws`` draws of ``search_budget`` episodes, scored by the mean of each run's best
    validation accuracy (validation drawn from the budget; test never read). The runs already in
    ``runner.done`` are reused.

    Returns:
        Each (arm, k)'s chosen schedule, which that arm's runs of that k use, and what was tried
        and chosen (None without a search).
    """
    candidates = config.candidates()
    if not candidates:
        return {}, None
    budget = min(config.search_budget, len(data.split.train))
    include = config.training.include_after_hit
    draws = reps[: config.search_draws]
    jobs = []
    for rep in draws:
        labelled, val_ids = data.labelled_and_validation(budget, np.random.default_rng(rep.order_seed))
        for k in ks:
            for i, arm in enumerate(arms):
                for name, candidate in candidates.items():
                    if (arm.name, budget, include, rep.index, k, name) in runner.done:
                        continue
                    training = dataclasses.replace(
                        candidate, seed=rep.seed, context_frames=k, select_best=len(val_ids) > 0
                    )
                    jobs.append(
                        ClassifierJob.of(
                            arm, i, rep, budget, labelled, val_ids, training, runner.in_process, name
                        )
                    )
    runner.run(jobs, "search")
    chosen, choices = {}, {}
    for arm in arms:
        for k in ks:
            runs = {
                name: [runner.done[arm.name, budget, include, rep.index, k, name] for rep in draws]
                for name in candidates
            }
            choice = search_choice(runs)
            chosen[arm.name, k] = candidates[choice.chosen]
            choices.setdefault(arm.name, {})[k] = choice
    candidates_json = {name: json.loads(json.dumps(dataclasses.asdict(c))) for name, c in candidates.items()}
    frames_k = {arm: {k: c for k, c in by_k.items() if k != 1} for arm, by_k in choices.items()}
    return chosen, Search(
        budget,
        len(draws),
        candidates_json,
        {arm: by_k[1] for arm, by_k in choices.items() if 1 in by_k},
        frames_k=frames_k if any(frames_k.values()) else None,
    )


def search_choice(runs: dict[str, Sequence[dict[str, Any]]]) -> SearchChoice:
    """The search's choice among candidates from their runs' records (each candidate's runs on the
    search's draws): each scored by the mean over its runs of the best validation accuracy of any
    epoch (0 for a run without validation frames); the first of the best, in candidate order."""

    def best(record: dict[str, Any]) -> float:
        return max((v for h in record["history"] if finite(v := h["val_accuracy"])), default=0.0)

    scores = {name: float(np.mean([best(r) for r in records])) for name, records in runs.items()}
    return SearchChoice(scores, max(scores, key=lambda name: scores[name]))


def oracle_search(
    data: ClassifierData, reps: Sequence[Repeat], config: CompareConfig
) -> OracleHeadSearch | None:
    """The search every arm gets, for the oracle's head: each of ``search_lrs`` trained on the true
    state of the first ``search_draws`` draws of ``search_budget`` episodes, stopped early and scored
    on the validation episodes drawn from them (the encoder schedules do not apply: it has no encoder).

    Returns:
        Each rate's mean validation accuracy (keyed by the rate written with ``:g``) and the
        first of the best in ``search_lrs`` order; None without a search or an oracle.
    """
    if not (config.oracle and config.search_lrs):
        return None
    budget = min(config.search_budget, len(data.split.train))
    include = config.training.include_after_hit
    scores: dict[str, list[float]] = {f"{lr:g}": [] for lr in config.search_lrs}
    for rep in reps[: config.search_draws]:
        labelled, val_ids = data.labelled_and_validation(budget, np.random.default_rng(rep.order_seed))
        train = data.frames.of_episodes(labelled).usable(include, config.training.frame_stride)
        val = data.frames.of_episodes(val_ids).usable(include)
        if not len(val):
            continue
        for lr in config.search_lrs:
            training = oracle_training(config, rep.seed, lr)
            val_x = oracle_features(val, 1)
            try:
                fit = fit_state_head(
                    oracle_features(train, 1), train.label, val_x, training, config.hidden,
                    len(data.label_names), val_x, val.label, config.oracle_patience,
                )  # fmt: skip
            except UserError as err:
                raise UserError(f"oracle head search, budget {budget}, draw {rep.index + 1}: {err}") from None
            scores[f"{lr:g}"].append(fit.val_accuracy)
    if not all(scores.values()):
        return None
    means = {lr: float(np.mean(v)) for lr, v in scores.items()}
    return OracleHeadSearch(means, float(max(means, key=lambda lr: means[lr])))


def oracle_training(config: CompareConfig, seed: int, lr: float | None = None) -> ClassifyConfig:
    """The oracle head's schedule: the classifiers' (``config.training``) with ``seed``, the rate
    ``lr`` (None: ``training.lr``) and at most ``config.oracle_epochs`` epochs, none frozen."""
    training = config.training
    return dataclasses.replace(
        training,
        seed=seed,
        lr=training.lr if lr is None else lr,
        epochs=config.oracle_epochs,
        freeze_epochs=0,
    )


def oracle_records(
    data: ClassifierData,
    labelled: np.ndarray,
    val_ids: np.ndarray | None,
    test: FrameSet,
    config: CompareConfig,
    seed: int,
    k: int,
    lr: float | None = None,
) -> dict[str, dict[str, Any]]:
    """The ceiling: classifiers of the true state (``probes.oracle_features``) trained on the frames
    of the ``labelled`` episodes, validated on those of ``val_ids`` (the head's epoch, the trees'
    leaf size, and later which of the two is the ceiling) and scored on the test frames like every arm.

    Args:
        val_ids: the validation episodes (None: the split's; empty: none, so the head trains all
            ``oracle_epochs`` epochs and the trees' leaf size follows the training frames).
        lr: the head's learning rate (``oracle_search``'s choice); None: ``config.training.lr``.

    Returns:
        ``{"head": record, "boosting": record}``: the classifiers' own head (same seed and hidden
        units, trained to convergence: ``oracle_training``) and scikit-learn's gradient-boosted
        trees, each with ``labelled_episodes`` (validation ones included), ``seed``,
        ``val_accuracy`` (NaN without validation frames), ``chosen`` (the head's epoch kept, the
        trees' ``min_samples_leaf``) and the ``score_predictions`` fields.
    """
    training = oracle_training(config, seed, lr)
    include = training.include_after_hit
    own_val = val_ids is not None
    val_ids = data.split.val if val_ids is None else val_ids
    train = data.frames.of_episodes(labelled).usable(include, training.frame_stride)
    val = data.frames.of_episodes(val_ids).usable(include)
    x, val_x, test_x = oracle_features(train, k), oracle_features(val, k), oracle_features(test, k)
    fits = {
        "head": fit_state_head(
            x, train.label, test_x, training, config.hidden, len(data.label_names), val_x, val.label,
            config.oracle_patience,
        ),
        "boosting": fit_boosting(x, train.label, test_x, seed, val_x, val.label),
    }  # fmt: skip
    return {
        name: {
            "labelled_episodes": len(labelled) + (len(val_ids) if own_val else 0),
            "seed": seed,
            "val_accuracy": fit.val_accuracy,
            "chosen": fit.chosen,
            **score_predictions(fit.predicted == test.label, test, include),
        }
        for name, fit in fits.items()
    }


ORACLE_MODELS = ("head", "boosting")
"""The oracle's classifiers, in the order that breaks a tie for the ceiling (and the ceiling where
no validation frames choose)."""


def ceiling_model(val_accuracy: dict[str, Sequence[float | None]]) -> str:
    """Which oracle model is the ceiling: the one of best mean validation accuracy over the draws
    (the first of equals in ``ORACLE_MODELS`` order); the head where no model has a validation
    accuracy in every draw (budgets with no validation frames). Never reads test accuracy.

    Args:
        val_accuracy: each model's validation accuracy per draw (None or NaN: no validation frames).
    """
    means = {
        name: float(np.mean(v))
        for name in ORACLE_MODELS
        if (v := val_accuracy.get(name)) and all(finite(a) for a in v)
    }
    return max(means, key=lambda name: means[name]) if means else ORACLE_MODELS[0]


def oracle_summary(records: dict[str, Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """The fields of an ``OracleBudget`` from the oracle's records of one
    (budget, k) by model: each model's summary with its runs (``summaries.arm_summary``), the
    ceiling (``ceiling_model``: which, and its summary without the runs, which the model's own
    entry holds) and each model's mean validation accuracy where every draw had validation frames.
    """
    summary = {name: arm_summary(runs) for name, runs in records.items()}
    val = {name: [r["val_accuracy"] for r in runs] for name, runs in records.items()}
    chosen = ceiling_model(val)
    means = {name: float(np.mean(v)) for name, v in val.items() if v and all(finite(a) for a in v)}
    return {
        **summary,
        "ceiling": dataclasses.replace(summary[chosen], runs=None),
        "ceiling_model": chosen,
        "val_accuracy": means or None,
    }


@dataclass(frozen=True)
class ProbeJob:
    """One linear probe of a comparison (a task, like a ``ClassifierJob``): an arm's frozen encoder,
    its first pretext run (the scratch arm's: the random one it starts from), reading k frames,
    regressed to some true state columns; trained on the training split's frames and scored by R²
    on the test frames."""

    arm: str
    """The arm's name."""
    arm_index: int
    """Its position in the shared lists of encoders."""
    context_frames: int
    """Frames the encoder reads."""
    columns: tuple[int, ...]
    """The state columns regressed to (``FrameSet.state``)."""
    include_after_hit: bool
    frame_stride: int
    """Every how many training frames are used."""
    seed: int
    """The seed the classifier (and so a random encoder) is built with."""
    solver: str
    """One of ``probes.PROBE_SOLVERS``."""
    in_process: bool
    """Whether it runs in the driver's process (which keeps the driver's torch threads)."""


def probe_jobs(
    arms: Sequence[Arm], config: CompareConfig, in_process: bool, solver: str = PROBE_SOLVERS[0]
) -> list[ProbeJob]:
    """Every arm's probes: the true positions from one frame, the puck's velocity from two."""
    training = config.training
    return [
        ProbeJob(
            arm=arm.name,
            arm_index=i,
            context_frames=k,
            columns=tuple(columns),
            include_after_hit=training.include_after_hit,
            frame_stride=training.frame_stride,
            seed=config.seed,
            solver=solver,
            in_process=in_process,
        )
        for i, arm in enumerate(arms)
        for k, columns in ((1, POSITIONS), (2, VELOCITIES))
    ]


def run_probe_job(
    job: ProbeJob,
    data: ClassifierData,
    specs: Sequence[EncoderSpec],
    states: Sequence[Sequence[dict[str, Any] | None]],
    n_classes: int,
    hidden: int,
) -> dict[str, Any]:
    """Fits one probe (a ``backends.run_tasks`` task); returns ``{"arm": name, "r2": {variable: R²}}``."""
    if not job.in_process:
        torch.set_num_threads(1)  # a worker process or Ray task: parallelism comes from the tasks
    train = data.frames.of_episodes(data.split.train).usable(job.include_after_hit, job.frame_stride)
    test = data.frames.of_episodes(data.split.test).usable(job.include_after_hit)
    k = job.context_frames
    config = ClassifierConfig(specs[job.arm_index].for_frames(k), n_classes, hidden)
    encoder = build_classifier(config, job.seed, states[job.arm_index][0]).encoder
    train_x, test_x = encoder_features(encoder, train, k), encoder_features(encoder, test, k)
    r2 = probe_r2(train_x, train.state, test_x, test.state, job.columns, job.solver)
    return {"arm": job.arm, "r2": r2}


def run_job(job: ClassifierJob | ProbeJob, *shared: Any) -> dict[str, Any]:
    """A comparison's task: a classifier run (``run_classifier_job``) or a probe (``run_probe_job``)."""
    if isinstance(job, ProbeJob):
        return run_probe_job(job, *shared)
    return run_classifier_job(job, *shared)
