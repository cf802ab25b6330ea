"""The arms of a comparison and its repeats.

An arm is a classifier's encoder and where its weights start: ``scratch`` (the shared encoder
from random weights, the supervised baseline with the pretrained arms' architecture),
``practitioner`` (a small CNN over the k stacked frames and their differences, from random
weights: what one would train without pretraining, ``learn.nn.stack_cnn``) or a pretext method's
runs (any registered method's encoder, through ``PretextRun``; several runs of one method spread
the repeats over them). A repeat fixes, for every budget and arm, the order its labelled subsets
are drawn in and its training seed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airhockey.errors import UserError
from airhockey.learn.config import (
    PRACTITIONER,
    SCRATCH,
    SCRATCH_TRANSFORMER,
    CompareConfig,
    EncoderConfig,
)
from airhockey.learn.downstream.classifier import EncoderSpec
from airhockey.learn.nn.stack_cnn import StackCNNConfig
from airhockey.learn.nn.transformer import VideoTransformer
from airhockey.learn.pretext.guards import file_sha256
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.protocol.results import ArmDetail, PretextRunSummary
from airhockey.records import from_json


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison: a name, and the pretext runs whose encoder it loads (none: scratch or
    the practitioner, told apart by their names).

    An arm with several pretext runs (one method and config, other seeds) spreads its repeats over
    them, repeat r loading run r mod R, and its intervals resample the runs too.
    """

    name: str
    runs: tuple[PretextRun, ...]
    spec: EncoderSpec
    """The classifier's encoder."""

    @property
    def kind(self) -> str:
        """'scratch', 'practitioner' or 'pretrained'."""
        if self.runs:
            return "pretrained"
        return PRACTITIONER if self.name == PRACTITIONER else SCRATCH

    @property
    def method(self) -> str | None:
        """The pretext method's name (None for scratch and the practitioner)."""
        return self.runs[0].method.name if self.runs else None

    def run_index(self, repeat: int) -> int:
        """Which of the arm's pretext runs repeat ``repeat`` loads (0 for scratch)."""
        return repeat % len(self.runs) if self.runs else 0

    def checkpoint_hashes(self) -> list[str | None]:
        """The SHA-256 of each pretext run's checkpoint file, what a reused run is checked against
        (``[None]`` for scratch: one entry per ``run_index``)."""
        return [file_sha256(run.path) for run in self.runs] or [None]

    def summary(self) -> dict[str, Any]:
        """What ``compare.json`` records of the arm: its pretext runs with their checkpoints' SHA-256."""
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "encoder": dataclasses.asdict(self.spec),
            "pretext_runs": [
                {**run.summary(), "sha256": sha}
                for run, sha in zip(self.runs, self.checkpoint_hashes(), strict=False)
            ],
        }

    def detail(self) -> ArmDetail:
        """What ``results.json`` records of the arm."""
        runs = tuple(from_json(PretextRunSummary, json.loads(json.dumps(r.summary()))) for r in self.runs)
        encoder = json.loads(json.dumps(dataclasses.asdict(self.spec)))
        return ArmDetail(self.name, self.kind, self.method, encoder, runs)


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


SUPERVISED = (SCRATCH, PRACTITIONER, SCRATCH_TRANSFORMER)
"""The arms without pretext runs, by name: reserved for them."""

ArmSource = str | Path | PretextRun | Sequence[str | Path | PretextRun]
"""An arm as callers name it: ``"scratch"``, ``"practitioner"``, a pretext run (folder, checkpoint or
opened), several runs of one method (a sequence, or one string of comma-separated folders)."""


def open_arms(
    arms: Sequence[ArmSource],
    reference: str = SCRATCH,
    practitioner: bool = False,
    scratch_per_backbone: bool = False,
) -> tuple[list[tuple[PretextRun, ...]], list[str]]:
    """The pretext runs of each arm (none for ``scratch`` and ``practitioner``) and unique arm names,
    the reference first.

    ``scratch`` is added when it is the reference and not among ``arms``, ``practitioner`` (after
    ``scratch``) when ``practitioner`` is true and it is not among them, ``scratch_transformer``
    (after those) when ``scratch_per_backbone`` is true and a pretext arm's encoder is the video
    transformer (``uses_transformer``). An arm given as one run is
    named after its folder, one given as a sequence of runs after their method; repeats get ``-2``...,
    and so does a pretext arm whose name would be ``scratch`` or ``practitioner``.

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
        if len(parts) == 1 and str(parts[0]) in SUPERVISED:
            name = str(parts[0])
            if name in names:
                continue
            runs: tuple[PretextRun, ...] = ()
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
        while unique in names or (runs and unique in SUPERVISED):
            unique, k = f"{name}-{k}", k + 1
        opened.append(runs)
        names.append(unique)
    if reference == SCRATCH and SCRATCH not in names:
        opened.insert(0, ())
        names.insert(0, SCRATCH)
    if practitioner and PRACTITIONER not in names:
        at = names.index(SCRATCH) + 1 if SCRATCH in names else 0
        opened.insert(at, ())
        names.insert(at, PRACTITIONER)
    transformer = any(runs and uses_transformer(runs[0]) for runs in opened)
    if scratch_per_backbone and transformer and SCRATCH_TRANSFORMER not in names:
        at = max((names.index(n) + 1 for n in (SCRATCH, PRACTITIONER) if n in names), default=0)
        opened.insert(at, ())
        names.insert(at, SCRATCH_TRANSFORMER)
    if reference not in names:
        raise UserError(f"the reference arm {reference!r} is not among the arms: {', '.join(names)}")
    i = names.index(reference)
    order = [i] + [j for j in range(len(names)) if j != i]
    return [opened[j] for j in order], [names[j] for j in order]


def build_arms(
    names: Sequence[str], arm_runs: Sequence[tuple[PretextRun, ...]], image_size: tuple[int, int]
) -> list[Arm]:
    """The arms of ``open_arms``'s names and runs, each with its classifier's encoder."""
    scratch = scratch_spec([run for runs in arm_runs for run in runs], image_size)
    practitioner = EncoderSpec.stack_cnn(StackCNNConfig(image_size=image_size))
    transformers = [runs[0] for runs in arm_runs if runs and uses_transformer(runs[0])]

    def spec(name: str, runs: tuple[PretextRun, ...]) -> EncoderSpec:
        if runs:
            return EncoderSpec(runs[0].method.name, runs[0].method.config_dict())
        if name == SCRATCH_TRANSFORMER:
            if not transformers:
                raise UserError(
                    f"the arm {SCRATCH_TRANSFORMER!r} needs a pretext arm on the video transformer"
                )
            return EncoderSpec(transformers[0].method.name, transformers[0].method.config_dict())
        return practitioner if name == PRACTITIONER else scratch

    return [Arm(name, runs, spec(name, runs)) for name, runs in zip(names, arm_runs, strict=True)]


def uses_transformer(run: PretextRun) -> bool:
    """Whether the encoder ``run``'s classifiers load is the video transformer (``VideoTransformer``)."""
    return isinstance(run.method.build_encoder(), VideoTransformer)


def scratch_spec(runs: Sequence[PretextRun], image_size: tuple[int, int]) -> EncoderSpec:
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
