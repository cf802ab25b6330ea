"""The label-efficiency comparison (seed 000 section 6, protocol of seed 004 sections 3.3-3.4), for any arms.

An arm is a way to initialise the classifier's encoder: ``scratch`` (random weights, the
supervised baseline) or a pretext method's runs (any registered method's encoder, through
``PretextRun``; several runs of one method spread the repeats over them). For each label budget
(a number of labelled training episodes) and each repeat (a different, class-balanced draw of
episodes and a different seed), every arm is trained on the same frames with the same seed, and
tested on the same episodes, which no pretext run read (those of a separately generated test
set with ``test_data``). ``compare_on_dataset`` runs it all and writes the report folder (see
``learn.report``):

- the same hyperparameter search for every arm (``CompareConfig.candidates``), its choice fixed;
- validation (epoch selection) drawn from each run's own budget, so the labels it uses count;
- accuracy per budget and arm with 95% bootstrap intervals resampling the repeats (pretext runs,
  then draws) and the test episodes (``stats.bootstrap_accuracy``), and the paired difference to
  the reference arm (``scratch`` by default);
- the oracle: the same head, and boosted trees, on the true state (``probes``), the ceiling;
- accuracy against the k frames the classifier reads, and by position in the episode: fraction
  of the time to the hit, frames before the hit, before and after the strike;
- linear probes of each arm's frozen encoder for the true positions and the puck's velocity;
- convergence: validation accuracy against epochs and training seconds, and epochs to ``THRESHOLD``;
- the effect of frames with a lit button: the largest budget run again with the other setting.

Every classifier run is a task (``ClassifierJob``, ``backends.run_tasks``): in this process, in a
local pool, or on Ray, with the same results. Each run's record is appended to
``REPORT/runs.jsonl`` as it finishes; running the same comparison into the same folder again
reuses those runs and finishes the rest.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airhockey.backends import LOCAL, Backend, run_tasks
from airhockey.errors import UserError
from airhockey.jsonio import json_safe
from airhockey.learn.config import SCRATCH, THRESHOLD, ClassifyConfig, CompareConfig, EncoderConfig
from airhockey.learn.downstream.classifier import ClassifierConfig, EncoderSpec
from airhockey.learn.downstream.classify import FRACTION_BINS, run_arm
from airhockey.learn.downstream.labelled import (
    VALIDATION_MIN_BUDGET,
    ClassifierData,
    FrameSet,
    assert_disjoint,
)
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.protocol.stats import BOOTSTRAP_SAMPLES, bootstrap_accuracy, bootstrap_mean, mean_ci

RUN_LOG = "runs.jsonl"
"""In the report folder: each run's record, one JSON line each, written as the run finishes."""
SETTINGS_FILE = "compare.json"
"""In the report folder: the comparison's settings, to check that a re-run continues the same one."""


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison: a name, and the pretext runs whose encoder it loads (none: scratch).

    An arm with several pretext runs (one method and config, other seeds) spreads its repeats over
    them, repeat r loading run r mod R, and its intervals resample the runs too.
    """

    name: str
    runs: tuple[PretextRun, ...]
    spec: EncoderSpec
    """The classifier's encoder."""

    @property
    def kind(self) -> str:
        """'scratch' or 'pretrained'."""
        return "pretrained" if self.runs else SCRATCH

    @property
    def method(self) -> str | None:
        """The pretext method's name (None for scratch)."""
        return self.runs[0].method.name if self.runs else None

    def run_index(self, repeat: int) -> int:
        """Which of the arm's pretext runs repeat ``repeat`` loads (0 for scratch)."""
        return repeat % len(self.runs) if self.runs else 0

    def summary(self) -> dict[str, Any]:
        """What results.json records of the arm."""
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "encoder": dataclasses.asdict(self.spec),
            "pretext_runs": [run.summary() for run in self.runs],
        }


def resolve_budgets(budgets: Sequence[int | None], available: int) -> list[int]:
    """Budgets as numbers of episodes (None -> ``available``), sorted and without repeats.

    Raises:
        UserError: for a budget above the ``available`` training episodes.
    """
    too_big = [b for b in budgets if b is not None and b > available]
    if too_big:
        raise UserError(
            f"budget {too_big[0]} exceeds the {available} training episodes: lower it or use 'all'"
        )
    return sorted({available if b is None else b for b in budgets})


ArmSource = str | Path | PretextRun | Sequence[str | Path | PretextRun]
"""An arm as callers name it: ``"scratch"``, a pretext run (folder, checkpoint or opened), several runs
of one method (a sequence, or one string of comma-separated folders)."""


