"""A predictive method's predictions of a validation clip as one image, for the TensorBoard log."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from airhockey.learn.methods.base import PretextMethod

PREVIEW_FRAMES = 8
"""At most this many frames of the clip are shown, the last ones (those with most history)."""


def prediction_image(
    method: PretextMethod[Any], model: torch.nn.Module, clip: Any, device: torch.device
) -> NDArray[np.uint8] | None:
    """The true frames of a clip above the method's one-step predictions of them.

    Runs the model without gradients and draws no random numbers from the global generators (their
    state is restored), so a seeded run trains the same with or without the image.

    Args:
        method: a method that predicts frames (``method.predicts_frames``).
        model: its model, in eval mode.
        clip: a validation sample: (L, 3, H, W) in [0, 1] for the frame-prediction methods.
        device: where the model is.

    Returns:
        (2H, n W, 3) uint8: up to ``PREVIEW_FRAMES`` frames, truth above prediction; a frame with
        too little history to be predicted is black. None for a sample that is not a clip.
    """
    if not (method.predicts_frames and isinstance(clip, Tensor) and clip.dim() == 4):
        return None
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        one_step, _ = method.predict_episode(model, clip.to(device), 1)  # (L, 3, H, W)
    shown = slice(-min(PREVIEW_FRAMES, len(clip)), None)
    rows = [clip[shown].cpu(), one_step[shown].nan_to_num(0.0).cpu()]
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)  # (3, 2H, n W)
    return (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
