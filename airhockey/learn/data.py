"""PyTorch datasets over generated episode shards: clips for the pretext task, frames for classifiers.

    from airhockey.generate import open_shards
    from airhockey.learn.data import ClipDataset, FrameDataset, split_episodes

    episodes = open_shards("data")
    split = split_episodes(episodes.table()["label"], seed=0)          # by episode, stratified
    clips = ClipDataset(episodes, clip_length=10, episodes=split.train)  # item: (T, 3, H, W) float
    frames = FrameDataset(episodes, episodes=split.val)                 # item: dict, see below

Both take, as torchvision's datasets do, ``dtype`` (``"float32"``: values in [0, 1], the default;
``"uint8"``: the stored bytes, what torchvision's v2 transforms take as an image or video) and
``transform``, a callable applied to each item's frames tensor (a clip's (T, 3, H, W), a frame's
(3, H, W)); a ``torchvision.transforms.v2`` pipeline works as it is:

    clips = ClipDataset("data", 10, dtype="uint8",
                        transform=v2.Compose([v2.RandomCrop(56), v2.ToDtype(torch.float32, scale=True)]))

Both are safe with ``DataLoader(num_workers > 0)``: they hold the shard paths, not open files, and
each worker process opens its own handles on first use (with the ``spawn`` start method the
transform must pickle: a module-level function or a torchvision transform, not a lambda).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch.utils.data import Dataset

from airhockey.errors import UserError
from airhockey.generate.shards import EpisodeShards, open_shards

DTYPES = ("float32", "uint8")
"""The element types a dataset's frames can have: float32 in [0, 1], or the stored uint8 bytes."""

Transform = Callable[[torch.Tensor], torch.Tensor]
"""A per-item transform of a frames tensor, (..., 3, H, W) -> anything the training loop takes."""


def frames_to_tensor(frames: NDArray[np.uint8], dtype: str = "float32") -> torch.Tensor:
    """(..., H, W, 3) uint8 frames -> (..., 3, H, W): float32 in [0, 1], or uint8 with ``dtype="uint8"``."""
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).contiguous()
    return pixels if dtype == "uint8" else pixels.float().div_(255.0)


def checked_dtype(dtype: str | torch.dtype) -> str:
    """``dtype`` as one of ``DTYPES``; torch's ``torch.uint8`` and ``torch.float32`` are accepted too.

    Raises:
        UserError: for any other value.
    """
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise UserError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
    return name


def checked_transform(transform: Transform | None) -> Transform | None:
    """``transform`` if it is None or callable.

    Raises:
        UserError: for anything else.
    """
    if transform is not None and not callable(transform):
        raise UserError(
            f"transform must be a callable taking a frames tensor, got {type(transform).__name__}"
        )
    return transform


@dataclass(frozen=True)
class EpisodeSplit:
    """Dataset-wide episode indices of each part of a split, each sorted."""

    train: NDArray[np.int64]
    val: NDArray[np.int64]
    test: NDArray[np.int64]


