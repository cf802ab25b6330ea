"""Hyperparameters as data: the committed file, overrides and their checks."""

from __future__ import annotations

import pytest
import yaml

from airhockey.agents import load_hyperparams
from airhockey.agents.config import HYPERPARAMS_PATH
from airhockey.errors import UserError


def test_the_env_entry_of_the_committed_file_updates_its_default_entry():
    table = yaml.safe_load(HYPERPARAMS_PATH.read_text())
    own, default = table["AirHockey-v0"], table["default"]
    assert own, "AirHockey-v0 should have an entry of its own"
    values = load_hyperparams("AirHockey-v0").to_dict()
    for name, value in values.items():
        assert value == own.get(name, default[name]), name
    assert load_hyperparams("SomeOther-v0").to_dict() == default
    assert values["policy"] == "MlpPolicy" and values["norm_obs"]


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
    bad.write_text("AirHockey-v0:\n  n_steps: 64\n")
    with pytest.raises(UserError, match="'default' entry"):
        load_hyperparams(path=bad)
