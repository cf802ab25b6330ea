"""The PyTorch datasets over shards: clip and frame items, the split by episode, DataLoader workers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from airhockey.generate import GenerateConfig, generate, open_shards
from airhockey.learn.data import ClipDataset, FrameDataset, split_episodes

CONFIG = GenerateConfig(episodes=6, width=32, height=32, policy="scripted", shard_size=4, lockstep_envs=4)
CLIP = 5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("learn") / "data"
    generate(CONFIG, path, workers=1, progress=False)
    return path


def test_clips_are_consecutive_frames_of_one_episode_as_unit_range_floats(dataset):
    episodes = open_shards(dataset)
    lengths = episodes.table()["length"]
    clips = ClipDataset(dataset, clip_length=CLIP, stride=2)
    assert len(clips) == sum(len(range(0, n - CLIP + 1, 2)) for n in lengths)
    for i in (0, len(clips) - 1):
        episode, start = clips.index[i]
        clip = clips[i]
        assert clip.shape == (CLIP, 3, 32, 32) and clip.dtype == torch.float32
        assert clip.min() >= 0.0 and clip.max() <= 1.0
        expected = episodes[int(episode)]["frames"][start : start + CLIP]  # (T, H, W, 3)
        torch.testing.assert_close(clip, torch.from_numpy(expected).permute(0, 3, 1, 2).float() / 255)
    assert clips.index[-1, 1] + CLIP <= lengths[-1]


def test_frames_carry_label_episode_position_and_whether_the_hit_is_visible(dataset):
    episodes = open_shards(dataset)
    table = episodes.table()
    frames = FrameDataset(episodes, episodes=[1, 4])
    assert len(frames) == table["length"][1] + table["length"][4]
    assert frames.label_names == ["left", "right"]
    last = frames[table["length"][1] - 1]
    assert last["episode"] == 1 and last["frame_index"] == table["length"][1] - 1
    assert last["label"] == table["label"][1] and last["hit_frame"] == table["hit_frame"][1]
    assert last["after_hit"] and not frames[0]["after_hit"]
    torch.testing.assert_close(
        frames[len(frames) - 1]["frame"], torch.from_numpy(episodes[4]["frames"][-1]).permute(2, 0, 1) / 255
    )


def test_split_is_by_episode_disjoint_stratified_and_reproducible():
    labels = np.repeat([0, 1], 50)
    split = split_episodes(labels, (0.6, 0.2, 0.2), seed=3)
    parts = [split.train, split.val, split.test]
    assert [len(p) for p in parts] == [60, 20, 20]
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    assert [np.bincount(labels[p]).tolist() for p in parts] == [[30, 30], [10, 10], [10, 10]]
    again = split_episodes(labels, (0.6, 0.2, 0.2), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, [again.train, again.val, again.test], strict=True))
    assert not np.array_equal(split_episodes(labels, (0.6, 0.2, 0.2), seed=4).val, split.val)
    with pytest.raises(ValueError, match="fractions"):
        split_episodes(labels, (0.5, 0.5, 0.5))


def test_datasets_built_on_a_split_hold_only_its_episodes(dataset):
    split = split_episodes(open_shards(dataset).table()["label"], (0.5, 0.5, 0.0), seed=0)
    assert set(ClipDataset(dataset, CLIP, episodes=split.val).index[:, 0]) == set(split.val.tolist())
    assert set(FrameDataset(dataset, episodes=split.train).index[:, 0]) == set(split.train.tolist())


def test_dataloader_with_two_workers_gives_what_one_process_reads(dataset):
    clips = ClipDataset(dataset, clip_length=CLIP, stride=3)
    in_process = torch.cat(list(DataLoader(clips, batch_size=8)))
    with_workers = torch.cat(list(DataLoader(clips, batch_size=8, num_workers=2)))
    torch.testing.assert_close(with_workers, in_process)
    torch.testing.assert_close(pickle.loads(pickle.dumps(clips))[3], in_process[3])  # as spawn workers get it
    batch = next(iter(DataLoader(FrameDataset(dataset), batch_size=16, num_workers=2, shuffle=True)))
    assert batch["frame"].shape == (16, 3, 32, 32) and batch["label"].dtype == torch.int64
