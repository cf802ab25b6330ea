"""Tiny synthetic videos for the learning tests: a small dark puck and a green bar on a light table."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

BACKGROUND = (0.95, 0.95, 0.95)
PUCK = (0.1, 0.1, 0.15)
BAR = (0.3, 1.0, 0.1)


def moving_puck_clips(n: int, length: int, size: int = 32, puck: int = 4, seed: int = 0) -> Tensor:
    """Clips of a puck moving at a constant velocity (bouncing off the walls) and a bar sliding sideways.

    Args:
        n: number of clips.
        length: frames per clip.
        size: frame height and width in pixels.
        puck: side of the square puck in pixels.
        seed: seed of the start positions and velocities.

    Returns:
        (n, length, 3, size, size) float32 in [0, 1].
    """
    rng = np.random.default_rng(seed)
    span = size - puck
    pos = rng.uniform(0, span, (n, 2))
    vel = rng.uniform(1.0, 2.5, (n, 2)) * rng.choice([-1, 1], (n, 2))
    bar_x = rng.uniform(0, size - 8, n)
    bar_v = rng.uniform(-1.5, 1.5, n)
    clips = np.empty((n, length, 3, size, size), np.float32)
    clips[:] = np.asarray(BACKGROUND, np.float32)[:, None, None]
    for t in range(length):
        # Reflecting the unfolded trajectory into [0, span] makes the puck bounce off the walls.
        p = np.abs((pos + vel * t) % (2 * span) - span)
        p = np.rint(span - p).astype(int)
        bx = np.rint(np.clip(bar_x + bar_v * t, 0, size - 8)).astype(int)
        for i in range(n):
            clips[i, t, :, size - 3 : size - 1, bx[i] : bx[i] + 8] = np.asarray(BAR)[:, None, None]
            y, x = p[i]
            clips[i, t, :, y : y + puck, x : x + puck] = np.asarray(PUCK)[:, None, None]
    return torch.from_numpy(clips)
