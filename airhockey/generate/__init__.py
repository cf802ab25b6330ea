"""Rolling out a policy, rendering, auto-labelling, writing and reading HDF5 episode shards.

Write a dataset with ``generate(GenerateConfig(episodes=200), "data")`` (or ``airhockey generate``),
read it with ``open_shards("data")``, check it with ``verify_dataset("data")``. The layers, as in
Minari: ``records`` (the episode record and schema), ``rollout`` (playing and replaying episodes),
``jobs`` (one shard as a pure function of the settings and its index), ``hdf5`` (the file
backend), ``manifest``, ``executor`` (workers, progress, resume), ``shards`` (reading), ``checks``
(verify, inspect, preview). The on-disk layout is documented in ``docs/dataset.md``.
"""

from airhockey.generate.checks import describe_dataset, preview_episode, verify_dataset
from airhockey.generate.config import GenerateConfig
from airhockey.generate.executor import generate
from airhockey.generate.jobs import ShardEntry, ShardJob, plan_shards, run_shard
from airhockey.generate.policy import load_policy, policy_identity
from airhockey.generate.records import EpisodeRecord
from airhockey.generate.rollout import Policy, replay
from airhockey.generate.scripted import ScriptedPolicy
from airhockey.generate.shards import Episode, EpisodeShards, open_shards

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