def split_episodes(
    labels: ArrayLike, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> EpisodeSplit:
    """Splits episodes (never frames) into train, val and test, stratified by label.

    Each class's episodes are shuffled with a generator seeded by ``seed`` and cut by
    ``fractions`` (rounded down for val and test, so train gets the remainder); the same labels
    and seed always give the same split.

    Args:
        labels: (N,) the label of each episode, as in ``open_shards(path).table()["label"]``.
        fractions: train, val and test fractions, summing to 1.
        seed: the shuffle's seed.
    """
    labels = np.asarray(labels)
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    parts: list[list[NDArray[np.int64]]] = [[], [], []]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val, n_test = (int(len(members) * f) for f in fractions[1:])
        parts[1].append(members[:n_val])
        parts[2].append(members[n_val : n_val + n_test])
        parts[0].append(members[n_val + n_test :])
    train, val, test = (np.sort(np.concatenate(p or [np.zeros(0, dtype=np.int64)])) for p in parts)
    return EpisodeSplit(train.astype(np.int64), val.astype(np.int64), test.astype(np.int64))


def _episodes(source: str | Path | Sequence[str | Path] | EpisodeShards) -> EpisodeShards:
    """Opened episodes: paths (a dataset, a shard, a list of shards) are opened with ``open_shards``;
    anything else is taken to have ``EpisodeShards``' reading interface (``frames``, ``table``)."""
    if isinstance(source, (str, Path, list, tuple)):
        return open_shards(source)
    return source


class ClipDataset(Dataset):
    """Clips of ``clip_length`` consecutive frames from within single episodes, for next-frame prediction.

    Item ``i`` is a tensor (T, 3, H, W): float32 in [0, 1], or uint8 with ``dtype="uint8"``, passed
    through ``transform`` when one is given. Clips start every ``stride`` frames (0, stride,
    2 stride, ...) in every episode at least ``clip_length`` frames long.

    Args:
        source: a dataset directory or shard file, or episodes from ``open_shards``.
        clip_length: frames per clip (T).
        episodes: dataset-wide indices of the episodes to use (default: all).
        stride: frames between the starts of successive clips of an episode.
        dtype: ``"float32"`` or ``"uint8"`` (``torch.float32`` and ``torch.uint8`` work too).
        transform: a callable applied to each clip tensor (T, 3, H, W), e.g. a torchvision v2
            transform, which draws one set of random parameters for all T frames.

    Raises:
        ValueError: for a non-positive ``clip_length`` or ``stride``, an unknown ``dtype`` or a
            ``transform`` that is not callable.
    """

    def __init__(
        self,
        source: str | Path | EpisodeShards,
        clip_length: int,
        episodes: Sequence[int] | NDArray[np.int64] | None = None,
        stride: int = 1,
        dtype: str | torch.dtype = "float32",
        transform: Transform | None = None,
    ) -> None:
        if clip_length < 1 or stride < 1:
            raise ValueError(f"clip_length and stride must be positive, got {clip_length} and {stride}")
        self.dtype = checked_dtype(dtype)
        """The clips' element type: ``"float32"`` or ``"uint8"``."""
        self.transform = checked_transform(transform)
        """The callable applied to each clip, or None."""
        self.episodes = _episodes(source)
        self.clip_length = clip_length
        lengths = self.episodes.table()["length"]
        self.episodes.close()
        chosen = np.arange(len(lengths)) if episodes is None else np.asarray(episodes, dtype=np.int64)
        starts = [np.arange(0, lengths[e] - clip_length + 1, stride) for e in chosen]
        self.index = np.stack(
            [np.repeat(chosen, [len(s) for s in starts]), np.concatenate(starts or [np.zeros(0, np.int64)])],
            axis=1,
        ).astype(np.int64)  # (N, 2): episode, first frame
        """(N, 2) the episode and first frame of each clip."""

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> torch.Tensor:
        episode, start = (int(v) for v in self.index[i])
        frames = self.episodes.frames(episode, start, start + self.clip_length)
        clip = frames_to_tensor(frames, self.dtype)  # (T, 3, H, W)
        return clip if self.transform is None else self.transform(clip)


class FrameDataset(Dataset):
    """Single frames with their episode's label and their place in the episode, for classifiers.

    Item ``i`` is a dict:
        ``frame``: (3, H, W), float32 in [0, 1] or uint8 with ``dtype="uint8"``, passed through
            ``transform`` when one is given;
        ``label``: int64, the episode's class (see ``label_names``);
        ``episode``: int64, the episode's dataset-wide index;
        ``frame_index``: int64, the frame's index in its episode;
        ``hit_frame``: int64, the index of the episode's first frame with a button lit;
        ``after_hit``: bool, whether ``frame_index >= hit_frame`` (the outcome is visible).
    The default collate function batches these into a dict of tensors.

    Args:
        source: a dataset directory or shard file, or episodes from ``open_shards``.
        episodes: dataset-wide indices of the episodes to use (default: all).
        dtype: ``"float32"`` or ``"uint8"`` (``torch.float32`` and ``torch.uint8`` work too).
        transform: a callable applied to each item's ``frame`` (3, H, W), e.g. a torchvision v2
            transform; the other fields are left as they are.

    Raises:
        ValueError: for an unknown ``dtype`` or a ``transform`` that is not callable.
    """

    def __init__(
        self,
        source: str | Path | EpisodeShards,
        episodes: Sequence[int] | NDArray[np.int64] | None = None,
        dtype: str | torch.dtype = "float32",
        transform: Transform | None = None,
    ) -> None:
        self.dtype = checked_dtype(dtype)
        """The frames' element type: ``"float32"`` or ``"uint8"``."""
        self.transform = checked_transform(transform)
        """The callable applied to each item's frame, or None."""
        self.episodes = _episodes(source)
        table = self.episodes.table()
        self.episodes.close()
        self.label_names = self.episodes.label_names
        """Class names, by label."""
        chosen = np.arange(len(table["length"])) if episodes is None else np.asarray(episodes, dtype=np.int64)
        lengths = table["length"][chosen]
        episode = np.repeat(chosen, lengths)
        frame_index = np.concatenate([np.arange(n) for n in lengths] or [np.zeros(0, np.int64)])
        self.index = np.stack(
            [episode, frame_index, table["label"][episode], table["hit_frame"][episode]], axis=1
        ).astype(np.int64)  # (N, 4): episode, frame index, label, hit frame
        """(N, 4) the episode, frame index, label and hit frame of each item."""

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        episode, frame_index, label, hit_frame = (int(v) for v in self.index[i])
        frame = frames_to_tensor(self.episodes.frames(episode, frame_index, frame_index + 1)[0], self.dtype)
        return {
            "frame": frame if self.transform is None else self.transform(frame),  # (3, H, W)
            "label": torch.tensor(label),
            "episode": torch.tensor(episode),
            "frame_index": torch.tensor(frame_index),
            "hit_frame": torch.tensor(hit_frame),
            "after_hit": torch.tensor(frame_index >= hit_frame),
        }
