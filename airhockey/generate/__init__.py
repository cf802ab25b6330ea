"""Rolling out a policy, rendering, auto-labelling, writing and reading HDF5 episode shards.

Write a dataset with ``generate(GenerateConfig(episodes=200), "data")`` (or ``airhockey generate``),
read it with ``open_shards("data")``, check it with ``verify_dataset("data")``. The layers, as in
Minari: ``records`` (the episode record and schema), ``rollout`` (playing and replaying episodes),
``jobs`` (one shard as a pure function of the settings and its index), ``hdf5`` (the file
backend), ``manifest``, ``executor`` (workers, progress, resume), ``shards`` (reading), ``checks``
(verify, inspect, preview). The on-disk layout is documented in ``docs/dataset.md``.

The names below are imported on first use, so that ``airhockey.generate.config`` (what the
command line reads its defaults from) loads without MuJoCo and h5py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airhockey.generate.checks import describe_dataset, preview_episode, verify_dataset
    from airhockey.generate.config import GenerateConfig
    from airhockey.generate.executor import generate
    from airhockey.generate.jobs import ShardEntry, ShardJob, plan_shards, run_shard
    from airhockey.generate.policy import load_policy, policy_identity
    from airhockey.generate.records import EpisodeRecord
    from airhockey.generate.rollout import Policy, replay
    from airhockey.generate.scripted import ScriptedPolicy
    from airhockey.generate.shards import Episode, EpisodeShards, open_shards

_HOMES = {
    "describe_dataset": "checks",
    "preview_episode": "checks",
    "verify_dataset": "checks",
    "GenerateConfig": "config",
    "generate": "executor",
    "ShardEntry": "jobs",
    "ShardJob": "jobs",
    "plan_shards": "jobs",
    "run_shard": "jobs",
    "load_policy": "policy",
    "policy_identity": "policy",
    "EpisodeRecord": "records",
    "Policy": "rollout",
    "replay": "rollout",
    "ScriptedPolicy": "scripted",
    "Episode": "shards",
    "EpisodeShards": "shards",
    "open_shards": "shards",
}
__all__ = [
    "Episode",
    "EpisodeRecord",
    "EpisodeShards",
    "GenerateConfig",
    "Policy",
    "ScriptedPolicy",
    "ShardEntry",
    "ShardJob",
    "describe_dataset",
    "generate",
    "load_policy",
    "open_shards",
    "plan_shards",
    "policy_identity",
    "preview_episode",
    "replay",
    "run_shard",
    "verify_dataset",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
