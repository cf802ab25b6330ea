"""Generation end to end: round trip, replay, determinism across workers, labels, balance, errors."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import airhockey
from airhockey.errors import UserError
from airhockey.generate import GenerateConfig, ScriptedPolicy, generate, open_shards, plan_shards, run_shard
from airhockey.generate.jobs import ShardJob
from tests.generate.helpers import SMALL, file_digests


def test_round_trip_gives_every_field_with_its_shape_and_dtype(small_dataset):
    episodes = open_shards(small_dataset)
    assert len(episodes) == SMALL.episodes
    assert episodes.label_names == ["left", "right"]
    for i, episode in enumerate(episodes):
        t = len(episode["frames"])
        assert set(episode) == {
            *("frames", "actions", "bar_pos", "bar_vel", "puck_pos", "puck_vel", "buttons_lit"),
            *("bar_contact", "rim_contact", "button_contact"),
            *("id", "label", "hit_button", "target", "hit_frame", "strike_frame", "seed", "policy", "layout"),
            "env_kwargs",
        }
        assert episode["frames"].shape == (t, 32, 32, 3) and episode["frames"].dtype == np.uint8
        assert episode["actions"].shape == (t - 1, 2) and episode["actions"].dtype == np.float32
        for name in ("bar_pos", "bar_vel", "puck_pos", "puck_vel"):
            assert episode[name].shape == (t, 2) and episode[name].dtype == np.float64
        assert episode["buttons_lit"].shape == (t, 5) and episode["buttons_lit"].dtype == bool
        for name in ("bar_contact", "rim_contact", "button_contact"):
            assert episode[name].shape == (t,) and episode[name].dtype == bool
        assert episode["id"] == i and episode["env_kwargs"] == SMALL.env_kwargs()
        assert episodes.info(i)["length"] == t
        np.testing.assert_array_equal(episodes.frames(i, 2, 5), episode["frames"][2:5])
    assert np.bincount(episodes.table()["label"]).tolist() == [4, 4]
    assert episodes[-1]["id"] == SMALL.episodes - 1
    with pytest.raises(IndexError):
        episodes[SMALL.episodes]


def test_replaying_a_stored_episode_reproduces_its_frames_bit_for_bit(small_dataset):
    episodes = open_shards(small_dataset)
    for index in (0, len(episodes) - 1):
        episode = episodes[index]
        env = gym.make(airhockey.ENV_ID, **episode["env_kwargs"])
        env.reset(seed=episode["seed"], options={"target": episode["target"]})
        frames = [env.render()]
        for action in episode["actions"]:
            _, _, terminated, _, info = env.step(action)
            frames.append(env.render())
        env.close()
        assert terminated and info["hit_button"] == episode["hit_button"]
        np.testing.assert_array_equal(np.stack(frames), episode["frames"])


def test_labels_agree_with_the_per_frame_button_states(small_dataset):
    for episode in open_shards(small_dataset):
        lit, hit_frame, hit_button = episode["buttons_lit"], episode["hit_frame"], episode["hit_button"]
        assert not lit[:hit_frame].any()
        assert lit[hit_frame:, hit_button].all() and lit[hit_frame:].sum(axis=1).max() == 1
        assert episode["label"] == (0, 4).index(hit_button)


def test_same_seed_gives_identical_files_with_one_or_two_workers_and_another_seed_does_not(
    small_dataset, tmp_path
):
    generate(SMALL, tmp_path / "two", workers=2, progress=False)
    assert file_digests(tmp_path / "two") == file_digests(small_dataset)
    generate(replace(SMALL, seed=1), tmp_path / "other", workers=1, progress=False)
    assert open_shards(tmp_path / "other")[0]["seed"] != open_shards(small_dataset)[0]["seed"]


def test_plan_balances_classes_across_shards_of_any_size():
    jobs = plan_shards(GenerateConfig(episodes=7, shard_size=3), {"name": "x", "sha256": "0"})
    assert [job.quotas for job in jobs] == [(2, 1), (1, 2), (1, 0)]
    assert [job.first_episode for job in jobs] == [0, 3, 6]
    jobs = plan_shards(GenerateConfig(episodes=12, shard_size=5, labels="all"), {"name": "x", "sha256": "0"})
    assert np.sum([job.quotas for job in jobs], axis=0).tolist() == [3, 3, 2, 2, 2]


def test_all_labels_mode_labels_each_button(tmp_path):
    config = replace(SMALL, episodes=5, labels="all", shard_size=5)
    generate(config, tmp_path / "all", workers=1, progress=False)
    episodes = open_shards(tmp_path / "all")
    table = episodes.table()
    assert sorted(table["label"].tolist()) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(table["label"], table["hit_button"])
    assert episodes.label_names == ["button0", "button1", "button2", "button3", "button4"]


def test_default_policy_is_the_bundled_agent_trained_for_the_labels(tmp_path):
    assert GenerateConfig(episodes=1).policy == "bundled"
    assert GenerateConfig(episodes=1, labels="all").policy == "bundled-all"
    config = GenerateConfig(episodes=5, labels="all", shard_size=5, width=32, height=32)
    manifest = generate(config, tmp_path / "all", workers=1, progress=False)
    assert manifest["config"]["policy"] == "bundled-all"
    assert manifest["policy"]["name"] == "ppo_all.zip"
    assert sorted(open_shards(tmp_path / "all").table()["label"].tolist()) == [0, 1, 2, 3, 4]


class IdlePolicy:
    """Never moves the bar, so never hits a button."""

    def predict(self, observation, deterministic=True):
        return np.zeros((len(observation), 2), dtype=np.float32), None


def test_a_policy_that_cannot_fill_a_class_stops_with_a_message_and_leaves_no_file(tmp_path):
    job = ShardJob(replace(SMALL, episodes=1), {"name": "idle", "sha256": "0"}, quotas=(1, 0))
    with pytest.raises(UserError, match=r"policy 'idle' wrote \[0, 0\] of \[1, 0\].*\['left'\]"):
        run_shard(job, IdlePolicy(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_run_shard_takes_any_policy_object_and_counts_discards(tmp_path):
    job = plan_shards(replace(SMALL, episodes=4, shard_size=4), ScriptedPolicy.identity())[0]
    entry = run_shard(job, ScriptedPolicy(), tmp_path)
    assert entry.episodes == 4 and entry.class_counts == [2, 2]
    assert entry.attempts == 4 + sum(entry.discards.values())
    assert (tmp_path / entry.file).stat().st_size == entry.bytes


def test_existing_directory_needs_resume_and_resume_needs_the_same_settings(small_dataset):
    with pytest.raises(UserError, match="not empty: pass --resume"):
        generate(SMALL, small_dataset, workers=1, progress=False)
    with pytest.raises(UserError, match="differing: seed"):
        generate(replace(SMALL, seed=5), small_dataset, workers=1, progress=False, resume=True)
    before = file_digests(small_dataset)
    generate(SMALL, small_dataset, workers=1, progress=False, resume=True)
    assert file_digests(small_dataset) == before


def test_resume_redoes_a_damaged_or_partial_shard(small_dataset, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in small_dataset.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / "shard-00001.h5").write_bytes(b"garbage")
    (copy / ".shard-00002.h5.partial").write_bytes(b"half a shard")
    generate(SMALL, copy, workers=1, progress=False, resume=True)
    assert file_digests(copy) == file_digests(small_dataset)
    assert not list(copy.glob("*.partial"))


@pytest.mark.parametrize("bad", [{"episodes": 0}, {"labels": "up"}, {"width": -1}])
def test_bad_settings_are_user_errors(bad):
    with pytest.raises(UserError):
        replace(SMALL, **bad)
