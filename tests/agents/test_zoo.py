"""rl-baselines3-zoo, the real one: it trains with the committed hyperparameter file as it is, and
its run folder loads with ``--policy`` as it is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import airhockey
from airhockey.agents.config import HYPERPARAMS_PATH
from airhockey.cli import app

pytest.importorskip("rl_zoo3")


def test_the_zoo_trains_with_the_committed_file_and_its_run_loads_with_policy(tmp_path):
    # The file as committed; the zoo's own --hyperparams shrinks the rollouts to a few hundred steps.
    command = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        "ppo",
        "--env",
        airhockey.ENV_ID,
        "--gym-packages",
        "airhockey",
        "--conf-file",
        str(HYPERPARAMS_PATH),
        "-n",
        "256",
        "--seed",
        "0",
        "-f",
        str(tmp_path / "logs"),
        "--hyperparams",
        "n_envs:2",
        "n_steps:64",
        "batch_size:64",
        "n_epochs:1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "logs" / "ppo" / f"{airhockey.ENV_ID}_1"
    assert (run / f"{airhockey.ENV_ID}.zip").is_file()
    assert (run / airhockey.ENV_ID / "vecnormalize.pkl").is_file()  # the zoo's layout, not renamed

    result = CliRunner().invoke(app, ["agent", "eval", "--policy", str(run), "--episodes", "2"])
    assert result.exit_code == 0, result.output
    assert f"{airhockey.ENV_ID}.zip" in result.output and "episodes:        2" in result.output
