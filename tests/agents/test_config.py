"""Hyperparameters as data: the committed file in rl-baselines3-zoo's format, overrides and their checks."""

from __future__ import annotations

import pytest
import yaml

from airhockey.agents import load_hyperparams
from airhockey.agents.config import HYPERPARAMS_PATH, ZOO_KEYS, TrainConfig
from airhockey.errors import UserError


def test_the_committed_file_is_read_in_the_zoos_format():
    table = yaml.safe_load(HYPERPARAMS_PATH.read_text())
    assert set(table["AirHockey-v0"]) == set(ZOO_KEYS) == set(table["default"])
    hp = load_hyperparams("AirHockey-v0")
    assert (hp.n_envs, hp.n_steps, hp.batch_size, hp.gamma) == (16, 512, 512, 0.98)
    assert (hp.learning_rate, hp.learning_rate_end) == (3e-4, 0.0)  # lin_3e-4: linear decay to 0
    assert (hp.net_arch, hp.activation_fn, hp.log_std_init) == ([128, 128], "tanh", -0.5)
    assert (hp.norm_obs, hp.norm_reward, hp.clip_obs) == (True, True, 10.0)
    # the zoo's run length is the training's default step budget
    assert table["AirHockey-v0"]["n_timesteps"] == TrainConfig.timesteps
    # as in the zoo, an env without an entry takes the whole default entry
    other = load_hyperparams("SomeOther-v0")
    assert (other.n_envs, other.learning_rate_end, other.net_arch) == (8, None, [64, 64])


def test_overrides_are_parsed_and_type_checked():
    hp = load_hyperparams().with_overrides(["n_steps=64", "learning_rate=1e-3", "net_arch=[32, 32]"])
    assert (hp.n_steps, hp.learning_rate, hp.net_arch) == (64, 1e-3, [32, 32])
    assert hp.with_overrides(["target_kl=0.02"]).target_kl == 0.02
    assert hp.with_overrides(["target_kl=null"]).target_kl is None
    assert hp.with_overrides(["gamma=1"]).gamma == 1.0  # ints are accepted for floats


def test_a_learning_rate_end_makes_the_rate_fall_linearly_over_the_run():
    hp = load_hyperparams().with_overrides(["learning_rate=4e-4", "learning_rate_end=0"])
    schedule = hp.ppo_kwargs()["learning_rate"]  # of stable-baselines3's progress_remaining, 1 -> 0
    assert [schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([4e-4, 2e-4, 0.0])
    assert hp.with_overrides(["learning_rate_end=null"]).ppo_kwargs()["learning_rate"] == 4e-4


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("n_step=64", "unknown hyperparameter"),
        ("n_steps=64.5", "wrong type"),
        ("norm_obs=maybe", "wrong type"),
        ("n_steps", "NAME=VALUE"),
        ("gamma=1.5", r"gamma must be a finite number in \(0, 1\], got 1.5"),
        ("activation_fn=gelu", "activation_fn must be one of"),
        ("learning_rate_end=-1e-4", r"learning_rate_end must be a finite number in \[0, 10\]"),
    ],
)
def test_bad_overrides_are_user_errors(assignment, message):
    with pytest.raises(UserError, match=message):
        load_hyperparams().with_overrides([assignment])


def test_unreadable_or_malformed_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read hyperparameters"):
        load_hyperparams(path=tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("Other-v0:\n  n_steps: 64\n")
    with pytest.raises(UserError, match="no entry for AirHockey-v0 and no 'default' entry"):
        load_hyperparams(path=bad)
    bad.write_text("- 1\n")
    with pytest.raises(UserError, match="must map env ids to hyperparameter entries"):
        load_hyperparams(path=bad)


def test_tensorboard_log_is_refused_with_where_the_logs_go():
    with pytest.raises(UserError, match="tb/ by itself"):
        load_hyperparams().with_overrides(["tensorboard_log=runs/tb"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("learning_rate", "lin_fast", "learning_rate .* wrong type"),
        ("normalize", "True", "normalize .* must look like 'dict\\(norm_obs=..."),
        ("normalize", "dict(norm_obs=True)", "must look like"),
        ("policy_kwargs", "__import__('os').system('true')", "policy_kwargs .* must look like"),
        ("policy_kwargs", "dict(net_arch=[8], activation_fn=nn.GELU, log_std_init=0.0)", "nn.Tanh"),
        ("policy_kwargs", "dict(net_arch=[8], activation_fn=open('x'), log_std_init=0.0)", "must look like"),
        ("n_timesteps", 0, "n_timesteps .* must be a number of steps"),
        ("tensorboard_log", "tb", "unknown hyperparameter"),
    ],
)
def test_zoo_forms_are_parsed_without_evaluating_code_and_checked(tmp_path, key, value, message):
    table = yaml.safe_load(HYPERPARAMS_PATH.read_text())
    table["AirHockey-v0"][key] = value
    path = tmp_path / "ppo.yml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(UserError, match=message):
        load_hyperparams(path=path)


def test_a_missing_key_is_named(tmp_path):
    table = yaml.safe_load(HYPERPARAMS_PATH.read_text())
    del table["AirHockey-v0"]["n_timesteps"]
    path = tmp_path / "ppo.yml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(UserError, match=r"\['n_timesteps'\] missing from"):
        load_hyperparams(path=path)


def test_a_mapping_and_a_constant_rate_are_read_too(tmp_path):
    table = yaml.safe_load(HYPERPARAMS_PATH.read_text())
    table["AirHockey-v0"].update(
        learning_rate=1e-3, normalize={"norm_obs": False, "norm_reward": True, "clip_obs": 5.0}
    )
    path = tmp_path / "ppo.yml"
    path.write_text(yaml.safe_dump(table))
    hp = load_hyperparams(path=path)
    assert (hp.learning_rate, hp.learning_rate_end, hp.norm_obs, hp.clip_obs) == (1e-3, None, False, 5.0)
