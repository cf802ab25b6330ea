"""Training through the public API: the run folder, reloading, reproducibility and resuming."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import airhockey
from airhockey.agents import TrainSummary, load_policy, train
from airhockey.agents.runlog import EvalRow, append_row, read_rows
from airhockey.errors import UserError
from tests.agents.conftest import TINY_STEPS, tiny_config

RUN_FILES = (
    "config.json",
    "command.txt",
    "eval.csv",
    "curve.png",
    "model.zip",
    "model_vecnormalize.pkl",
    "checkpoint/model.zip",
    "checkpoint/model_vecnormalize.pkl",
    "checkpoint/state.json",
    "best/model.zip",
    "best/model_vecnormalize.pkl",
    "best/model_actor.npz",
    "best/state.json",
)


def observations(n: int = 6) -> np.ndarray:
    """Raw state observations, shape (n, 13), from reset and a few random steps."""
    env = gym.make(airhockey.ENV_ID, target_buttons="all")
    rows = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        for _ in range(seed * 3):
            obs, *_ = env.step(np.full(2, 0.5, dtype=np.float32))
        rows.append(obs)
    return np.stack(rows)


def numbers(summary: TrainSummary) -> list[tuple]:
    """The run's evaluation rows without their wall-clock time."""
    return [(r.timesteps, r.success_rate, r.mean_return, r.mean_length) for r in summary.rows]


def parameters(summary: TrainSummary) -> list[torch.Tensor]:
    return list(load_policy(summary.run_dir).model.policy.state_dict().values())


def test_run_folder_holds_config_command_log_curve_checkpoint_and_model(tiny_run):
    run = tiny_run.run_dir
    for name in RUN_FILES:
        assert (run / name).is_file(), f"{name} missing from the run folder"
    saved = json.loads((run / "config.json").read_text())
    assert saved["env_id"] == airhockey.ENV_ID and "stable_baselines3" in saved["versions"]
    assert saved["config"]["seed"] == 0 and saved["config"]["hyperparams"]["n_steps"] == 32
    assert (run / "command.txt").read_text() == "pytest tiny run\n"
    assert tiny_run.timesteps == TINY_STEPS
    assert [r.timesteps for r in tiny_run.rows] == [0, 128, 256]
    for row in tiny_run.rows:
        assert row.success_low <= row.success_rate <= row.success_high
        assert 1 <= row.mean_length <= 150
    assert (run / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_reloaded_policy_acts_on_raw_observations_single_and_batched(tiny_run):
    policy = load_policy(tiny_run.run_dir)
    batch = observations()
    actions, state = policy.predict(batch, deterministic=True)
    assert actions.shape == (6, 2) and state is None
    assert np.all(np.abs(actions) <= 1.0)
    single, _ = policy.predict(batch[2])
    assert single.shape == (2,)
    np.testing.assert_allclose(single, actions[2], atol=1e-6)

    # The normalisation happens inside predict: the bare model needs normalised input.
    stats = policy.normalizer
    normed = np.clip(
        (batch - stats.obs_rms.mean) / np.sqrt(stats.obs_rms.var + stats.epsilon),
        -stats.clip_obs,
        stats.clip_obs,
    )
    np.testing.assert_allclose(policy.model.predict(normed, deterministic=True)[0], actions, atol=1e-6)

    env = gym.make(airhockey.ENV_ID)
    obs, _ = env.reset(seed=0)
    env.step(policy.predict(obs)[0])
    with pytest.raises(ValueError, match=r"shape \(13,\) or \(N, 13\)"):
        policy.predict(batch[:, :12])


def test_run_folder_model_zip_and_checkpoint_all_load(tiny_run):
    by_folder = load_policy(tiny_run.run_dir)
    by_zip = load_policy(tiny_run.run_dir / "model.zip")
    assert by_folder.sha256 == by_zip.sha256 and len(by_folder.sha256) == 64
    assert load_policy(tiny_run.run_dir / "checkpoint").model.num_timesteps == TINY_STEPS


def best_row(summary: TrainSummary):
    """The first evaluation with the highest success rate."""
    return max(summary.rows, key=lambda r: (r.success_rate, -r.timesteps))


def test_best_folder_holds_the_first_evaluation_with_the_top_success_rate(tiny_run):
    best = best_row(tiny_run)
    assert tiny_run.best["timesteps"] == best.timesteps
    assert tiny_run.best["success_rate"] == best.success_rate
    state = json.loads((tiny_run.run_dir / "best" / "state.json").read_text())
    assert state.pop("sha256") == load_policy(tiny_run.run_dir / "best").sha256
    assert state == tiny_run.best
    assert load_policy(tiny_run.run_dir / "best").model.num_timesteps == best.timesteps


def test_same_seed_same_run_whatever_the_workers_and_another_seed_differs(tiny_run, tmp_path):
    again = train(tiny_config(tmp_path / "again", workers=2), command="again")
    assert numbers(again) == numbers(tiny_run)
    for a, b in zip(parameters(again), parameters(tiny_run), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    batch = observations()
    np.testing.assert_array_equal(
        load_policy(again.run_dir).predict(batch)[0], load_policy(tiny_run.run_dir).predict(batch)[0]
    )

    other = train(tiny_config(tmp_path / "other", seed=1), command="other")
    assert any(not torch.equal(a, b) for a, b in zip(parameters(other), parameters(tiny_run), strict=True))


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(run, timesteps=128), command="first")
    resumed = train(tiny_config(run, timesteps=256, resume=True), command="second")
    assert resumed.timesteps == 256
    assert [r.timesteps for r in resumed.rows] == [0, 128, 256]
    walls = [r.wall_seconds for r in resumed.rows]
    assert walls == sorted(walls)
    assert (run / "command.txt").read_text() == "first\nsecond\n"
    assert load_policy(run).model.num_timesteps == 256
    assert resumed.best["timesteps"] == best_row(resumed).timesteps
    assert load_policy(run / "best").model.num_timesteps == resumed.best["timesteps"]


def test_resume_drops_a_best_model_saved_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(run, timesteps=128), command="first")
    state = run / "best" / "state.json"
    # As if the run had died after saving a best model but before its checkpoint.
    state.write_text(json.dumps({"timesteps": 999, "wall_seconds": 1.0, "success_rate": 1.0}))
    resumed = train(tiny_config(run, timesteps=256, resume=True), command="second")
    assert resumed.best["timesteps"] == 256, "the next evaluation after the checkpoint is the new best"
    assert load_policy(run / "best").model.num_timesteps == 256


