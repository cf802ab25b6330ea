"""``next_frame``: the ConvLSTM autoencoder of Han et al. 2021 trained to predict the next frame
(sections 4.3-4.4).

The model (``learn.nn.autoencoder.ConvLSTMAutoencoder``) reads clips of ``frames_in +
frames_predicted`` consecutive frames, predicts every next frame, and past the context feeds its
predictions back (the rollout of Leuschner and Scheffczyk 2020); the loss is a moving-pixel-weighted
MSE. Validation scores one-step (and rollout) predictions with MSE, PSNR, SSIM and moving-pixel MSE
against copying the last frame and predicting the mean frame (``FramePrediction``); the lowest
validation MSE picks the best checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

import torch
from torch import Tensor

from airhockey.learn.config import (
    ClipCount,
    EncoderConfig,
    FrameCount,
    MovingThreshold,
    MovingWeight,
)
from airhockey.learn.methods.frame_prediction import (
    FramePrediction,
    PredictionScores,
    weighted_mse,
)
from airhockey.learn.nn.autoencoder import ConvLSTMAutoencoder, FrameEncoder
from airhockey.learn.nn.predictor import StepPredictor
from airhockey.ranges import Range, check_fields


@dataclass(frozen=True)
class NextFrameConfig:
    """Settings of the ``next_frame`` method: the autoencoder's sizes, its clips and its loss."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The shared frame encoder's sizes (the decoder mirrors them)."""
    output_time_kernel: Annotated[int, Range(1, 16)] = 2
    """Time steps the causal 3D-conv output layer spans (the current one and those before), 1-16."""
    composite: bool = True
    """Predict a mask and an image composited over the last frame (True), or the image alone."""
    frames_in: FrameCount = 8
    """Context frames fed to the model, each followed by a one-step prediction of the next (1-1,024)."""
    frames_predicted: FrameCount = 1
    """Frames predicted past the context (1-1,024); beyond the first, predictions are fed back as
    inputs."""
    clip_stride: FrameCount = 4
    """Frames between the starts of successive training and validation clips of an episode (1-1,024)."""
    moving_weight: MovingWeight = 2.0
    """Extra weight of moving pixels in the loss (theirs is 1 + moving_weight, the rest 1), 0-1,000."""
    moving_threshold: MovingThreshold = 0.05
    """Change in [0, 1) units that makes a pixel moving, in the loss weights and the metrics."""
    mean_frame_clips: ClipCount = 512
    """Training clips, evenly spread, whose frames average into the mean-frame baseline (1 to 10^6)."""

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def clip_length(self) -> int:
        """Frames in a training clip: the context and the frames predicted after it."""
        return self.frames_in + self.frames_predicted


class NextFrame(FramePrediction[NextFrameConfig]):
    """Next-frame prediction with the ConvLSTM autoencoder (Han et al. 2021, sections 4.3-4.4).

    Deviations from the paper are the model's (see ``ConvLSTMAutoencoder``) and the loss weight on
    moving pixels (``moving_weight``), without which a 5-pixel puck on a static table is cheapest
    to predict as background.
    """

    name = "next_frame"
    summary = "ConvLSTM autoencoder predicting the next frame (moving-pixel-weighted MSE)"
    source = "Han et al. 2021, sections 4.3-4.4"
    config_class = NextFrameConfig
    selection_metric = "val_mse"
    log_metrics = ("val_moving_mse", "baseline_copy_last_mse")

    def build_model(self) -> ConvLSTMAutoencoder:
        c = self.config
        return ConvLSTMAutoencoder(c.encoder, c.output_time_kernel, c.composite)

    def build_encoder(self) -> FrameEncoder:
        return FrameEncoder(self.config.encoder)

    def loss(self, model: StepPredictor, clip: Tensor) -> Tensor:  # type: ignore[override]
        """The model reads the first ``frames_in`` frames of each clip (B, L, 3, H, W) and predicts
        every next frame, feeding its predictions back past the context: frames 1..L-1 are targets."""
        c = self.config
        pred = model(clip[:, : c.frames_in], future=c.frames_predicted - 1)  # (B, L - 1, 3, H, W)
        return weighted_mse(pred, clip[:, 1:], clip[:, :-1], c.moving_weight, c.moving_threshold)

    def score_model(self, model: StepPredictor, clip: Tensor, scores: PredictionScores) -> None:  # type: ignore[override]
        """In a clip of L frames the model predicts frame t + 1 from true frames 0..t, for t = 0..L-2
        (``val_*``); with ``frames_predicted > 1`` the rollout past the first ``frames_in`` frames
        (predictions fed back) is scored as well (``val_rollout_*``)."""
        c = self.config
        targets = self.scored_frames(clip)
        scores.frames("val", model(clip[:, :-1]).flatten(0, 1), *targets["next"])
        if c.frames_predicted > 1:
            k = c.frames_in
            predicted = model(clip[:, :k], future=c.frames_predicted - 1)[:, k - 1 :]
            scores.frames("val_rollout", predicted.flatten(0, 1), *targets["rollout"])

    def score_baselines(self, mean: Tensor, clip: Tensor, scores: PredictionScores) -> None:
        """Copy-last predicts frame t + 1 as frame t (``baseline_copy_last_*``), the mean frame predicts
        ``mean`` (``baseline_mean_frame_*``); the rollout's copy-last repeats the last context frame
        (``baseline_copy_last_rollout_*``)."""
        c = self.config
        targets = self.scored_frames(clip)
        target, previous = targets["next"]
        scores.frames("baseline_copy_last", previous, target, previous)
        scores.frames("baseline_mean_frame", mean.expand_as(target), target, previous)
        if c.frames_predicted > 1:
            k = c.frames_in
            last = clip[:, k - 1 : k].expand_as(clip[:, k:]).flatten(0, 1)
            scores.frames("baseline_copy_last_rollout", last, *targets["rollout"])

    def scored_frames(self, clip: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """The true frames that validation scores in a batch of clips (B, L, 3, H, W), each with the
        true frame before it (for the moving-pixel mask): ``next``, frames 1..L-1 (B (L-1), 3, H, W),
        and ``rollout``, the frames after the context (B (L-k), 3, H, W)."""
        k = self.config.frames_in
        return {
            "next": (clip[:, 1:].flatten(0, 1), clip[:, :-1].flatten(0, 1)),
            "rollout": (clip[:, k:].flatten(0, 1), clip[:, k - 1 : -1].flatten(0, 1)),
        }

    def describe(self, metrics: dict[str, Any]) -> str:
        m, gain = metrics, metrics["val_mse_vs_copy_last"]
        return (
            f"val MSE {m['val_mse']:.6f} vs copy-last {m['baseline_copy_last_mse']:.6f} "
            f"({abs(gain):.1%} {'lower' if gain >= 0 else 'higher'}), "
            f"mean-frame {m['baseline_mean_frame_mse']:.6f}; moving-pixel MSE {m['val_moving_mse']:.5f} "
            f"vs copy-last {m['baseline_copy_last_moving_mse']:.5f}"
        )

    @torch.no_grad()
    def predict_episode(self, model: StepPredictor, frames: Tensor, steps: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
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
