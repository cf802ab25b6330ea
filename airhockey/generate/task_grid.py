"""A picture of a task preset: a few frames of a few of its episodes, for the documentation.

``python -m airhockey.generate.task_grid docs`` writes ``docs/tasks_<name>.png`` for every preset
of ``airhockey.tasks.TASKS``: each row one episode (of the ``train`` split, and for a task with
held-out layouts a last row of the ``test`` split), from its first frame to its last in equal steps.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from airhockey.generate.executor import generate
from airhockey.generate.shards import open_shards
from airhockey.tasks import TASKS, get_task

GAP = 2
"""Pixels of white between two frames of the grid."""


def _rows(name: str, split: str, episodes: int, frames: int, size: int, seed: int) -> list[NDArray[np.uint8]]:
    """One row of ``frames`` frames per episode of a tiny dataset of the task's ``split`` data."""
    config = get_task(name).generate_config(
        episodes, seed, split, width=size, height=size, shard_size=episodes, lockstep_envs=4
    )
    with tempfile.TemporaryDirectory() as tmp:
        generate(config, Path(tmp) / "data", workers=1, progress=False)
        with open_shards(Path(tmp) / "data") as shards:
            return [_row(shards[i]["frames"], frames) for i in range(episodes)]


def _row(clip: NDArray[np.uint8], frames: int) -> NDArray[np.uint8]:
    """(H, frames * (W + GAP) - GAP, 3): ``frames`` frames of the (T, H, W, 3) clip, first to last."""
    picks = np.linspace(0, len(clip) - 1, frames).round().astype(int)
    gap = np.full((clip.shape[1], GAP, 3), 255, dtype=np.uint8)
    parts = [part for t in picks for part in (clip[t], gap)][:-1]
    return np.concatenate(parts, axis=1)


def task_grid(
    name: str, out: Path, episodes: int = 4, frames: int = 6, size: int = 96, seed: int = 0
) -> Path:
    """Writes a PNG grid of ``episodes`` episodes x ``frames`` frames of the task ``name``.

    Args:
        name: a task of ``TASKS``.
        out: the PNG file to write.
        episodes: rows (of the ``train`` split; a task with held-out layouts adds one ``test`` row).
        frames: frames per row, evenly spaced from the first to the last.
        size: frame width and height in pixels.
        seed: the generator seed of the tiny dataset the frames come from.

    Returns:
        ``out``.
    """
    import imageio.v3 as iio

    rows = _rows(name, "train", episodes, frames, size, seed)
    if get_task(name).heldout_layouts:
        rows += _rows(name, "test", 1, frames, size, seed)
    gap = np.full((GAP, rows[0].shape[1], 3), 255, dtype=np.uint8)
    grid = np.concatenate([part for row in rows for part in (row, gap)][:-1], axis=0)
    out = Path(out)
    iio.imwrite(out, grid)
    return out


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    for task_name in TASKS:
        print(task_grid(task_name, folder / f"tasks_{task_name}.png"))
