"""The PPO agent (stable-baselines3): hyperparameters, training, evaluation and saved policies.

Loading a saved policy unpickles its files, which can run code: load only files you trust.

The names below are imported on first use, so that ``airhockey.agents.files`` and
``airhockey.agents.actor`` (what dataset generation needs) load without torch and
stable-baselines3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airhockey.agents.actor import MLPActor
    from airhockey.agents.config import PPOHyperparams, load_hyperparams
    from airhockey.agents.evaluation import EVAL_SEED, EvalResult, evaluate, wilson_interval
    from airhockey.agents.files import PolicyFiles, find_policy_files
    from airhockey.agents.policy import AgentPolicy, load_policy, one_torch_thread
    from airhockey.agents.training import TrainConfig, TrainSummary, train

_HOMES = {
    "MLPActor": "actor",
    "PPOHyperparams": "config",
    "load_hyperparams": "config",
    "EVAL_SEED": "evaluation",
    "EvalResult": "evaluation",
    "evaluate": "evaluation",
    "wilson_interval": "evaluation",
    "PolicyFiles": "files",
    "find_policy_files": "files",
    "AgentPolicy": "policy",
    "load_policy": "policy",
    "one_torch_thread": "policy",
    "TrainConfig": "training",
    "TrainSummary": "training",
    "train": "training",
}
__all__ = [
    "EVAL_SEED",
    "AgentPolicy",
    "EvalResult",
    "MLPActor",
    "PPOHyperparams",
    "PolicyFiles",
    "TrainConfig",
    "TrainSummary",
    "evaluate",
    "find_policy_files",
    "load_hyperparams",
    "load_policy",
    "one_torch_thread",
    "train",
    "wilson_interval",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
