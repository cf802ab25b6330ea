"""``next_frame``: the ConvLSTM autoencoder of seed 000 trained to predict the next frame (sections 4.3-4.4).

The model (``learn.autoencoder.ConvLSTMAutoencoder``) reads clips of ``frames_in +
frames_predicted`` consecutive frames, predicts every next frame, and past the context feeds its
predictions back (seed 001's rollout); the loss is a moving-pixel-weighted MSE. Validation scores
one-step (and rollout) predictions with MSE, PSNR, SSIM and moving-pixel MSE against copying the
last frame and predicting the mean frame; the lowest validation MSE picks the best checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.config import EncoderConfig
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.autoencoder import ConvLSTMAutoencoder, FrameEncoder
from airhockey.learn.nn.metrics import FramePredictionStats, moving_mask


@dataclass(frozen=True)
class NextFrameConfig:
    """Settings of the ``next_frame`` method: the autoencoder's sizes, its clips and its loss."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The shared frame encoder's sizes (the decoder mirrors them)."""
    output_time_kernel: int = 2
    """Time steps the causal 3D-conv output layer spans (the current one and those before)."""
    composite: bool = True
    """Predict a mask and an image composited over the last frame (True), or the image alone."""
    frames_in: int = 8
    """Context frames fed to the model, each followed by a one-step prediction of the next."""
    frames_predicted: int = 1
    """Frames predicted past the context; beyond the first, predictions are fed back as inputs."""
    clip_stride: int = 4
    """Frames between the starts of successive training and validation clips of an episode."""
    moving_weight: float = 2.0
    """Extra weight of moving pixels in the loss (theirs is 1 + moving_weight, the rest 1)."""
    moving_threshold: float = 0.05
    """Change in [0, 1] units that makes a pixel moving, in the loss weights and the metrics."""
    mean_frame_clips: int = 512
    """Training clips, evenly spread, whose frames average into the mean-frame baseline."""

    def __post_init__(self) -> None:
        for name in (
            "output_time_kernel",
            "frames_in",
            "frames_predicted",
            "clip_stride",
            "mean_frame_clips",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.moving_weight < 0 or not 0 <= self.moving_threshold < 1:
            raise ValueError("moving_weight must be non-negative and moving_threshold in [0, 1)")

    @property
    def clip_length(self) -> int:
        """Frames in a training clip: the context and the frames predicted after it."""
        return self.frames_in + self.frames_predicted


def weighted_mse(
    pred: Tensor, target: Tensor, previous: Tensor, moving_weight: float, threshold: float
) -> Tensor:
    """The training loss: squared error with weight ``1 + moving_weight`` on moving pixels, averaged.

    Args:
        pred, target, previous: (..., 3, H, W): predictions, true frames, and the true frames before.
    """
    weight = 1.0 + moving_weight * moving_mask(previous, target, threshold).to(pred.dtype)
    return (weight * (pred - target) ** 2).mean()


def mean_frame(dataset: Dataset[Tensor], max_clips: int) -> Tensor:
    """The per-pixel mean (3, H, W) of the frames of up to ``max_clips`` clips spread over ``dataset``."""
    n = len(dataset)  # type: ignore[arg-type]
    picks = np.unique(np.linspace(0, n - 1, min(n, max_clips)).round().astype(int))
    total = sum(dataset[int(i)].double().mean(dim=0) for i in picks)
    return (total / len(picks)).float()


class NextFrame(PretextMethod[NextFrameConfig]):
    """Next-frame prediction with the ConvLSTM autoencoder (seed 000 sections 4.3-4.4).

    Deviations from the seed are the model's (see ``ConvLSTMAutoencoder``) and the loss weight on
    moving pixels (``moving_weight``), without which a 5-pixel puck on a static table is cheapest
    to predict as background.
    """

    name = "next_frame"
    summary = "ConvLSTM autoencoder predicting the next frame (moving-pixel-weighted MSE)"
    source = "seed 000 sections 4.3-4.4"
    config_class = NextFrameConfig
    selection_metric = "val_mse"
    selection_mode = "min"
    log_metrics = ("val_moving_mse", "baseline_copy_last_mse")
    predictive = True

    def build_model(self) -> ConvLSTMAutoencoder:
        c = self.config
        return ConvLSTMAutoencoder(c.encoder, c.output_time_kernel, c.composite)

    def build_encoder(self) -> FrameEncoder:
        return FrameEncoder(self.config.encoder)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        from airhockey.learn.data import ClipDataset

        return ClipDataset(episodes, self.config.clip_length, ids, self.config.clip_stride)

    def loss(self, model: ConvLSTMAutoencoder, clip: Tensor) -> Tensor:  # type: ignore[override]
        """The model reads the first ``frames_in`` frames of each clip (B, L, 3, H, W) and predicts
        every next frame, feeding its predictions back past the context: frames 1..L-1 are targets."""
        c = self.config
        pred = model(clip[:, : c.frames_in], future=c.frames_predicted - 1)  # (B, L - 1, 3, H, W)
        return weighted_mse(pred, clip[:, 1:], clip[:, :-1], c.moving_weight, c.moving_threshold)

    def baselines(self, train_set: Dataset, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        mean = mean_frame(train_set, self.config.mean_frame_clips)
        return self._scores(val_loader, device, mean=mean)

    def evaluate(
        self, model: ConvLSTMAutoencoder, val_loader: DataLoader, device: torch.device
    ) -> dict[str, float]:  # type: ignore[override]
        return self._scores(val_loader, device, model=model)

    @torch.no_grad()
    def _scores(
        self,
        loader: DataLoader,
        device: torch.device,
        *,
        model: ConvLSTMAutoencoder | None = None,
        mean: Tensor | None = None,
    ) -> dict[str, float]:
        """Scores of the model, or of the baselines, on every one-step prediction in the loader's clips.

        In a clip of L frames the model predicts frame t + 1 from true frames 0..t, for t = 0..L-2;
        the copy-last baseline predicts frame t, the mean-frame baseline predicts ``mean``. With
        ``frames_predicted > 1`` the rollout past the first ``frames_in`` frames (predictions fed
        back) is scored as well, against copying the last context frame.

        Returns:
            With a model ``val_{mse, psnr, ssim, moving_mse}`` (and ``val_rollout_*``); with a mean
            frame ``baseline_copy_last_*`` and ``baseline_mean_frame_*`` (and
            ``baseline_copy_last_rollout_*``).
        """
        c = self.config
        k, rollout = c.frames_in, c.frames_predicted > 1
        names = (["val"] + ["val_rollout"] * rollout) * (model is not None)
        names += (
            ["baseline_copy_last", "baseline_mean_frame"] + ["baseline_copy_last_rollout"] * rollout
        ) * (mean is not None)
        stats = {name: FramePredictionStats(c.moving_threshold) for name in names}
        for clip in loader:
            clip = clip.to(device)  # (B, L, 3, H, W)
            previous, target = clip[:, :-1].flatten(0, 1), clip[:, 1:].flatten(0, 1)  # (B (L-1), 3, H, W)
            # The rollout's targets: the frames after the context, and the true frames before them.
            future, before = clip[:, k:].flatten(0, 1), clip[:, k - 1 : -1].flatten(0, 1)
            if model is not None:
                stats["val"].update(model(clip[:, :-1]).flatten(0, 1), target, previous)
                if rollout:
                    predicted = model(clip[:, :k], future=c.frames_predicted - 1)[:, k - 1 :]
                    stats["val_rollout"].update(predicted.flatten(0, 1), future, before)
            if mean is not None:
                stats["baseline_copy_last"].update(previous, target, previous)
                stats["baseline_mean_frame"].update(mean.to(device).expand_as(target), target, previous)
                if rollout:
                    last = clip[:, k - 1 : k].expand_as(clip[:, k:]).flatten(0, 1)
                    stats["baseline_copy_last_rollout"].update(last, future, before)
        return {f"{name}_{key}": value for name, s in stats.items() for key, value in s.result().items()}

    def derived_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {"val_mse_vs_copy_last": 1.0 - metrics["val_mse"] / metrics["baseline_copy_last_mse"]}

    def describe(self, metrics: dict[str, Any]) -> str:
        m, gain = metrics, metrics["val_mse_vs_copy_last"]
        return (
            f"val MSE {m['val_mse']:.6f} vs copy-last {m['baseline_copy_last_mse']:.6f} "
            f"({abs(gain):.1%} {'lower' if gain >= 0 else 'higher'}), "
            f"mean-frame {m['baseline_mean_frame_mse']:.6f}; moving-pixel MSE {m['val_moving_mse']:.5f} "
            f"vs copy-last {m['baseline_copy_last_moving_mse']:.5f}"
        )

    @torch.no_grad()
    def predict_episode(
        self, model: ConvLSTMAutoencoder, frames: Tensor, steps: int
    ) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        one_step = torch.full_like(frames, math.nan)
        k_step = torch.full_like(frames, math.nan)
        state = None
        for t in range(frames.shape[0] - 1):
            pred, state = model.advance(frames[None, t : t + 1], state)  # (1, 1, 3, H, W)
            one_step[t + 1] = pred[0, 0]
            if t + steps < frames.shape[0]:
                ahead = model.rollout(pred, state, steps - 1)
                k_step[t + steps] = (ahead if steps > 1 else pred)[0, -1]
        return one_step.clamp(0, 1), k_step.clamp(0, 1)