def test_resume_refuses_a_checkpoint_cut_off_between_its_model_and_its_state(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(run, timesteps=128), command="first")
    older = (run / "checkpoint" / "state.json").read_text()
    train(tiny_config(run, timesteps=256, resume=True), command="second")
    # As if the second session had died after saving its model, before writing the model's state.
    (run / "checkpoint" / "state.json").write_text(older)
    with pytest.raises(UserError, match=r"not the model its state\.json was written for") as refused:
        train(tiny_config(run, timesteps=384, resume=True), command="third")
    assert "\n" not in str(refused.value)
    assert (run / "command.txt").read_text() == "first\nsecond\n", "a refused resume writes nothing"


def test_run_folder_conflicts_are_user_errors(tiny_run, tmp_path):
    run = tiny_run.run_dir
    with pytest.raises(UserError, match="pass --resume"):
        train(tiny_config(run))
    with pytest.raises(UserError, match="seed was 0, now 1"):
        train(tiny_config(run, timesteps=512, seed=1, resume=True))
    with pytest.raises(UserError, match="trained 256 steps already"):
        train(tiny_config(run, resume=True))
    assert (run / "command.txt").read_text() == "pytest tiny run\n", "a refused run writes nothing"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 5}, "workers must be between 1 and n_envs"),
        ({"timesteps": 0}, r"timesteps must be an integer in \[1, 10000000000\], got 0"),
        ({"target_buttons": "middle"}, "target_buttons must be one of"),
    ],
)
def test_bad_settings_are_user_errors(tmp_path, changes, message):
    with pytest.raises(UserError, match=message):
        tiny_config(tmp_path / "run", **changes)


def test_eval_log_round_trips_step_counts_past_a_million(tmp_path):
    row = EvalRow(2_457_600, 926.49, 0.89, 0.81, 0.94, 12.74, 34.39)
    append_row(tmp_path / "eval.csv", row)
    (back,) = read_rows(tmp_path / "eval.csv")
    assert back.timesteps == 2_457_600 and back.success_rate == 0.89
