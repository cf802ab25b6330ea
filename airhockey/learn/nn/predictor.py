"""Models that predict a video one frame at a time: read frames, predict each next one, and past the
given frames feed their predictions back (``ConvLSTMAutoencoder``, ``lvln``'s ``LVLNModel``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from airhockey.learn.nn.encoder import PretextModel


class StepPredictor(PretextModel, ABC):
    """A next-frame predictor with a recurrent state; subclasses implement ``advance``."""

    @abstractmethod
    def advance(self, frames: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Reads frames and predicts, after each, the frame that follows it.

        Args:
            frames: (B, T, 3, H, W) in [0, 1], the frames after those ``state`` has seen.
            state: what the model carries from earlier frames, or None at a sequence's start.

        Returns:
            Predictions (B, T, 3, H, W), where ``[:, t]`` predicts the frame after
            ``frames[:, t]``, and the state after the last frame.
        """

    def forward(self, frames: Tensor, future: int = 0) -> Tensor:
        """One-step predictions for the given frames, then ``future`` more by feeding predictions back.

        Args:
            frames: (B, T, 3, H, W) in [0, 1].
            future: extra steps past the last frame, each reading the previous prediction.

        Returns:
            (B, T + future, 3, H, W): ``[:, t]`` predicts frame t + 1 of the sequence that
            ``frames`` begins.
        """
        predictions, state = self.advance(frames)
        return torch.cat([predictions, self.rollout(predictions[:, -1:], state, future)], dim=1)

    def rollout(self, prediction: Tensor, state: Any, steps: int) -> Tensor:
        """Continues a sequence from its latest prediction by feeding each prediction back.

        Args:
            prediction: (B, 1, 3, H, W), the prediction made with ``state``.
            state: the state after the frame that ``prediction`` follows.
            steps: how many further frames to predict.

        Returns:
            (B, steps, 3, H, W), the frames after the one ``prediction`` stands for.
        """
        outputs = []
        for _ in range(steps):
            prediction, state = self.advance(prediction, state)
            outputs.append(prediction)
        return torch.cat(outputs, dim=1) if outputs else prediction[:, :0]
