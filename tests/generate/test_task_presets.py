"""Generating the task presets: the default is unchanged, every preset verifies and replays exactly,
and each episode records its policy, layout and nuisance factors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import airhockey
from airhockey.cli import app
from airhockey.generate import GenerateConfig, generate, open_shards, verify_dataset
from airhockey.generate.hdf5 import episode_factors
from airhockey.tasks import TASKS

runner = CliRunner()
TINY = {"width": 32, "height": 32, "shard_size": 3, "lockstep_envs": 4}

PINNED = {
    "bundled": ("5dd580f01b74663c332cc2c7cbe3a9e99904c6be5fea181e2f9a06435a383244", {}),
    "bundled-all": ("1166009005adad94facc20adb5ab45d1928e7b6e2fdd9ed94f873d6020ca96d5", {"labels": "all"}),
}
"""SHA-256 of the arrays of 6-episode datasets, computed before tasks, layouts and nuisances existed."""
FORMAT2_DATASETS = (
    *("actions", "bar_contact", "bar_pos", "bar_vel", "button_contact", "buttons_lit", "frames"),
    *("puck_pos", "puck_vel", "rim_contact"),
    *(f"episodes/{n}" for n in ("frame_start", "hit_button", "hit_frame", "id", "label", "length")),
    *(f"episodes/{n}" for n in ("seed", "step_start", "strike_frame", "target")),
)


def arrays_digest(path: Path) -> str:
    """SHA-256 of the format 2 datasets of every shard, in HDF5's name order."""
    digest = hashlib.sha256()
    for shard in sorted(path.glob("shard-*.h5")):
        with h5py.File(shard, "r") as f:
            for name in sorted(FORMAT2_DATASETS):
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(f[name][()]).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("policy", sorted(PINNED))
def test_a_dataset_without_a_task_has_the_arrays_it_had_before_tasks_existed(policy, tmp_path):
    digest, settings = PINNED[policy]
    generate(GenerateConfig(episodes=6, **TINY, **settings), tmp_path / "data", workers=1, progress=False)
    assert arrays_digest(tmp_path / "data") == digest


@pytest.fixture(scope="module")
def presets(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, task in TASKS.items():
        if name == "leftright":
            continue  # its arrays are pinned above
        path = tmp_path_factory.mktemp(name) / "data"
        episodes = 10 if task.labels == "all" else 6
        generate(task.generate_config(episodes, 1, "test", **TINY), path, workers=1, progress=False)
        out[name] = path
    return out


@pytest.mark.parametrize("name", [n for n in TASKS if n != "leftright"])
def test_every_preset_verifies_and_every_episode_replays_bit_for_bit(presets, name):
    path = presets[name]
    assert verify_dataset(path).ok, verify_dataset(path).problems
    episodes = open_shards(path)
    for index in range(len(episodes)):
        episode = episodes[index]
        env = gym.make(airhockey.ENV_ID, **episode["env_kwargs"])
        env.reset(seed=episode["seed"], options={"target": episode["target"]})
        frames = [env.render()]
        for action in episode["actions"]:
            _, _, terminated, _, info = env.step(action)
            frames.append(env.render())
        assert env.unwrapped.layout_index == episode["layout"]
        env.close()
        assert terminated and info["hit_button"] == episode["hit_button"]
        np.testing.assert_array_equal(np.stack(frames), episode["frames"])


def test_each_episode_records_its_policy_layout_and_nuisance_factors(presets):
    for name, path in presets.items():
        task = TASKS[name]
        table = open_shards(path).table()
        n_policies = len(task.policy_mix) or 1
        assert set(table["policy"]) <= set(range(n_policies))
        if task.heldout_layouts:
            assert (table["layout"] % 2 == 1).all()  # test layouts: odd indices
        else:
            assert (table["layout"] == -1).all()
        with h5py.File(path / "shard-00000.h5", "r") as f:
            factors = episode_factors(f)
        assert bool(factors) == task.nuisances.active, name
        for values in factors.values():
            assert values.shape == (3,) and np.isfinite(values).all()


def test_a_mix_plays_each_of_its_policies_over_a_few_dozen_episodes(tmp_path):
    config = TASKS["leftright_hard"].generate_config(24, 0, **{**TINY, "shard_size": 24})
    generate(config, tmp_path / "data", workers=1, progress=False)
    assert set(open_shards(tmp_path / "data").table()["policy"]) == {0, 1, 2}


def test_buttons5_balances_its_five_classes_and_its_policy_hits_what_it_aims_at(presets):
    manifest = verify_dataset(presets["buttons5"])
    table = open_shards(presets["buttons5"]).table()
    assert manifest.ok and np.bincount(table["label"], minlength=5).tolist() == [2] * 5
    assert (table["target"] == table["hit_button"]).mean() >= 0.8


def test_generate_task_through_the_cli_records_the_task_in_the_manifest(tmp_path):
    out = tmp_path / "data"
    args = ["generate", str(out), "--episodes", "4", "--task", "leftright_layouts", "--split", "test"]
    result = runner.invoke(app, [*args, "--width", "32", "--height", "32", "--workers", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["task"] == "leftright_layouts" and manifest["config"]["layouts"] == "test"
    assert manifest["config"]["task_version"] == TASKS["leftright_layouts"].version


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope"], "unknown task 'nope': use one of"),
        (["--task", "buttons5", "--labels", "leftright"], "contradicts task 'buttons5'"),
        (["--task", "leftright", "--policy", "scripted"], "contradicts task 'leftright'"),
        (["--split", "test"], "--split chooses the data of a task"),
    ],
)
def test_a_bad_task_option_is_a_one_line_error_that_writes_nothing(tmp_path, args, message):
    out = tmp_path / "data"
    result = runner.invoke(app, ["generate", str(out), "--episodes", "2", *args])
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()
