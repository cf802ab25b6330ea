"""Task presets and button layouts: the presets' settings, the override rule, disjoint layouts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import airhockey
from airhockey.envs.layouts import BUTTON_HALF_WIDTH, LAYOUT_TABLE, MAX_X, MIN_GAP, split_indices
from airhockey.errors import UserError
from airhockey.generate import GenerateConfig
from airhockey.tasks import MID_NUISANCES, TASKS, get_task


def test_an_unknown_task_is_a_one_line_error_naming_the_known_ones():
    with pytest.raises(UserError, match=r"unknown task 'nope': use one of leftright, buttons5") as err:
        get_task("nope")
    assert "\n" not in str(err.value)


def test_leftright_gives_the_default_settings_plus_its_name():
    config = TASKS["leftright"].generate_config(8, 3)
    default = GenerateConfig(8, 3)
    assert (config.task, config.task_version) == ("leftright", TASKS["leftright"].version)
    assert config.to_dict() == {**default.to_dict(), "task": "leftright", "task_version": 1}
    assert config.env_kwargs() == default.env_kwargs()


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_preset_makes_a_valid_config_for_both_splits(name):
    task = TASKS[name]
    train, test = (task.generate_config(10, 0, split) for split in ("train", "test"))
    assert train.labels == task.labels and train.nuisances == task.nuisances
    assert train.policies == (task.policy_mix or (train.policy,))
    if task.heldout_layouts:
        assert (train.layouts, test.layouts) == ("train", "test")
        assert train.env_kwargs()["layout"] == "train"
    else:
        assert train == test and train.layouts == "fixed" and "layout" not in train.env_kwargs()
    assert GenerateConfig(**train.to_dict()) == train  # as a manifest reads it back


def test_the_hard_presets_draw_every_nuisance_and_mix_three_policies():
    for name in ("leftright_hard", "buttons5_hard"):
        config = TASKS[name].generate_config(10)
        assert config.nuisances == MID_NUISANCES and config.env_kwargs()["nuisances"]["distractors"] == 2
        assert len(config.policy_mix) == 3 and any(p.startswith("noisy:") for p in config.policy_mix)


def test_an_override_that_repeats_the_preset_is_accepted_and_one_that_contradicts_it_is_refused():
    task = TASKS["buttons5"]
    assert task.generate_config(5, labels="all", policy="scripted", width=32).width == 32
    with pytest.raises(
        UserError, match=r"labels='leftright' contradicts task 'buttons5', which sets labels='all'"
    ):
        task.generate_config(5, labels="leftright")
    with pytest.raises(UserError, match=r"split must be one of"):
        task.generate_config(5, split="validation")


def test_the_layout_table_keeps_five_ordered_non_overlapping_buttons_inside_the_rims():
    gaps = np.diff(LAYOUT_TABLE, axis=1) - 2 * BUTTON_HALF_WIDTH
    assert gaps.min() >= MIN_GAP - 1e-9 and np.abs(LAYOUT_TABLE).max() <= MAX_X + 1e-9
    assert len({tuple(row) for row in LAYOUT_TABLE}) == len(LAYOUT_TABLE)
    train, test = split_indices("train"), split_indices("test")
    assert not set(train) & set(test) and len(train) + len(test) == len(LAYOUT_TABLE)


def test_train_and_test_envs_draw_disjoint_layouts_over_many_seeds_and_move_the_buttons():
    drawn = {}
    for split in ("train", "test"):
        env = gym.make(airhockey.ENV_ID, layout=split).unwrapped
        drawn[split] = set()
        for seed in range(300):
            env.reset(seed=seed)
            drawn[split].add(tuple(env.button_x))
            np.testing.assert_array_equal(env.button_x, LAYOUT_TABLE[env.layout_index])
            geom = env.model.geom("button2").id
            assert env.data.geom_xpos[geom, 0] == pytest.approx(env.button_x[2])
        env.close()
    assert len(drawn["train"]) > 20 and len(drawn["test"]) > 20
    assert not drawn["train"] & drawn["test"]


def test_an_env_without_a_layout_keeps_the_mjcf_buttons_and_the_same_start():
    plain = gym.make(airhockey.ENV_ID).unwrapped
    moved = gym.make(airhockey.ENV_ID, layout="test").unwrapped
    for seed in range(5):
        a, _ = plain.reset(seed=seed)
        b, _ = moved.reset(seed=seed)
        np.testing.assert_array_equal(a, b)  # the layout is drawn after the start
        assert plain.layout_index == -1 and list(plain.button_x) == [-0.36, -0.18, 0.0, 0.18, 0.36]
    with pytest.raises(ValueError, match="layout must be one of"):
        gym.make(airhockey.ENV_ID, layout="elsewhere")