def open_arms(
    arms: Sequence[ArmSource], reference: str = SCRATCH
) -> tuple[list[tuple[PretextRun, ...]], list[str]]:
    """The pretext runs of each arm (none for ``scratch``) and unique arm names, the reference first.

    ``scratch`` is added when it is the reference and not among ``arms``. An arm given as one run is
    named after its folder, one given as a sequence of runs after their method; repeats get ``-2``...

    Raises:
        UserError: for a run that cannot be opened, runs of one arm with different methods or
            configs, or a reference that names no arm.
    """
    opened: list[tuple[PretextRun, ...]] = []
    names: list[str] = []
    for arm in arms:
        if isinstance(arm, str) and "," in arm:
            arm = [part.strip() for part in arm.split(",") if part.strip()]
        parts = list(arm) if isinstance(arm, (list, tuple)) else [arm]
        if len(parts) == 1 and str(parts[0]) == SCRATCH:
            if SCRATCH in names:
                continue
            runs: tuple[PretextRun, ...] = ()
            name = SCRATCH
        else:
            runs = tuple(p if isinstance(p, PretextRun) else PretextRun.open(p) for p in parts)
            configs = {(r.method.name, json.dumps(r.method.config_dict(), sort_keys=True)) for r in runs}
            if len(configs) > 1:
                folders = ", ".join(str(r.folder) for r in runs)
                raise UserError(f"the runs of one arm must share a method and its settings: {folders}")
            name = (
                runs[0].name
                if len(parts) == 1 and not isinstance(arm, (list, tuple))
                else runs[0].method.name
            )
        unique, k = name, 2
        while unique in names:
            unique, k = f"{name}-{k}", k + 1
        opened.append(runs)
        names.append(unique)
    if reference == SCRATCH and SCRATCH not in names:
        opened.insert(0, ())
        names.insert(0, SCRATCH)
    if reference not in names:
        raise UserError(f"the reference arm {reference!r} is not among the arms: {', '.join(names)}")
    i = names.index(reference)
    order = [i] + [j for j in range(len(names)) if j != i]
    return [opened[j] for j in order], [names[j] for j in order]


def _scratch_spec(runs: Sequence[PretextRun], image_size: tuple[int, int]) -> EncoderSpec:
    """The scratch arm's encoder: the shared frame encoder at the sizes of the first run that uses it
    (so that the baseline has the pretrained arms' architecture), else at its default sizes."""
    for run in runs:
        config: Any = run.method.config
        if isinstance(getattr(config, "encoder", None), EncoderConfig):
            return EncoderSpec.shared(config.encoder)
    return EncoderSpec.shared(EncoderConfig(image_size=image_size))


@dataclass(frozen=True)
class Repeat:
    """What one repeat fixes for every budget and arm: the order its subsets are drawn in, and its seed."""

    index: int
    order_seed: np.random.SeedSequence
    seed: int


def repeats(config: CompareConfig) -> list[Repeat]:
    """The repeats, each with its own seed sequence for the labelled subsets and its training seed."""
    out = []
    for r, seq in enumerate(np.random.SeedSequence(config.seed).spawn(config.repeats)):
        order_seed, run_seed = seq.spawn(2)
        out.append(Repeat(r, order_seed, int(run_seed.generate_state(1)[0])))
    return out


def _first_reaching(history: list[dict[str, Any]], key: str) -> float:
    """``key`` of the first epoch whose validation accuracy reaches ``THRESHOLD``; NaN if none does."""
    return next((float(h[key]) for h in history if h["val_accuracy"] >= THRESHOLD), math.nan)


def _summary(values: Sequence[float]) -> dict[str, Any]:
    mean, ci = bootstrap_mean(values)
    return {"mean": mean, "ci95": ci}


