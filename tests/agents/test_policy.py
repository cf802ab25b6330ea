"""Loading saved policies: bad paths and corrupt files give one-line errors; the bundled agent plays."""

from __future__ import annotations

import pickle
import shutil

import pytest

from airhockey.agents import evaluate, find_policy_files, load_policy, policy
from airhockey.errors import UserError


def copy_policy(tiny_run, folder):
    """The tiny run's model and statistics, copied to ``folder`` as agent.zip + its stats."""
    folder.mkdir()
    shutil.copy(tiny_run.run_dir / "model.zip", folder / "agent.zip")
    shutil.copy(tiny_run.run_dir / "model_vecnormalize.pkl", folder / "agent_vecnormalize.pkl")
    return folder / "agent.zip"


def assert_one_line_user_error(spec, match):
    with pytest.raises(UserError, match=match) as err:
        load_policy(spec)
    assert "\n" not in str(err.value)


def test_missing_paths_are_one_line_user_errors(tmp_path):
    assert_one_line_user_error(tmp_path / "nothing.zip", "does not exist")
    assert_one_line_user_error(tmp_path, "holds no model.zip")


def test_model_without_its_statistics_is_a_user_error(tiny_run, tmp_path):
    model = copy_policy(tiny_run, tmp_path / "p")
    (tmp_path / "p" / "agent_vecnormalize.pkl").unlink()
    assert_one_line_user_error(model, "agent_vecnormalize.pkl are missing")


def test_corrupt_files_are_one_line_user_errors(tiny_run, tmp_path):
    model = copy_policy(tiny_run, tmp_path / "p")
    load_policy(model)  # intact, it loads
    stats = tmp_path / "p" / "agent_vecnormalize.pkl"
    stats.write_bytes(b"not a pickle at all")
    assert_one_line_user_error(model, "is not pickled VecNormalize statistics")
    stats.write_bytes(pickle.dumps({"mean": 0.0}))
    assert_one_line_user_error(model, "holds a dict, not VecNormalize")
    model.write_bytes(model.read_bytes()[:5000])
    assert_one_line_user_error(model, "is not a stable-baselines3 PPO model zip")


def test_identity_is_the_hash_of_both_files_and_follows_their_contents(tiny_run, tmp_path):
    model = copy_policy(tiny_run, tmp_path / "p")
    loaded = load_policy(model)
    assert loaded.sha256 == find_policy_files(model).sha256() == load_policy(tiny_run.run_dir).sha256
    with (tmp_path / "p" / "agent_vecnormalize.pkl").open("ab") as f:
        f.write(b"\0")
    assert find_policy_files(model).sha256() != loaded.sha256


def test_missing_bundled_policy_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(policy, "BUNDLED_MODEL", tmp_path / "ppo_leftright.zip")
    assert_one_line_user_error("bundled", "the bundled policy is not installed")


@pytest.mark.skipif(
    not policy.BUNDLED_MODEL.is_file(),
    reason=f"the bundled policy ({policy.BUNDLED_MODEL.name}) is not in airhockey/assets/ yet",
)
def test_bundled_policy_hits_the_target_in_at_least_90_percent_of_100_seeded_episodes():
    result = evaluate(load_policy("bundled"), episodes=100)
    assert result.success_rate >= 0.9, result.report()
