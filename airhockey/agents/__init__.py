"""The PPO agent (stable-baselines3): hyperparameters, training, evaluation and saved policies.

Loading a saved policy unpickles its files, which can run code: load only files you trust.
"""

from airhockey.agents.config import PPOHyperparams, load_hyperparams
from airhockey.agents.evaluate import EVAL_SEED, EvalResult, evaluate, wilson_interval
from airhockey.agents.policy import AgentPolicy, PolicyFiles, find_policy_files, load_policy, one_torch_thread
from airhockey.agents.train import TrainConfig, TrainSummary, train

__all__ = [
    "EVAL_SEED",
    "AgentPolicy",
    "EvalResult",
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
