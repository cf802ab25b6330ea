"""The label-efficiency comparison (seed 000 section 6, protocol of seed 004 sections 3.3-3.4).

For each label budget (a number of labelled training episodes) and each repeat (a different,
class-balanced subset of episodes and a different seed), the self-supervised arm (encoder from the
pretext run, frozen then fine-tuned) and the supervised arm (the same model and schedule from random
weights) are trained on the same frames with the same seed, and tested on the same held-out
episodes, which the pretext run never read either. ``compare`` aggregates the runs:

- accuracy per budget and arm: mean over repeats with a 95% t interval, and the paired difference
  (self-supervised minus supervised, repeat by repeat);
- accuracy by position in the episode (fraction of the time to the hit, frames before the hit) and
  the earliest position from which accuracy stays at or above the threshold (90%);
- convergence: validation accuracy against epochs and training seconds, and epochs to 90%;
- the effect of frames with a lit button: the largest budget run again with the other setting.

``compare_on_dataset`` runs it all and writes the report folder (see ``learn.report``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from airhockey.errors import UserError
from airhockey.learn.classifier import ClassifierConfig
from airhockey.learn.classify import FRACTION_BINS, ClassifyConfig, json_safe, run_arm
from airhockey.learn.labelled import ClassifierData, assert_disjoint, run_folder
from airhockey.learn.stats import mean_ci

ARMS = ("self_supervised", "supervised")
"""The two arms, in the order results list them."""
THRESHOLD = 0.9
"""The accuracy that 'converged' and 'enough frames' refer to."""
SCRATCH_SCHEDULES = ("same", "unfrozen")
RUN_LOG = "runs.jsonl"
"""In the report folder: each run's record, one JSON line each, written as the run finishes."""


@dataclass(frozen=True)
class CompareConfig:
    """Settings of the comparison (the schedule of every run is ``training``)."""

    budgets: tuple[int | None, ...] = (4, 16, 64, None)
    """Labelled training episodes per run, smallest first; None stands for all of them."""
    repeats: int = 3
    """Runs per budget and arm, each on another labelled subset with another seed."""
    training: ClassifyConfig = field(default_factory=ClassifyConfig)
    """The schedule of both arms (its ``seed`` is replaced by each repeat's)."""
    hidden: int = ClassifierConfig.hidden
    """Units of the classifier's hidden layer."""
    scratch_schedule: str = "same"
    """'same': the supervised arm runs the self-supervised arm's schedule exactly (its random
    encoder frozen, then at ``encoder_lr``); 'unfrozen': its encoder trains from the first epoch
    at ``lr``, as one would train a model from scratch."""
    after_hit_effect: bool = True
    """Run the largest budget again with the other ``include_after_hit`` setting."""
    seed: int = 0
    """Root of the subsets' and runs' seeds."""

    def __post_init__(self) -> None:
        if self.repeats < 2:
            raise ValueError(f"repeats must be at least 2 for an interval, got {self.repeats}")
        if not self.budgets or any(b is not None and b < 1 for b in self.budgets):
            raise ValueError(
                f"budgets must be positive numbers of episodes or None (all), got {self.budgets}"
            )
        if self.scratch_schedule not in SCRATCH_SCHEDULES:
            raise ValueError(
                f"scratch_schedule must be one of {SCRATCH_SCHEDULES}, got {self.scratch_schedule!r}"
            )

    def arm_training(self, arm: str, seed: int, include_after_hit: bool | None = None) -> ClassifyConfig:
        """The schedule of one run of ``arm`` with ``seed``, by default with ``training``'s hit setting."""
        training = dataclasses.replace(
            self.training,
            seed=seed,
            include_after_hit=self.training.include_after_hit
            if include_after_hit is None
            else include_after_hit,
        )
        if arm == "supervised" and self.scratch_schedule == "unfrozen":
            training = dataclasses.replace(training, freeze_epochs=0, encoder_lr=training.lr)
        return training


