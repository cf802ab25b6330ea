"""Episodes held in memory with the reading interface of ``EpisodeShards``, for the order-method tests.

``coded_episodes`` paints each frame with its own time and episode, so a test can read back from a
sample which frames a method drew: ``decode_time`` and ``decode_episode``.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor


class ArrayEpisodes:
    """Frames in memory, read as ``EpisodeShards`` reads them: ``frames``, ``table``, ``close``, ``len``.

    The episode table's label and hit frame are given (or drawn) here, so that two copies with the
    same frames can differ in everything else; reading an episode's stored fields (physical state,
    actions) fails, as a label-free method never does.

    Args:
        frames: one (T, H, W, 3) uint8 array per episode.
        labels: each episode's label (default: alternating 0 and 1).
        hit_frames: each episode's first frame with a lit button (default: its last frame).
    """

    def __init__(
        self,
        frames: list[NDArray[np.uint8]],
        labels: list[int] | None = None,
        hit_frames: list[int] | None = None,
    ) -> None:
        self._frames = frames
        n = len(frames)
        self._table = {
            "id": np.arange(n, dtype=np.int64),
            "label": np.asarray(labels if labels is not None else np.arange(n) % 2, dtype=np.int64),
            "hit_frame": np.asarray(
                hit_frames if hit_frames is not None else [len(f) - 1 for f in frames], dtype=np.int64
            ),
            "length": np.asarray([len(f) for f in frames], dtype=np.int64),
        }

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> None:
        raise AssertionError("a label-free method read an episode's stored fields")

    def frames(self, index: int, start: int = 0, stop: int | None = None) -> NDArray[np.uint8]:
        return self._frames[index][start:stop]

    def table(self) -> dict[str, NDArray[np.int64]]:
        return {k: v.copy() for k, v in self._table.items()}

    def close(self) -> None:
        pass


def coded_episodes(lengths: list[int], size: int = 16) -> ArrayEpisodes:
    """Episodes whose frame t of episode e has red = t and green = e everywhere, and a white square
    (4 px) that moves 2 px right each frame, so that every window moves."""
    episodes = []
    for e, length in enumerate(lengths):
        frames = np.zeros((length, size, size, 3), np.uint8)
        frames[..., 0] = np.arange(length, dtype=np.uint8)[:, None, None]
        frames[..., 1] = e
        for t in range(length):
            x = (2 * t) % (size - 4)
            frames[t, 2:6, x : x + 4, 2] = 255
        episodes.append(frames)
    return ArrayEpisodes(episodes)


def decode_time(frames: Tensor) -> NDArray[np.int64]:
    """The frame times painted by ``coded_episodes``: (..., 3, H, W) float in [0, 1] -> (...)."""
    return torch.round(frames[..., 0, 0, 0] * 255).long().numpy()


def decode_episode(frames: Tensor) -> NDArray[np.int64]:
    """The episodes painted by ``coded_episodes``: (..., 3, H, W) float in [0, 1] -> (...)."""
    return torch.round(frames[..., 1, 0, 0] * 255).long().numpy()


def puck_episodes(n: int, length: int, size: int = 16, seed: int = 0) -> ArrayEpisodes:
    """``n`` episodes of ``synthetic.moving_puck_clips`` (a bouncing puck, a sliding bar), uint8 frames."""
    from tests.learn.synthetic import moving_puck_clips

    clips = moving_puck_clips(n, length, size=size, puck=3, seed=seed)  # (n, T, 3, H, W)
    frames = (clips.movedim(2, -1) * 255).round().to(torch.uint8).numpy()
    return ArrayEpisodes(list(frames))
