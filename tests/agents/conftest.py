"""A tiny training run shared by the agent tests: real stable-baselines3 PPO, a few hundred steps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from airhockey.agents import PPOHyperparams, TrainConfig, TrainSummary, load_hyperparams, train

TINY_STEPS = 256


def tiny_hyperparams() -> PPOHyperparams:
    """The committed hyperparameters, shrunk to rollouts of 4 envs x 32 steps."""
    return dataclasses.replace(load_hyperparams(), n_envs=4, n_steps=32, batch_size=64, n_epochs=2)


def tiny_config(out: Path, **changes) -> TrainConfig:
    settings = {
        "out": out,
        "timesteps": TINY_STEPS,
        "workers": 1,
        "seed": 0,
        "eval_every": 128,
        "eval_episodes": 4,
        "progress_bar": False,
        "hyperparams": tiny_hyperparams(),
    }
    return TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TrainSummary:
    """A finished tiny run (seed 0, one worker); tests must not write into its folder."""
    return train(tiny_config(tmp_path_factory.mktemp("tiny") / "run"), command="pytest tiny run")
