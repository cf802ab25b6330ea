"""Shard jobs: each shard of a dataset is a pure function of the settings and the shard's index.

``plan_shards`` splits a run into jobs and ``run_shard`` does one; any executor may run the jobs,
in any order and any process, and the files come out the same. Classes are balanced by
construction: episode ``i`` of the dataset has class ``i % n_classes``, so each shard has a quota
per class, and each new attempt aims at the class furthest from its quota.
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
from airhockey.generate.records import (
    LABEL_MODES,
    EpisodeRecord,
    first_frame,
    first_lit_frame,
    label_of_button,
)
from airhockey.generate.rollout import Attempt, Policy, make_env, play_lockstep

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
        policy: the policy named by ``job.config.policy``.
        out_dir: the dataset directory.
        on_attempt: called after every finished attempt with whether it was kept.
        layout: chunking and compression of the frames.

    Returns:
        The shard's manifest entry.

    Raises:
        UserError: when the policy fails to fill a class within the attempt budget.
    """
    config = job.config
    buttons = LABEL_MODES[config.labels]
    env_kwargs = config.env_kwargs()
    envs = _envs(json.dumps(env_kwargs, sort_keys=True), config.lockstep_envs)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, job.index]))
    quotas = np.array(job.quotas)
    kept = np.zeros_like(quotas)
    in_flight = np.zeros_like(quotas)
    discards = {"no_hit": 0, "other_button": 0, "class_full": 0}
    attempts = frames = 0
    budget = MAX_ATTEMPTS_PER_EPISODE * job.episodes

    def next_attempt() -> tuple[int, int] | None:
        need = quotas - kept - in_flight
        if need.max() <= 0:
            return None
        cls = int(np.argmax(need))
        in_flight[cls] += 1
        return int(rng.integers(2**31)), buttons[cls]

    path = Path(out_dir) / job.filename
    with ShardWriter(path, layout) as writer:
        for attempt in play_lockstep(envs, policy, next_attempt, record=True):
            attempts += 1
            in_flight[buttons.index(attempt.target)] -= 1
            label = label_of_button(config.labels, attempt.hit_button)
            if label is None:
                discard = "no_hit" if attempt.hit_button < 0 else "other_button"
            elif kept[label] >= quotas[label]:
                discard = "class_full"
            else:
                discard = None
                record = _record(attempt, job.first_episode + writer.count, label)
                writer.add(record)
                frames += len(record.frames)
                kept[label] += 1
            if discard is not None:
                discards[discard] += 1
            if on_attempt is not None:
                on_attempt(discard is None)
            if (kept == quotas).all():
                break
            if attempts >= budget:
                short = [config.label_names[c] for c in np.flatnonzero(kept < quotas)]
                raise UserError(
                    f"policy {job.policy['name']!r} wrote {kept.tolist()} of {quotas.tolist()} episodes "
                    f"per class in {attempts} attempts: it rarely hits {short}; check the policy"
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
                "episodes": int(kept.sum()),
                "frames": frames,
                "class_counts": kept.astype(np.int64),
                "attempts": attempts,
                "discards": discards,
            }
        )
    return ShardEntry(
        path.name,
        job.index,
        int(kept.sum()),
        frames,
        kept.tolist(),
        attempts,
        discards,
        path.stat().st_size,
        sha256,
    )


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
        **arrays,
    )
