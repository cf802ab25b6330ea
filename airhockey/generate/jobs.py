"""Shard jobs: each shard of a dataset is a pure function of the settings and the shard's index.

``plan_shards`` splits a run into jobs and ``run_shard`` does one; any executor may run the jobs,
in any order and any process, and the files come out the same. Classes are balanced by
construction: episode ``i`` of the dataset has class ``i % n_classes``, so each shard has a quota
per class, and each new attempt aims at the class furthest from its quota. With a policy mix, an
attempt's policy is chosen from its reset seed (``policy.mix_choice``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import airhockey
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.generate.hdf5 import FRAME_LAYOUT, FrameLayout, ShardWriter
from airhockey.generate.policy import load_policies, mix_choice
from airhockey.generate.records import (
    LABEL_MODES,
    EpisodeRecord,
    first_frame,
    first_lit_frame,
    flat_factors,
    label_of_button,
)
from airhockey.generate.rollout import Attempt, AttemptPlan, Policy, make_env, play_lockstep

MAX_ATTEMPTS_PER_EPISODE = 20
"""A shard job gives up, naming the class it cannot fill, after this many attempts per episode."""


@dataclass(frozen=True)
class ShardJob:
    """One shard's work: everything ``run_shard`` needs besides the policy object."""

    config: GenerateConfig
    """The run's settings."""
    policy: dict[str, str] = field(hash=False)
    """Identity of the policy (name, sha256), stored in the shard."""
    index: int = 0
    """The shard's index."""
    first_episode: int = 0
    """Dataset-wide index of the shard's first episode."""
    quotas: tuple[int, ...] = ()
    """Episodes of each class the shard holds."""

    @property
    def episodes(self) -> int:
        """Episodes in the shard."""
        return sum(self.quotas)

    @property
    def filename(self) -> str:
        """The shard's file name in the output directory."""
        return shard_filename(self.index)


@dataclass
class ShardEntry:
    """What the manifest records of a finished shard."""

    file: str
    """The shard's file name."""
    index: int
    """The shard's index."""
    episodes: int
    """Episodes written."""
    frames: int
    """Frames written, all episodes together."""
    class_counts: list[int]
    """Episodes of each class."""
    attempts: int
    """Episodes played to fill the shard, kept or not."""
    discards: dict[str, int]
    """Attempts not kept, by reason: ``no_hit``, ``other_button``, ``class_full``."""
    bytes: int
    """Size of the file."""
    sha256: str
    """Hex SHA-256 of the file."""

    def to_dict(self) -> dict[str, Any]:
        """The fields, for JSON."""
        return asdict(self)


def shard_filename(index: int) -> str:
    """File name of the index-th shard."""
    return f"shard-{index:05d}.h5"


def plan_shards(config: GenerateConfig, policy: dict[str, str]) -> list[ShardJob]:
    """Splits a run into shard jobs of ``config.shard_size`` episodes (the last may be smaller).

    Args:
        config: the run's settings.
        policy: the policy's identity, as from ``policy_identity``.
    """
    n_classes = len(config.label_names)
    jobs = []
    for index in range(config.num_shards):
        start = index * config.shard_size
        stop = min(config.episodes, start + config.shard_size)
        classes = np.arange(start, stop) % n_classes
        quotas = tuple(int(q) for q in np.bincount(classes, minlength=n_classes))
        jobs.append(ShardJob(config, policy, index, start, quotas))
    return jobs


@functools.lru_cache(maxsize=2)
def _envs(env_kwargs_json: str, n: int) -> list[gym.Env]:
    """Per process: ``n`` rendering envs that play in lockstep (they share one GL context)."""
    return [make_env(json.loads(env_kwargs_json)) for _ in range(n)]


class _ClassQuotas:
    """The classes of a shard job's attempts and what became of them.

    Each new attempt aims at the class furthest from its quota (counting attempts still being
    played), with the next seed of the job's generator; a finished attempt is kept while its
    class is short, or counted as a discard by reason.
    """

    def __init__(self, job: ShardJob) -> None:
        self.labels = job.config.labels
        self.buttons = LABEL_MODES[self.labels]
        self.n_policies = len(job.config.policies)
        self.rng = np.random.default_rng(np.random.SeedSequence([job.config.seed, job.index]))
        self.quotas = np.array(job.quotas)
        self.kept = np.zeros_like(self.quotas)
        """Episodes kept of each class."""
        self.in_flight = np.zeros_like(self.quotas)
        """Attempts being played, by the class they aim at."""
        self.discards = {"no_hit": 0, "other_button": 0, "class_full": 0}
        self.attempts = 0
        """Attempts finished."""

    def next_attempt(self) -> AttemptPlan | None:
        """The next attempt's reset seed, target button and policy, or None when the attempts
        being played can fill every quota."""
        need = self.quotas - self.kept - self.in_flight
        if need.max() <= 0:
            return None
        cls = int(np.argmax(need))
        self.in_flight[cls] += 1
        seed = int(self.rng.integers(2**31))
        return AttemptPlan(seed, self.buttons[cls], mix_choice(seed, self.n_policies))

    def finish(self, attempt: Attempt) -> int | None:
        """Counts a finished attempt: the label to keep it under, or None for a discard."""
        self.attempts += 1
        self.in_flight[self.buttons.index(attempt.target)] -= 1
        label = label_of_button(self.labels, attempt.hit_button)
        if label is None:
            self.discards["no_hit" if attempt.hit_button < 0 else "other_button"] += 1
        elif self.kept[label] >= self.quotas[label]:
            self.discards["class_full"] += 1
            label = None
        else:
            self.kept[label] += 1
        return label

    @property
    def full(self) -> bool:
        """Whether every class has its quota."""
        return bool((self.kept == self.quotas).all())