def parse_budgets(text: str) -> tuple[int | None, ...]:
    """``"4,16,64,all"`` -> ``(4, 16, 64, None)``.

    Raises:
        UserError: for anything but positive integers and ``all``.
    """
    budgets: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "all":
            budgets.append(None)
        elif part.isdigit() and int(part) > 0:
            budgets.append(int(part))
        else:
            raise UserError(f"budgets must be positive integers or 'all', separated by commas; got {text!r}")
    return tuple(budgets)


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
    mean, ci = mean_ci(values)
    return {"mean": mean, "ci95": ci}


def _curve(rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Mean and 95% interval, position by position, of equally long curves (one per run)."""
    stats = [mean_ci(column) for column in zip(*rows, strict=True)]
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
        "earliest_fraction_90": earliest_fraction(by_fraction["accuracy_mean"]),
        "by_frames_before_hit": {
            "frames_before_hit": list(range(1, longest + 1)),
            **by_k,
            "episodes": counts[:longest],
        },
        "most_frames_before_hit_90": most_frames_before_hit(by_k["accuracy_mean"]),
    }


def convergence_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Validation accuracy by epoch and training seconds, and epochs and seconds to ``THRESHOLD``."""
    histories = [r["history"] for r in runs]
    curve = _curve([[h["val_accuracy"] for h in hist] for hist in histories])
    epochs = [_first_reaching(h, "epoch") for h in histories]
    seconds = [_first_reaching(h, "elapsed_s") for h in histories]
    return {
        "epochs": [h["epoch"] for h in histories[0]],
        "encoder_frozen": [h["encoder_frozen"] for h in histories[0]],
        "val_accuracy_mean": curve["accuracy_mean"],
        "val_accuracy_ci95": curve["accuracy_ci95"],
        "elapsed_s_mean": [
            float(np.mean(col))
            for col in zip(*[[h["elapsed_s"] for h in hist] for hist in histories], strict=True)
        ],
        "epochs_to_90": epochs,
        "epochs_to_90_mean": mean_ci(epochs)[0],
        "seconds_to_90_mean": mean_ci(seconds)[0],
        "runs_reaching_90": sum(not math.isnan(e) for e in epochs),
        "runs": len(runs),
    }


def arm_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean accuracy with its 95% interval over the runs, and the runs themselves."""
    mean, ci = mean_ci([r["accuracy"] for r in runs])
    return {"accuracy_mean": mean, "accuracy_ci95": ci, "runs": list(runs)}


def paired_difference(ssl: Sequence[dict[str, Any]], sup: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Self-supervised minus supervised accuracy, repeat by repeat (same subset, same seed)."""
    diffs = [a["accuracy"] - b["accuracy"] for a, b in zip(ssl, sup, strict=True)]
    return {
        **_summary(diffs),
        "per_repeat": diffs,
        "self_supervised_wins": sum(d > 0 for d in diffs),
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
    return {
        "labelled_episodes": default[ARMS[0]][0]["labelled_episodes"],
        "included_by_default": included_by_default,
        **{
            setting: {arm: {k: _summary([r[k] for r in runs[arm]]) for k in keys} for arm in ARMS}
            for setting, runs in settings.items()
        },
    }


def compare_on_dataset(
    data: str | Path,
    pretext: str | Path,
    out: str | Path,
    config: CompareConfig,
    *,
    progress: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Runs the comparison on a generated dataset and writes the report folder ``out``.

    Args:
        data: a dataset directory or shard file written by ``airhockey generate``.
        pretext: the pretext run (folder or checkpoint) whose encoder the self-supervised arm loads,
            and whose split (and model sizes) both arms use.
        out: the report folder: ``results.json``, the plots and ``report.md``.
        config: the protocol and the schedule.
        progress: show progress bars.
        command: the command line, recorded in ``results.json``.

    Returns:
        What ``results.json`` holds.

    Raises:
        UserError: a missing or mismatched dataset or pretext run, a budget above the number of
            training episodes, or an unavailable device.
    """
    from tqdm import tqdm

    from airhockey.learn.pretext import check_device
    from airhockey.learn.report import write_report

    check_device(config.training.device)
    out = Path(out)
    if (out / "results.json").exists():
        raise UserError(f"{str(out)!r} already holds results.json: choose another --out")
    start = time.monotonic()
    prepared = ClassifierData.load(data, pretext)
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_LOG).write_text("")
    split = prepared.split
    # classifier_split checked that this is the pretext run's split: it trained on split.train.
    assert_disjoint(split.test, split.train, split.val)
    budgets = resolve_budgets(config.budgets, len(split.train))
    model_config = ClassifierConfig(prepared.encoder, len(prepared.label_names), config.hidden)
    reps = repeats(config)
    include = config.training.include_after_hit
    plan = [(b, include) for b in budgets]
    if config.after_hit_effect:
        plan.append((budgets[-1], not include))
    runs: dict[tuple[int, bool], dict[str, list[dict[str, Any]]]] = {
        key: {arm: [] for arm in ARMS} for key in plan
    }
    bar = tqdm(total=len(plan) * len(reps) * len(ARMS), desc="runs", disable=not progress)
    for budget, after_hit in plan:
        for rep in reps:
            labelled = prepared.labelled(budget, np.random.default_rng(rep.order_seed))
            for arm in ARMS:
                _, record = run_arm(
                    prepared,
                    labelled,
                    config.arm_training(arm, rep.seed, after_hit),
                    model_config,
                    pretext if arm == "self_supervised" else None,
                    progress=progress,
                    desc=f"{arm} {budget} ep, repeat {rep.index + 1}",
                )
                record = {"arm": arm, "repeat": rep.index, "include_after_hit": after_hit, **record}
                runs[budget, after_hit][arm].append(record)
                with open(out / RUN_LOG, "a") as f:
                    f.write(json.dumps(json_safe(record)) + "\n")
                bar.set_postfix(accuracy=f"{record['accuracy']:.3f}")
                bar.update()
    bar.close()

    main = [runs[b, include] for b in budgets]
    test_episodes = len(split.test)
    results: dict[str, Any] = {
        "budgets": [
            {
                "labelled_episodes": b,
                "budget": "all" if b == len(split.train) else b,
                **{arm: arm_summary(r[arm]) for arm in ARMS},
                "paired_difference": paired_difference(r[ARMS[0]], r[ARMS[1]]),
            }
            for b, r in zip(budgets, main, strict=True)
        ],
        "accuracy_by_position": {
            "threshold": THRESHOLD,
            "fraction_bin_edges": np.linspace(0.0, 1.0, FRACTION_BINS + 1).tolist(),
            "budgets": [
                {"labelled_episodes": b, **{arm: position_summary(r[arm], test_episodes) for arm in ARMS}}
                for b, r in zip(budgets, main, strict=True)
            ],
        },
        "convergence": {
            "threshold": THRESHOLD,
            "budgets": [
                {"labelled_episodes": b, **{arm: convergence_summary(r[arm]) for arm in ARMS}}
                for b, r in zip(budgets, main, strict=True)
            ],
        },
        "after_hit": (
            after_hit_summary(runs[budgets[-1], include], runs[budgets[-1], not include], include)
            if config.after_hit_effect
            else None
        ),
        "settings": {
            "budgets": budgets,
            "repeats": config.repeats,
            "seed": config.seed,
            "scratch_schedule": config.scratch_schedule,
            "training": {
                arm: dataclasses.asdict(config.arm_training(arm, config.training.seed)) for arm in ARMS
            },
            "model": model_config.to_dict(),
            "include_after_hit": include,
        },
        "data": {
            "path": str(data),
            "label_names": prepared.label_names,
            "frame_size": list(prepared.encoder.image_size),
            **{f"{p}_episodes": len(getattr(split, p)) for p in ("train", "val", "test")},
            "test_episode_ids": split.test.tolist(),
        },
        "pretext": _pretext_summary(pretext),
        "command": command,
        "seconds": round(time.monotonic() - start, 1),
    }
    write_report(results, out)
    return results


def _pretext_summary(pretext: str | Path) -> dict[str, Any]:
    """The pretext run's path and, where it has one, its ``metrics.json``."""
    metrics = run_folder(pretext) / "metrics.json"
    return {
        "path": str(pretext),
        "metrics": json.loads(metrics.read_text()) if metrics.is_file() else None,
    }
