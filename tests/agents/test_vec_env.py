"""ParallelVecEnv against stable-baselines3's DummyVecEnv: same steps, same attributes, any split."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from airhockey.agents.vec_env import SB3_INFO_KEYS, ParallelVecEnv, env_fns


@pytest.fixture(scope="module")
def split_venv():
    """Five environments over two processes: two stepped here, three in a worker."""
    venv = ParallelVecEnv(env_fns(5, "all"), workers=2)
    yield venv
    venv.close()


def test_steps_match_dummy_vec_env_across_auto_resets(split_venv):
    reference = DummyVecEnv(env_fns(5, "all"))
    for venv in (split_venv, reference):
        venv.seed(123)
    obs, ref_obs = split_venv.reset(), reference.reset()
    np.testing.assert_array_equal(obs, ref_obs)
    actions = np.random.default_rng(0).uniform(-1, 1, (200, 5, 2)).astype(np.float32)
    dones = 0
    for action in actions:
        obs, rewards, done, infos = split_venv.step(action)
        ref_obs, ref_rewards, ref_done, ref_infos = reference.step(action)
        np.testing.assert_array_equal(obs, ref_obs)
        np.testing.assert_array_equal(rewards, ref_rewards)
        np.testing.assert_array_equal(done, ref_done)
        assert [i["hit_button"] for i in infos] == [i["hit_button"] for i in ref_infos]
        dones += int(done.sum())
    assert dones > 0, "the steps should cross auto-resets"
    assert [i["target"] for i in split_venv.reset_infos] == [i["target"] for i in reference.reset_infos]


def test_info_keys_keep_only_what_ppo_reads_in_every_group_with_spinning_pipes():
    full = DummyVecEnv(env_fns(3, "leftright"))
    slim = ParallelVecEnv(env_fns(3, "leftright"), workers=2, info_keys=SB3_INFO_KEYS, spin=1e-3)
    try:
        for venv in (full, slim):
            venv.seed(5)
            venv.reset()
        episodes = 0
        for action in np.random.default_rng(1).uniform(-1, 1, (120, 3, 2)).astype(np.float32):
            obs, _, _, infos = slim.step(action)
            ref_obs, _, _, ref_infos = full.step(action)
            np.testing.assert_array_equal(obs, ref_obs)
            for info, ref in zip(infos, ref_infos, strict=True):
                assert info.keys() == {k for k in SB3_INFO_KEYS if k in ref}
                assert info["is_success"] == ref["is_success"]
                if "episode" in ref:
                    episodes += 1
                    assert info["episode"]["r"] == ref["episode"]["r"]
                    np.testing.assert_array_equal(info["terminal_observation"], ref["terminal_observation"])
        assert episodes > 0, "the steps should end episodes in both groups"
    finally:
        slim.close()


def test_attributes_and_methods_reach_the_right_environments(split_venv):
    assert split_venv.get_attr("target_buttons") == [(0, 1, 2, 3, 4)] * 5
    split_venv.set_attr("marker", "x", indices=[1, 3])
    assert split_venv.get_attr("marker", indices=[1, 3]) == ["x", "x"]
    assert split_venv.env_is_wrapped(Monitor) == [True] * 5
    targets = split_venv.env_method("reset", seed=7, options={"target": 2}, indices=[0, 4])
    assert [info["target"] for _, info in targets] == [2, 2]
    with pytest.raises(AttributeError):
        split_venv.env_method("no_such_method", indices=[4])  # raised in the worker, re-raised here


def test_workers_must_fit_the_environments():
    with pytest.raises(ValueError, match="workers must be between 1 and the number of envs"):
        ParallelVecEnv(env_fns(2, "leftright"), workers=3)