def _curve(rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Mean and 95% bootstrap interval over runs, position by position, of equally long curves."""
    stats = [bootstrap_mean(column) for column in zip(*rows, strict=True)]
    return {"accuracy_mean": [m for m, _ in stats], "accuracy_ci95": [ci for _, ci in stats]}


def earliest_fraction(curve: Sequence[float]) -> float | None:
    """Start of the earliest fraction bin from which every later bin's accuracy is >= ``THRESHOLD``."""
    start = None
    for i in range(len(curve) - 1, -1, -1):
        if math.isnan(curve[i]) or curve[i] < THRESHOLD:
            break
        start = i / len(curve)
    return start


def most_frames_before_hit(curve: Sequence[float]) -> int | None:
    """The largest k such that accuracy is >= ``THRESHOLD`` at every 1..k frames before the hit."""
    k = 0
    while k < len(curve) and not math.isnan(curve[k]) and curve[k] >= THRESHOLD:
        k += 1
    return k or None


def curve_statistic_ci(
    rows: Sequence[Sequence[float]],
    statistic: Any,
    missing: float,
    *,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> list[float] | None:
    """95% percentile bootstrap interval of ``statistic(mean curve)`` resampling the runs (rows of
    equally long curves); a resample whose statistic is None (not reached) counts as ``missing``.
    None for fewer than two runs."""
    curves = np.asarray(rows, np.float64)
    if len(curves) < 2 or not curves.shape[1]:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for pick in rng.integers(0, len(curves), (n_boot, len(curves))):
        value = statistic(curves[pick].mean(axis=0).tolist())
        values.append(missing if value is None else value)
    lo, hi = np.quantile(values, [0.025, 0.975])
    return [float(lo), float(hi)]


def position_summary(runs: Sequence[dict[str, Any]], test_episodes: int) -> dict[str, Any]:
    """Accuracy by position over the runs of one budget and arm, with the earliest positions.

    Frames-before-hit positions are kept up to the largest k that at least half of the test
    episodes reach, so that the tail is not a handful of long episodes.
    """
    counts = runs[0]["frames_before_hit_frames"]
    longest = max((k + 1 for k, n in enumerate(counts) if 2 * n >= test_episodes), default=0)
    by_fraction = _curve([r["by_fraction"] for r in runs])
    by_k = _curve([r["by_frames_before_hit"][:longest] for r in runs])
    return {
        "by_fraction": {**by_fraction, "frames": runs[0]["fraction_frames"]},
        "earliest_fraction": earliest_fraction(by_fraction["accuracy_mean"]),
        # "Not reached" counts as 1.0 (the hit itself) in the interval's resamples.
        "earliest_fraction_ci95": curve_statistic_ci(
            [r["by_fraction"] for r in runs], earliest_fraction, 1.0
        ),
        "by_frames_before_hit": {
            "frames_before_hit": list(range(1, longest + 1)),
            **by_k,
            "episodes": counts[:longest],
        },
        "most_frames_before_hit": most_frames_before_hit(by_k["accuracy_mean"]),
        # "Not reached" counts as 0 frames in the interval's resamples.
        "most_frames_before_hit_ci95": curve_statistic_ci(
            [r["by_frames_before_hit"][:longest] for r in runs], most_frames_before_hit, 0
        ),
        "before_strike": _summary([r["accuracy_before_strike"] for r in runs]),
        "strike_to_hit": _summary([r["accuracy_strike_to_hit"] for r in runs]),
    }


def run_steps(record: dict[str, Any], training: ClassifyConfig) -> list[int]:
    """Optimiser steps after each epoch of a run (from its history; derived from the epoch length
    ``max(min_epoch_frames, train_frames)`` for records written before histories counted them)."""
    history = record["history"]
    if all("steps" in h for h in history):
        return [int(h["steps"]) for h in history]
    per_epoch = -(-max(training.min_epoch_frames, record["train_frames"]) // training.batch_size)
    return [per_epoch * int(h["epoch"]) for h in history]


def curve_area(steps: Sequence[float], accuracy: Sequence[float]) -> float:
    """Normalised area under validation accuracy against optimiser steps: the trapezoid area from
    step 0 (where accuracy is taken as the first measurement) to the last step, over the last step;
    a fraction like accuracy. NaN when any point is NaN (no validation episodes)."""
    y = np.asarray(accuracy, np.float64)
    if not y.size or np.isnan(y).any():
        return math.nan
    x = np.concatenate([[0.0], np.asarray(steps, np.float64)])
    y = np.concatenate([[y[0]], y])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / x[-1])


def steps_to_fraction_of_final(
    steps: Sequence[int], accuracy: Sequence[float], fraction: float = 0.95
) -> float:
    """The first step count at which validation accuracy reaches ``fraction`` of the run's own final
    (last epoch's) accuracy; NaN without validation."""
    if not len(accuracy) or any(math.isnan(a) for a in accuracy):
        return math.nan
    target = fraction * accuracy[-1]
    return float(next(s for s, a in zip(steps, accuracy, strict=True) if a >= target))


def convergence_summary(runs: Sequence[dict[str, Any]], training: ClassifyConfig) -> dict[str, Any]:
    """Validation accuracy by epoch, optimiser steps and training seconds; per run the area under
    accuracy against steps (``curve_area``), the steps to 95% of its own final accuracy and the
    epochs and seconds to ``THRESHOLD``, each as a mean with its 95% bootstrap interval over runs.

    The runs of one budget share their epoch length, so every arm's curve is read at the same
    numbers of optimiser steps."""
    histories = [r["history"] for r in runs]
    accuracy = [[h["val_accuracy"] for h in hist] for hist in histories]
    steps = [run_steps(r, training) for r in runs]
    curve = _curve(accuracy)
    epochs = [_first_reaching(h, "epoch") for h in histories]
    seconds = [_first_reaching(h, "elapsed_s") for h in histories]
    area = _summary([curve_area(x, y) for x, y in zip(steps, accuracy, strict=True)])
    to_95 = _summary([steps_to_fraction_of_final(x, y) for x, y in zip(steps, accuracy, strict=True)])
    return {
        "epochs": [h["epoch"] for h in histories[0]],
        "steps": steps[0],
        "encoder_frozen": [h["encoder_frozen"] for h in histories[0]],
        "val_accuracy_mean": curve["accuracy_mean"],
        "val_accuracy_ci95": curve["accuracy_ci95"],
        "elapsed_s_mean": [
            float(np.mean(col))
            for col in zip(*[[h["elapsed_s"] for h in hist] for hist in histories], strict=True)
        ],
        "area_under_curve": area,
        "steps_to_95pct_of_final": to_95,
        "epochs_to_threshold": epochs,
        "epochs_to_threshold_mean": mean_ci(epochs)[0],
        "seconds_to_threshold_mean": mean_ci(seconds)[0],
        "runs_reaching_threshold": sum(not math.isnan(e) for e in epochs),
        "runs": len(runs),
    }


def _hits(runs: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D, E) correct scored frames of each run on each test episode, (E,) scored frames, and (D,)
    the pretext run each repeat loaded (the bootstrap's groups)."""
    return (
        np.asarray([r["episode_hits"] for r in runs], float),
        np.asarray(runs[0]["episode_frames"], float),
        np.asarray([r.get("pretext_run", 0) for r in runs], np.int64),
    )


def arm_summary(runs: Sequence[dict[str, Any]], keep_runs: bool = True) -> dict[str, Any]:
    """Mean accuracy over the runs with its 95% bootstrap interval (resampling runs and test
    episodes, ``stats.bootstrap_accuracy``), and the runs themselves."""
    hits, frames, groups = _hits(runs)
    mean, ci = bootstrap_accuracy(hits, frames, groups)
    return {"accuracy_mean": mean, "accuracy_ci95": ci, **({"runs": list(runs)} if keep_runs else {})}


def paired_difference(arm: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An arm's minus the reference arm's accuracy, repeat by repeat (same subset, same seed), with a
    95% bootstrap interval resampling the paired repeats and the test episodes."""
    diffs = [a["accuracy"] - b["accuracy"] for a, b in zip(arm, reference, strict=True)]
    (hits, frames, groups), (ref_hits, _, _) = _hits(arm), _hits(reference)
    mean, ci = bootstrap_accuracy(hits - ref_hits, frames, groups)
    return {
        "mean": mean,
        "ci95": ci,
        "per_repeat": diffs,
        "wins": sum(d > 0 for d in diffs),
        "ties": sum(d == 0 for d in diffs),
        "repeats": len(diffs),
    }


def after_hit_summary(
    default: dict[str, list[dict[str, Any]]],
    other: dict[str, list[dict[str, Any]]],
    included_by_default: bool,
) -> dict[str, Any]:
    """The runs of one budget trained with and without frames that show the lit button, side by side."""
    settings = {"included" if included_by_default else "excluded": default}
    settings["excluded" if included_by_default else "included"] = other
    keys = ("accuracy_before_hit", "accuracy_after_hit", "accuracy_all_frames")
    first = next(iter(default.values()))[0]
    return {
        "labelled_episodes": first["labelled_episodes"],
        "included_by_default": included_by_default,
        **{
            setting: {
                arm: {k: _summary([r[k] for r in arm_runs]) for k in keys} for arm, arm_runs in runs.items()
            }
            for setting, runs in settings.items()
        },
    }


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
    """Trains and tests one classifier of a comparison (a ``backends.run_tasks`` task); returns its record."""
    import torch

    if not job.in_process:
        torch.set_num_threads(1)  # a worker process or Ray task: parallelism comes from the tasks
    start = time.perf_counter()
    _, record = run_arm(
        data,
        job.labelled,
        job.training,
        ClassifierConfig(specs[job.arm_index], n_classes, hidden),
        states[job.arm_index][job.run_index],
        val_episodes=job.val_episodes,
        progress=False,
    )
    return {
        "arm": job.arm,
        "search": job.candidate,
        "schedule": {k: getattr(job.training, k) for k in ("lr", "encoder_lr", "freeze_epochs", "epochs")},
        "pretext_run": job.run_index,
        "repeat": job.repeat,
        "include_after_hit": job.include_after_hit,
        "context_frames": job.context_frames,
        **record,
        "seconds": round(time.perf_counter() - start, 3),  # training and testing, wall clock
    }


def _search(
    data: ClassifierData,
    arms: Sequence[Arm],
    reps: Sequence[Repeat],
    config: CompareConfig,
    done: dict[tuple[Any, ...], dict[str, Any]],
    shared: tuple[Any, ...],
    log_path: Path,
    backend: Backend,
    workers: int | None,
    label: str | None,
) -> tuple[dict[str, ClassifyConfig], dict[str, Any] | None]:
    """The same hyperparameter search for every arm (``CompareConfig.candidates``): each candidate on
    the first ``search_draws`` draws of ``search_budget`` episodes, scored by the mean of each run's
    best validation accuracy (validation drawn from the budget). Returns each arm's chosen schedule
    and what was tried and chosen (None without a search)."""
    candidates = config.candidates()
    if not candidates:
        return {}, None
    budget = min(config.search_budget, len(data.split.train))
    include = config.training.include_after_hit
    in_process = backend.kind == "local" and workers == 1
    jobs = []
    for rep in reps[: config.search_draws]:
        labelled, val_ids = data.labelled_and_validation(budget, np.random.default_rng(rep.order_seed))
        for i, arm in enumerate(arms):
            for name, candidate in candidates.items():
                if (arm.name, budget, include, rep.index, 1, name) in done:
                    continue
                training = dataclasses.replace(
                    candidate, seed=rep.seed, context_frames=1, select_best=len(val_ids) > 0
                )
                jobs.append(
                    ClassifierJob.of(arm, i, rep, budget, labelled, val_ids, training, in_process, name)
                )
    _run_jobs(jobs, shared, done, log_path, backend, workers, None if label is None else "search")
    chosen, summary = {}, {}
    for arm in arms:
        scores = {}
        for name in candidates:
            runs = [
                done[arm.name, budget, include, rep.index, 1, name] for rep in reps[: config.search_draws]
            ]
            best = [
                max((v for h in r["history"] if _finite(v := h["val_accuracy"])), default=0.0) for r in runs
            ]
            scores[name] = float(np.mean(best))
        pick = max(scores, key=lambda name: scores[name])  # the first of the best, in candidate order
        chosen[arm.name] = candidates[pick]
        summary[arm.name] = {"mean_best_val_accuracy": scores, "chosen": pick}
    return chosen, {
        "budget": budget,
        "draws": min(config.search_draws, len(reps)),
        "candidates": {name: dataclasses.asdict(c) for name, c in candidates.items()},
        "arms": summary,
    }


def oracle_search(
    data: ClassifierData, reps: Sequence[Repeat], config: CompareConfig
) -> dict[str, Any] | None:
    """The search every arm gets, for the oracle's head: each of ``search_lrs`` trained on the true
    state of the first ``search_draws`` draws of ``search_budget`` episodes and scored on the
    validation episodes drawn from them (the encoder schedules do not apply: it has no encoder).

    Returns:
        ``{"mean_val_accuracy": {lr: accuracy}, "chosen": lr}``, the first of the best in
        ``search_lrs`` order; None without a search or an oracle.
    """
    from airhockey.learn.downstream.probes import fit_state_head, oracle_features

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
            training = dataclasses.replace(config.training, lr=lr, seed=rep.seed)
            predicted = fit_state_head(
                oracle_features(train, 1), train.label, oracle_features(val, 1), training,
                config.hidden, len(data.label_names),
            )  # fmt: skip
            scores[f"{lr:g}"].append(float(np.mean(predicted == val.label)))
    if not all(scores.values()):
        return None
    means = {lr: float(np.mean(v)) for lr, v in scores.items()}
    return {"mean_val_accuracy": means, "chosen": float(max(means, key=lambda lr: means[lr]))}


def oracle_records(
    data: ClassifierData,
    labelled: np.ndarray,
    test: FrameSet,
    config: CompareConfig,
    seed: int,
    k: int,
    lr: float | None = None,
) -> dict[str, dict[str, Any]]:
    """The ceiling: classifiers of the true state (``probes.oracle_features``) trained on the frames
    of the ``labelled`` episodes and scored on the test frames like every arm.

    Args:
        lr: the head's learning rate (``oracle_search``'s choice); None: ``config.training.lr``.

    Returns:
        ``{"head": record, "boosting": record}``: the classifiers' own head (same schedule, seed and
        hidden units) and scikit-learn's gradient-boosted trees, each with the ``score_predictions``
        fields.
    """
    from airhockey.learn.downstream.classify import score_predictions
    from airhockey.learn.downstream.probes import boosting_accuracy, fit_state_head, oracle_features

    training = dataclasses.replace(config.training, seed=seed, lr=config.training.lr if lr is None else lr)
    train = data.frames.of_episodes(labelled).usable(training.include_after_hit, training.frame_stride)
    x, test_x = oracle_features(train, k), oracle_features(test, k)
    n_classes = len(data.label_names)
    head = fit_state_head(x, train.label, test_x, training, config.hidden, n_classes) == test.label
    trees = boosting_accuracy(x, train.label, test_x, test.label, seed)
    return {
        name: {
            "labelled_episodes": len(labelled),
            "seed": seed,
            **score_predictions(c, test, training.include_after_hit),
        }
        for name, c in (("head", head), ("boosting", trees))
    }


def probe_summary(
    data: ClassifierData, arms: Sequence[Arm], n_classes: int, config: CompareConfig
) -> dict[str, dict[str, float]]:
    """Linear probes of each arm's frozen encoder: R² on the test frames of ridge regressions from its
    features (trained on the training split's frames) to the true positions (one frame) and the
    puck's velocity (two frames). The scratch arm's encoder is the random one it starts from; an arm
    of several pretext runs is probed on its first."""
    from airhockey.learn.downstream.classifier import build_classifier
    from airhockey.learn.downstream.probes import POSITIONS, VELOCITIES, encoder_features, probe_r2

    include, stride = config.training.include_after_hit, config.training.frame_stride
    train = data.frames.of_episodes(data.split.train).usable(include, stride)
    test = data.frames.of_episodes(data.split.test).usable(include)
    out = {}
    for arm in arms:
        model = build_classifier(
            ClassifierConfig(arm.spec, n_classes, config.hidden),
            config.seed,
            arm.runs[0].encoder_state() if arm.runs else None,
        )
        r2 = {}
        for k, columns in ((1, POSITIONS), (2, VELOCITIES)):
            features = encoder_features(model.encoder, train, k), encoder_features(model.encoder, test, k)
            r2.update(probe_r2(features[0], train.state, features[1], test.state, columns))
        out[arm.name] = r2
    return out


OPTIONAL_RUNS = ("frames_k", "frames_k_budget", "after_hit_effect")
"""``CompareConfig`` fields that only add or remove groups of runs: a comparison re-run with other
values of them reuses the runs it already has (each run's record says its k and hit setting)."""


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings (``compare.json`` or a benchmark's) without the fields of ``OPTIONAL_RUNS``, and each
    arm reduced to its name, kind, method and pretext runs (folder and step): a run's method config
    and metrics as recorded may gain fields with later versions without it being another run."""
    config = {k: v for k, v in settings["config"].items() if k not in OPTIONAL_RUNS}
    out = {**settings, "config": config}
    if "arms" in settings:
        out["arms"] = [
            {
                "name": arm["name"],
                "kind": arm["kind"],
                "method": arm["method"],
                "pretext_runs": [(run["path"], run["step"]) for run in arm["pretext_runs"]],
            }
            for arm in settings["arms"]
        ]
    return out


def optional_runs(config: CompareConfig) -> dict[str, Any]:
    """The values of ``OPTIONAL_RUNS`` in ``config``, as ``results.json`` records them."""
    return json.loads(json.dumps({name: getattr(config, name) for name in OPTIONAL_RUNS}))


def finished_results(out: str | Path, config: CompareConfig) -> dict[str, Any] | None:
    """``out/results.json`` when it holds a finished comparison with ``config``'s ``OPTIONAL_RUNS``
    (its other settings are checked when a comparison is run there), else None: a report made
    with other k or hit settings, or by a version that did not record them, is to be extended by
    running the comparison again, which reuses its runs."""
    path = Path(out) / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    return results if results.get("settings", {}).get("optional_runs") == optional_runs(config) else None


def _read_done(
    out: Path, settings: dict[str, Any], config: CompareConfig
) -> dict[tuple[str, int, bool, int], dict[str, Any]]:
    """The runs already recorded in ``out`` by a comparison with the same settings (but perhaps other
    ``OPTIONAL_RUNS``: a finished comparison is extended), by their key.

    Raises:
        UserError: when ``out`` holds this very comparison finished, or one with other settings.
    """
    if finished_results(out, config) is not None:
        raise UserError(f"{str(out)!r} already holds results.json of this comparison: choose another --out")
    stored = out / SETTINGS_FILE
    if not stored.is_file():
        if (out / "results.json").exists():
            raise UserError(f"{str(out)!r} holds results.json but no {SETTINGS_FILE}: choose another --out")
        return {}
    if comparable(json.loads(stored.read_text())) != comparable(json.loads(json.dumps(json_safe(settings)))):
        raise UserError(f"{str(out)!r} holds a comparison with other settings: choose another --out")
    done = {}
    if (out / RUN_LOG).is_file():
        for line in (out / RUN_LOG).read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # the line a crash cut short: that run is run again
                continue
            done[_key(record)] = record
    return done


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a run of a comparison: arm, budget, hit setting, repeat, k, search candidate."""
    return (
        record["arm"],
        record["labelled_episodes"],
        record["include_after_hit"],
        record["repeat"],
        record["context_frames"],
        record.get("search", ""),
    )


def _run_jobs(
    jobs: Sequence[ClassifierJob],
    shared: tuple[Any, ...],
    done: dict[tuple[Any, ...], dict[str, Any]],
    log_path: Path,
    backend: Backend,
    workers: int | None,
    label: str | None,
) -> None:
    """Runs the jobs as tasks, appending each record to the run log as it finishes and to ``done``."""
    with open(log_path, "a") as log:
        for _, record in run_tasks(
            run_classifier_job, jobs, backend=backend, shared=shared, workers=workers, progress=label
        ):
            log.write(json.dumps(json_safe(record)) + "\n")
            log.flush()
            done[_key(record)] = record


def _restore_nan(record: dict[str, Any]) -> dict[str, Any]:
    """A record read back from JSON, with null accuracies as NaN again (JSON has no NaN)."""

    def fix(value: Any) -> Any:
        if value is None:
            return math.nan
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    restored = {k: fix(v) if k.startswith(("accuracy", "by_")) else v for k, v in record.items()}
    restored["history"] = [{**h, "val_accuracy": fix(h["val_accuracy"])} for h in record["history"]]
    return restored


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
) -> dict[str, Any]:
    """Runs the comparison on a generated dataset and writes the report folder ``out``.

    Args:
        data: a dataset directory or shard file written by ``airhockey generate``.
        arms: ``"scratch"`` and pretext runs (folders, checkpoints or opened runs) whose encoders
            the classifiers load, or sequences of runs of one method (``ArmSource``); all runs must
            share one split of this dataset.
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
            training episodes, an unavailable device, or ``out`` holding another comparison.
    """
    from airhockey.jsonio import write_json
    from airhockey.learn.device import check_device
    from airhockey.learn.protocol.report import write_report

    check_device(config.training.device)
    out = Path(out)
    start = time.monotonic()
    arm_runs, names = open_arms(arms, reference)
    every_run = [run for runs in arm_runs for run in runs]
    prepared = ClassifierData.load(data, every_run, test_data=test_data)
    split = prepared.split
    # classifier_split checked that this is every pretext run's split: they trained on split.train.
    assert_disjoint(split.test, split.train, split.val)
    budgets = resolve_budgets(config.budgets, len(split.train))
    scratch = _scratch_spec(every_run, prepared.image_size)
    arm_list = [
        Arm(name, runs, EncoderSpec(runs[0].method.name, runs[0].method.config_dict()) if runs else scratch)
        for name, runs in zip(names, arm_runs, strict=True)
    ]
    settings = {
        "data": str(data),
        "test_data": None if test_data is None else str(test_data),
        "arms": [a.summary() for a in arm_list],
        "config": dataclasses.asdict(config),
    }
    done = _read_done(out, settings, config)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SETTINGS_FILE, settings)

    n_classes = len(prepared.label_names)
    reps = repeats(config)
    include = config.training.include_after_hit
    # (budget, include_after_hit, k): the main budgets; the largest again with the other hit
    # setting; the largest with each extra number of context frames.
    plan = [(b, include, 1) for b in budgets]
    if config.after_hit_effect:
        plan.append((budgets[-1], not include, 1))
    k_budget = budgets[-1] if config.frames_k_budget is None else config.frames_k_budget
    plan += [(k_budget, include, k) for k in config.frames_k if k != 1]
    results_runs: dict[tuple[int, bool, int], dict[str, list[dict[str, Any]]]] = {
        key: {a.name: [] for a in arm_list} for key in plan
    }
    oracle_runs: dict[tuple[int, int], dict[str, list[dict[str, Any]]]] = {}
    test_frames = prepared.frames.of_episodes(split.test)
    in_process = backend.kind == "local" and workers == 1
    shared = (
        prepared,
        [a.spec for a in arm_list],
        [[run.encoder_state() for run in a.runs] or [None] for a in arm_list],
        n_classes,
        config.hidden,
    )
    label = "runs" if progress else None
    chosen, search = _search(
        prepared, arm_list, reps, config, done, shared, out / RUN_LOG, backend, workers, label
    )
    head_search = oracle_search(prepared, reps, config)
    oracle_lr = None if head_search is None else head_search["chosen"]
    if search is not None and head_search is not None:
        search["oracle_head"] = head_search
    jobs: list[ClassifierJob] = []
    for budget, after_hit, k in plan:
        for rep in reps:
            rng = np.random.default_rng(rep.order_seed)
            if config.validation == "budget":
                labelled, val_ids = prepared.labelled_and_validation(budget, rng)
            else:
                labelled, val_ids = prepared.labelled(budget, rng), None
            for i, arm in enumerate(arm_list):
                if (arm.name, budget, after_hit, rep.index, k, "") in done:
                    continue
                base = chosen.get(arm.name) or config.arm_training(arm.kind, rep.seed, after_hit)
                training = dataclasses.replace(
                    base,
                    seed=rep.seed,
                    include_after_hit=after_hit,
                    context_frames=k,
                    select_best=val_ids is None or len(val_ids) > 0,
                )
                jobs.append(ClassifierJob.of(arm, i, rep, budget, labelled, val_ids, training, in_process))
            if config.oracle and after_hit == include:
                both = np.concatenate([labelled, val_ids if val_ids is not None else labelled[:0]])
                records = oracle_records(prepared, both, test_frames, config, rep.seed, k, oracle_lr)
                for name, record in records.items():
                    oracle_runs.setdefault((budget, k), {}).setdefault(name, []).append(record)
    _run_jobs(jobs, shared, done, out / RUN_LOG, backend, workers, label)
    for budget, after_hit, k in plan:
        for rep in reps:
            for arm in arm_list:
                record = _restore_nan(
                    json.loads(json.dumps(json_safe(done[arm.name, budget, after_hit, rep.index, k, ""])))
                )
                results_runs[budget, after_hit, k][arm.name].append(record)

    main = [results_runs[b, include, 1] for b in budgets]
    ks = sorted({1, *config.frames_k})  # the k-frame runs' k, with the k = 1 run of their budget
    has_k = len(ks) > 1
    at_k = {k: results_runs[k_budget, include, k] for k in ks} if has_k else {}
    test_episodes = len(split.test)
    ref = names[0]
    others = names[1:]
    results: dict[str, Any] = {
        "arms": names,
        "reference": ref,
        "arm_details": {a.name: a.summary() for a in arm_list},
        "threshold": THRESHOLD,
        "smoke_test": smoke_test,
        "budgets": [
            {
                "labelled_episodes": b,
                "budget": "all" if b == len(split.train) else b,
                "arms": {name: arm_summary(r[name]) for name in names},
                "paired_difference": {name: paired_difference(r[name], r[ref]) for name in others},
            }
            for b, r in zip(budgets, main, strict=True)
        ],
        "oracle": [
            {
                "labelled_episodes": b,
                **{name: arm_summary(r, keep_runs=False) for name, r in oracle_runs[b, 1].items()},
            }
            for b in budgets
            if (b, 1) in oracle_runs
        ],
        "frames_k": {
            name: {str(k): arm_summary(at_k[k][name], keep_runs=False) for k in ks} for name in names
        }
        if has_k
        else None,
        "frames_k_difference": {
            name: {str(k): paired_difference(at_k[k][name], at_k[k][ref]) for k in ks} for name in others
        }
        if has_k
        else None,
        "frames_k_budget": k_budget,
        "oracle_frames_k": {
            str(k): {name: arm_summary(r, keep_runs=False) for name, r in oracle_runs[k_budget, k].items()}
            for k in ks
            if (k_budget, k) in oracle_runs
        },
        "probes": probe_summary(prepared, arm_list, n_classes, config) if config.probes else None,
        "search": search,
        "accuracy_by_position": {
            "fraction_bin_edges": np.linspace(0.0, 1.0, FRACTION_BINS + 1).tolist(),
            "budgets": [
                {
                    "labelled_episodes": b,
                    "arms": {name: position_summary(r[name], test_episodes) for name in names},
                }
                for b, r in zip(budgets, main, strict=True)
            ],
        },
        "convergence": {
            "budgets": [
                {
                    "labelled_episodes": b,
                    "arms": {name: convergence_summary(r[name], config.training) for name in names},
                }
                for b, r in zip(budgets, main, strict=True)
            ],
        },
        "after_hit": (
            after_hit_summary(
                results_runs[budgets[-1], include, 1], results_runs[budgets[-1], not include, 1], include
            )
            if config.after_hit_effect
            else None
        ),
        "settings": {
            "budgets": budgets,
            "repeats": config.repeats,
            "seed": config.seed,
            "scratch_schedule": config.scratch_schedule,
            "training": {
                kind: dataclasses.asdict(config.arm_training(kind, config.training.seed))
                for kind in sorted({a.kind for a in arm_list})
            },
            "hidden": config.hidden,
            "include_after_hit": include,
            "optional_runs": optional_runs(config),
            "validation": config.validation,
            "validation_min_budget": VALIDATION_MIN_BUDGET,
            "bootstrap": "percentile, 2,000 resamples of the repeats (pretext runs, then their draws) "
            "and, independently, of the test episodes",
        },
        "data": {
            "path": str(data),
            "test_path": None if test_data is None else str(test_data),
            "label_names": prepared.label_names,
            "frame_size": list(prepared.image_size),
            **{f"{p}_episodes": len(getattr(split, p)) for p in ("train", "val", "test")},
            "test_episode_ids": split.test.tolist(),
        },
        "command": command,
        "seconds": round(time.monotonic() - start, 1),
    }
    write_report(results, out)
    return results
