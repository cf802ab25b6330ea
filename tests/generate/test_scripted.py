"""The scripted baseline controller: the predict interface, and that it mostly hits its target."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import airhockey
from airhockey.generate import ScriptedPolicy


def test_predict_takes_one_observation_or_a_batch_and_is_deterministic():
    policy = ScriptedPolicy()
    env = gym.make(airhockey.ENV_ID)
    batch = np.stack([env.reset(seed=s)[0] for s in range(5)])  # (5, 13)
    actions, state = policy.predict(batch, deterministic=True)
    assert actions.shape == (5, 2) and actions.dtype == np.float32 and state is None
    assert np.abs(actions).max() <= 1.0
    single, _ = policy.predict(batch[2])
    np.testing.assert_array_equal(single, actions[2])
    np.testing.assert_array_equal(policy.predict(batch)[0], actions)


@pytest.mark.parametrize("targets", ["leftright", "all"])
def test_it_hits_the_target_button_in_most_episodes(targets):
    policy = ScriptedPolicy()
    env = gym.make(airhockey.ENV_ID, target_buttons=targets)
    hits = 0
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.predict(obs)[0])
            done = terminated or truncated
        hits += info["is_success"]
    assert hits >= 34, f"{hits} of 40"
