"""The PyTorch datasets over shards: clip and frame items, uint8 or float32, per-item transforms, the split
by episode, DataLoader workers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from airhockey.errors import UserError
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


class CenterCrop:
    """As torchvision's v2.CenterCrop on a plain tensor: crops the last two dims, any leading dims kept."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
        return x[..., top : top + self.size, left : left + self.size]


class ToFloat:
    """As torchvision's v2.ToDtype(torch.float32, scale=True): uint8 in [0, 255] -> float32 in [0, 1]."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dtype == torch.uint8, "a scaling ToDtype expects the stored bytes"
        return x.float() / 255


class Compose:
    """As torchvision's v2.Compose."""

    def __init__(self, transforms: list) -> None:
        self.transforms = transforms

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x)
        return x


def test_uint8_items_are_the_stored_bytes_and_float32_their_scaled_copy(dataset):
    episodes = open_shards(dataset)
    clips = ClipDataset(dataset, clip_length=CLIP, stride=2, dtype="uint8")
    episode, start = clips.index[3]
    clip = clips[3]
    assert clip.shape == (CLIP, 3, 32, 32) and clip.dtype == torch.uint8
    stored = torch.from_numpy(episodes[int(episode)]["frames"][start : start + CLIP]).permute(0, 3, 1, 2)
    assert torch.equal(clip, stored)
    assert torch.equal(ClipDataset(dataset, CLIP, stride=2, dtype=torch.float32)[3], stored.float() / 255)
    frames = FrameDataset(dataset, episodes=[2], dtype=torch.uint8)
    item = frames[4]
    assert item["frame"].dtype == torch.uint8 and item["frame"].shape == (3, 32, 32)
    assert torch.equal(item["frame"], torch.from_numpy(episodes[2]["frames"][4]).permute(2, 0, 1))
    assert item["label"].dtype == torch.int64 and item["frame_index"] == 4


def test_a_transform_pipeline_gets_each_items_frames_tensor(dataset):
    episodes = open_shards(dataset)
    crop_then_scale = Compose([CenterCrop(20), ToFloat()])
    clips = ClipDataset(dataset, clip_length=CLIP, dtype="uint8", transform=crop_then_scale)
    episode, start = clips.index[5]
    stored = torch.from_numpy(episodes[int(episode)]["frames"][start : start + CLIP]).permute(0, 3, 1, 2)
    torch.testing.assert_close(clips[5], stored[..., 6:26, 6:26].float() / 255)  # one crop for all T frames
    frames = FrameDataset(dataset, episodes=[1], dtype="uint8", transform=crop_then_scale)
    plain = FrameDataset(dataset, episodes=[1], dtype="uint8")
    item, untouched = frames[2], plain[2]
    torch.testing.assert_close(item["frame"], untouched["frame"][:, 6:26, 6:26].float() / 255)
    assert all(torch.equal(item[k], untouched[k]) for k in ("label", "episode", "frame_index", "after_hit"))
    batch = next(iter(DataLoader(clips, batch_size=4, num_workers=2)))  # the transform travels to workers
    torch.testing.assert_close(batch, torch.stack([clips[i] for i in range(4)]))


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"dtype": "float64"}, "dtype must be 'float32' or 'uint8', got 'float64'"),
        ({"dtype": torch.int16}, "dtype must be 'float32' or 'uint8', got torch.int16"),
        ({"transform": "crop"}, "transform must be a callable taking a frames tensor, got str"),
    ],
)
def test_an_unknown_dtype_or_a_transform_that_is_not_callable_is_refused_in_one_line(dataset, kwargs, error):
    for make in (lambda: ClipDataset(dataset, CLIP, **kwargs), lambda: FrameDataset(dataset, **kwargs)):
        with pytest.raises(UserError) as caught:
            make()
        assert str(caught.value) == error
