"""Prediction videos of predictive pretext methods: truth, one-step prediction, rollout, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from airhockey.errors import UserError
from airhockey.generate.rollout import make_env
from airhockey.generate.shards import open_shards
from airhockey.learn.device import check_device
from airhockey.learn.pretext.run import PretextRun
from airhockey.video import check_video_path, text_banner, write_video

PANELS = ("truth", "1 step", "{steps} steps")
"""The panels' titles, drawn above each panel."""


def _to_uint8(frames: Tensor) -> NDArray[np.uint8]:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) uint8."""
    return (frames.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def prediction_video(
    run: PretextRun, frames: NDArray[np.uint8], steps: int, out: str | Path, fps: float, device: str = "cpu"
) -> Path:
    """Writes an episode as three titled panels side by side: truth, one step ahead, ``steps`` ahead.

    Args:
        run: a pretext run of a predictive method.
        frames: (T, H, W, 3) uint8, a whole episode.
        steps: how far ahead the third panel predicts (predictions fed back).
        out: ``.mp4`` or ``.gif`` path.
        fps: frames per second of the video.
        device: torch device to run the model on.

    Returns:
        The path written. Panels without a prediction yet (the first frames) are black.

    Raises:
        UserError: for a method that does not predict frames, or frames of another size.
    """
    if not run.method.predicts_frames:
        raise UserError(f"method {run.method.name!r} does not predict frames: there is nothing to show")
    if tuple(frames.shape[1:3]) != run.image_size:
        raise UserError(f"the episode's frames are {tuple(frames.shape[1:3])}, the model's {run.image_size}")
    out = check_video_path(out)
    dev = check_device(device)
    model = run.model(dev)
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(dev).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        one_step, k_step = run.method.predict_episode(model, x, steps)
    panels = [frames, _to_uint8(one_step.nan_to_num(0.0)), _to_uint8(k_step.nan_to_num(0.0))]
    titled = []
    for panel, title in zip(panels, PANELS, strict=True):
        banner = text_banner(panel.shape[2], title.format(steps=steps))  # (h, W, 3)
        titled.append(np.concatenate([np.broadcast_to(banner, (len(panel), *banner.shape)), panel], axis=1))
    gap = np.full((*titled[0].shape[:2], 2, 3), 255, dtype=np.uint8)  # (T, H', 2, 3) white separator
    video: Sequence[NDArray[np.uint8]] = list(
        np.concatenate([titled[0], gap, titled[1], gap, titled[2]], axis=2)
    )
    return write_video(video, out, fps=fps)


def predict_dataset_episode(
    run: str | Path, data: str | Path, episode: int, out: str | Path, steps: int, device: str = "cpu"
) -> Path:
    """``prediction_video`` for a pretext run on one episode of a generated dataset.

    Args:
        run: a pretext run folder (its ``best.pt``) or checkpoint file.
        data: a dataset directory or shard file.
        episode: the episode's index in the dataset.
        out: ``.mp4`` or ``.gif`` path.
        steps: how far ahead the rollout panel predicts.
        device: torch device to run the model on.
    """
    opened = PretextRun.open(run)
    with open_shards(data) as episodes:
        if not 0 <= episode < len(episodes):
            raise UserError(f"episode must be in 0-{len(episodes) - 1}, got {episode}")
        record = episodes[episode]
        frames, env_kwargs = record["frames"], record["env_kwargs"]
    env = make_env({k: v for k, v in env_kwargs.items() if k != "render_mode"})
    fps = env.unwrapped.metadata["render_fps"]
    env.close()
    return prediction_video(opened, frames, steps, out, fps, device)