def run_shard(
    job: ShardJob,
    policy: Policy,
    out_dir: Path,
    on_attempt: Callable[[bool], None] | None = None,
    layout: FrameLayout = FRAME_LAYOUT,
) -> ShardEntry:
    """Plays, labels, renders and writes one shard; the file appears only when complete.

    Attempt ``k`` of the shard resets with the k-th seed drawn from
    ``SeedSequence([config.seed, job.index])``.

    Args:
        job: the shard's job.
        policy: the policy named by ``job.config.policy`` (the other policies of a mix are loaded
            here, once per process).
        out_dir: the dataset directory.
        on_attempt: called after every finished attempt with whether it was kept.
        layout: chunking and compression of the frames.

    Returns:
        The shard's manifest entry.

    Raises:
        UserError: when the policy fails to fill a class within the attempt budget.
    """
    config = job.config
    env_kwargs = config.env_kwargs()
    envs = _envs(json.dumps(env_kwargs, sort_keys=True), config.lockstep_envs)
    policies = _policies(config.policies, config.policy, policy)
    quotas = _ClassQuotas(job)
    budget = MAX_ATTEMPTS_PER_EPISODE * job.episodes
    frames = 0
    path = Path(out_dir) / job.filename
    with ShardWriter(path, layout) as writer:
        for attempt in play_lockstep(envs, policies, quotas.next_attempt, record=True):
            label = quotas.finish(attempt)
            if label is not None:
                record = _record(attempt, job.first_episode + writer.count, label)
                writer.add(record)
                frames += len(record.frames)
            if on_attempt is not None:
                on_attempt(label is not None)
            if quotas.full:
                break
            if quotas.attempts >= budget:
                short = [config.label_names[c] for c in np.flatnonzero(quotas.kept < quotas.quotas)]
                raise UserError(
                    f"policy {job.policy['name']!r} wrote {quotas.kept.tolist()} of {list(job.quotas)} "
                    f"episodes per class in {quotas.attempts} attempts: it rarely hits {short}; "
                    "check the policy"
                )
        sha256 = writer.finish(
            {
                "package_version": airhockey.__version__,
                "env_id": airhockey.ENV_ID,
                "env_kwargs": env_kwargs,
                "policy": job.policy,
                "generator_seed": config.seed,
                "config": config.to_dict(),
                "shard_index": job.index,
                "first_episode": job.first_episode,
                "label_names": list(config.label_names),
                "episodes": int(quotas.kept.sum()),
                "frames": frames,
                "class_counts": quotas.kept.astype(np.int64),
                "attempts": quotas.attempts,
                "discards": quotas.discards,
            }
        )
    return ShardEntry(
        path.name,
        job.index,
        int(quotas.kept.sum()),
        frames,
        quotas.kept.tolist(),
        quotas.attempts,
        quotas.discards,
        path.stat().st_size,
        sha256,
    )


def _policies(specs: tuple[str, ...], spec: str, policy: Policy) -> list[Policy]:
    """The policies of ``specs``, ``policy`` for ``spec`` and the others loaded once per process."""
    if specs == (spec,):
        return [policy]
    if _LOADED.get("specs") != (specs, spec) or _LOADED.get("base") is not policy:
        _LOADED.update(specs=(specs, spec), base=policy, policies=load_policies(specs, {spec: policy}))
    return _LOADED["policies"]


_LOADED: dict[str, Any] = {}
"""Per process: the policies of the last mix loaded, and what they were loaded for."""


def _record(attempt: Attempt, episode_id: int, label: int) -> EpisodeRecord:
    """A kept attempt, recorded as it was played, as an episode record."""
    arrays = attempt.arrays
    hit_frame, lit_button = first_lit_frame(arrays["buttons_lit"])
    if lit_button != attempt.hit_button:
        raise RuntimeError(f"seed {attempt.seed}: button {lit_button} lit, but {attempt.hit_button} was hit")
    return EpisodeRecord(
        id=episode_id,
        seed=attempt.seed,
        target=attempt.target,
        hit_button=attempt.hit_button,
        hit_frame=hit_frame,
        strike_frame=first_frame(arrays["bar_contact"]),
        label=label,
        actions=attempt.actions,
        policy=attempt.policy,
        layout=attempt.layout,
        factors=flat_factors(attempt.factors),
        **arrays,
    )
