"""``composite``: the LSTM autoencoder, future predictor and composite model of Srivastava et al. 2015,
with convolutional LSTMs.

An encoder (the shared ``FrameEncoder``) reads a clip of ``frames_in`` frames; its final state is
the clip's representation (section 2.2). Decoders start from that state: one reconstructs
the input frames in reverse order (section 2.2), one predicts the ``frames_future`` frames that
follow (section 2.3); ``decoders`` picks one or both (the composite model, section 2.5), and
``conditional`` feeds each decoder the frame before the one it outputs (section 2.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
from airhockey.learn.nn.autoencoder import FrameEncoder
from airhockey.learn.nn.convlstm import ConvLSTM, State
from airhockey.learn.nn.encoder import PretextModel
from airhockey.ranges import check_fields

DECODERS = {"reconstruct": ("reconstruct",), "predict": ("predict",), "both": ("reconstruct", "predict")}
"""``decoders`` setting -> the decoders built: the autoencoder, the future predictor, the composite model."""


@dataclass(frozen=True)
class CompositeConfig:
    """Settings of the ``composite`` method: the encoder's sizes, the decoders, the clips, the loss."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The shared frame encoder's sizes (each decoder's ConvLSTMs have the same)."""
    decoders: str = "both"
    """``reconstruct`` (the autoencoder), ``predict`` (the future predictor) or ``both`` (the composite)."""
    conditional: bool = False
    """Feed each decoder the frame before the one it outputs (the paper's section 2.4), or nothing."""
    frames_in: FrameCount = 8
    """Frames the encoder reads (and the reconstruction decoder outputs, in reverse order), 1-1,024."""
    frames_future: FrameCount = 3
    """Frames the future decoder predicts after the input frames, 1-1,024."""
    composite: bool = True
    """Decoders output a mask and an image composited over the clip's last frame (True), or the image."""
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
        if self.decoders not in DECODERS:
            raise ValueError(f"decoders must be one of {', '.join(DECODERS)}, got {self.decoders!r}")

    @property
    def clip_length(self) -> int:
        """Frames in a training clip: the input frames and the future frames after them."""
        return self.frames_in + self.frames_future


class FrameDecoder(nn.Module):
    """A decoder of Srivastava et al. 2015, convolutional: two ConvLSTMs unrolled from the encoder's state.

    Each step's hidden state is brought up to the frame's size by transposed convolutions that read
    the stem's features of the clip's last frame at each level (U-Net skips), then a convolution
    that also reads the last frame's pixels as 2x2 blocks outputs each pixel's 2x2 block (as in
    ``ConvLSTMAutoencoder``); with ``composite``, as a mask and an image over the last frame.

    Args:
        config: the encoder's sizes, which the decoder mirrors.
        conditional: each step reads the stem's features of the frame before its output.
        composite: output a mask and an image composited over the clip's last frame.
    """

    def __init__(self, config: EncoderConfig, conditional: bool, composite: bool) -> None:
        super().__init__()
        stem = config.stem_channels
        self.conditional, self.composite = conditional, composite
        # Unconditioned, the ConvLSTMs read a constant zero map: only their state carries the clip.
        in_channels = (stem[-1] if stem else 3) if conditional else 1
        self.lstm = ConvLSTM(in_channels, (config.hidden_channels,) * 2, config.kernel_size)
        self.ups = nn.ModuleList()
        c_in = config.hidden_channels
        for level in range(len(stem) - 1, 0, -1):
            up = nn.ConvTranspose2d(c_in + stem[level], stem[level - 1], 4, stride=2, padding=1)
            self.ups.append(nn.Sequential(up, nn.LeakyReLU(0.1)))
            c_in = stem[level - 1]
        self.block = 2 if stem else 1
        r2 = self.block**2
        self.output = nn.Conv2d(c_in + 3 * r2, (4 if composite else 3) * r2, 3, padding=1)
        if composite:
            with torch.no_grad():
                # The mask's logits start at -3 (5% open): an untrained decoder about copies the last frame.
                self.output.bias[:r2].fill_(-3.0)

    def head(self, hidden: Tensor, skips: list[Tensor]) -> Tensor:
        """Frames from hidden states (B, S, C, h, w) and the last frame's stem features: (B, S, 3, H, W)."""
        b, s = hidden.shape[:2]
        x = hidden.flatten(0, 1)  # (B S, C, h, w)
        for up, skip in zip(self.ups, reversed(skips[2:]), strict=True):
            x = up(torch.cat([x, skip.repeat_interleave(s, dim=0)], dim=1))  # twice the size
        last = skips[0].repeat_interleave(s, dim=0)  # (B S, 3, H, W)
        out = self.output(torch.cat([x, F.pixel_unshuffle(last, self.block)], dim=1))
        out = F.pixel_shuffle(out, self.block)  # (B S, 3 | 4, H, W)
        if self.composite:
            mask, image = torch.sigmoid(out[:, :1]), torch.sigmoid(out[:, 1:])
            out = last + mask * (image - last)
        else:
            out = torch.sigmoid(out)
        return out.unflatten(0, (b, s))

    def forward(
        self,
        encoder: FrameEncoder,
        state: list[State],
        skips: list[Tensor],
        steps: int,
        first: Tensor,
        teacher: Tensor | None = None,
    ) -> Tensor:
        """Unrolls ``steps`` frames from the encoder's final state.

        Args:
            encoder: the model's encoder, whose stem reads a conditional decoder's inputs.
            state: the encoder's final ``(h, c)`` per layer.
            skips: the stem features of the clip's last frame, ``FrameEncoder.stem_features``.
            steps: frames to output.
            first: (B, 3, H, W), the frame a conditional decoder reads at its first step.
            teacher: (B, steps - 1, 3, H, W), the true frames a conditional decoder reads at the
                later steps (training); None feeds it its own outputs.

        Returns:
            (B, steps, 3, H, W) in [0, 1].
        """
        b = first.shape[0]
        if not self.conditional:
            zeros = skips[-1].new_zeros(b, steps, 1, *skips[-1].shape[2:])  # (B, S, 1, h, w)
            return self.head(self.lstm(zeros, state)[0], skips)
        if teacher is not None:
            inputs = torch.cat([first[:, None], teacher], dim=1).flatten(0, 1)  # (B S, 3, H, W)
            stem = encoder.stem_features(inputs)[-1].unflatten(0, (b, steps))
            return self.head(self.lstm(stem, state)[0], skips)
        outputs, previous = [], first
        for _ in range(steps):
            hidden, state = self.lstm(encoder.stem_features(previous)[-1][:, None], state)
            previous = self.head(hidden, skips)[:, 0]
            outputs.append(previous)
        return torch.stack(outputs, dim=1)


class CompositeModel(PretextModel):
    """The models of Srivastava et al. 2015 on frames: a recurrent encoder, a reconstruction and/or a
    future decoder.

    Args:
        config: the method's settings.
    """

    def __init__(self, config: CompositeConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = FrameEncoder(config.encoder)
        self.decoders = nn.ModuleDict(
            {
                name: FrameDecoder(config.encoder, config.conditional, config.composite)
                for name in DECODERS[config.decoders]
            }
        )

    def forward(self, frames: Tensor, future: int = 0, teacher: Tensor | None = None) -> dict[str, Tensor]:
        """Reads a clip and decodes it.

        Args:
            frames: (B, T, 3, H, W) in [0, 1], the input clip.
            future: frames the future decoder predicts (ignored without one).
            teacher: (B, future, 3, H, W), the true future frames, which conditional decoders read
                at training time (the reconstruction decoder reads the input frames); None feeds
                them their own outputs.

        Returns:
            ``reconstruct``: (B, T, 3, H, W), the input frames in reverse order; ``predict``:
            (B, future, 3, H, W), the frames after the clip; each where the decoder exists.
        """
        b, t = frames.shape[:2]
        skips = self.encoder.stem_features(frames[:, -1])  # [(B, 3, H, W), ..., (B, C_stem, h, w)]
        stem = self.encoder.stem_features(frames.flatten(0, 1))[-1].unflatten(0, (b, t))
        _, state = self.encoder.lstm(stem)
        out = {}
        if "reconstruct" in self.decoders:
            reverse = frames.flip(1)  # (B, T, 3, H, W): the last frame first
            # Its first output is the last input frame: a conditional decoder reads a blank frame there.
            first = torch.zeros_like(frames[:, 0])
            out["reconstruct"] = self.decoders["reconstruct"](
                self.encoder, state, skips, t, first, reverse[:, :-1] if teacher is not None else None
            )
        if "predict" in self.decoders and future > 0:
            out["predict"] = self.decoders["predict"](
                self.encoder,
                state,
                skips,
                future,
                frames[:, -1],
                teacher[:, :-1] if teacher is not None else None,
            )
        return out


class Composite(FramePrediction[CompositeConfig]):
    """The LSTM autoencoder, future predictor and composite model (Srivastava et al. 2015, sections
    2.2-2.5), on frames.

    The loss is the sum over decoders of the moving-pixel-weighted squared error of their frames.
    Validation scores the future decoder's first frame (next-frame MSE, PSNR, SSIM, moving-pixel
    MSE against copying the last input frame and the mean frame), its whole rollout, and the
    reconstruction; the lowest validation loss picks the best checkpoint (the autoencoder alone
    has no future to score). Classifiers read the shared ``FrameEncoder``, as for ``next_frame``.

    Deviations from the paper, which used fully connected LSTMs of 2048 units on 64x64 patches or
    on percepts of a pretrained convolutional net:

    - Convolutional LSTMs (the shared ``FrameEncoder``'s stem and two ConvLSTMs; the decoders
      mirror them), as our inputs are frames, and so that classifiers compare objectives, not
      backbones. The paper's future work proposes applying the model convolutionally.
    - Each decoder's output layers read the clip's last frame (stem features as U-Net skips, and
      a mask that composites the output over it), so that the representation need not carry the
      static table's pixels, only what moved; ``composite=False`` drops the mask.
    - Conditional decoders read the true previous frame at training time (teacher forcing) and
      their own outputs at validation and prediction; the paper's read their generated outputs.
    - Squared error with moving pixels weighed more (``moving_weight``) instead of cross-entropy
      (the paper's loss for binary digits; it used squared error on natural patches).
    - Clips of 8 input and 3 future frames (the paper: 10 + 10 on digits, 16 + 13 on percepts).
    """

    name = "composite"
    summary = "ConvLSTM encoder; decoders reconstruct the clip in reverse and/or predict its future"
    source = "Srivastava et al. 2015, sections 2.2-2.5"
    config_class = CompositeConfig
    selection_metric = "val_loss"
    log_metrics = ("val_mse", "val_reconstruct_mse", "baseline_copy_last_mse")

    def build_model(self) -> CompositeModel:
        return CompositeModel(self.config)

    def build_encoder(self) -> FrameEncoder:
        return FrameEncoder(self.config.encoder)

    def split(self, clip: Tensor) -> tuple[Tensor, Tensor]:
        """A clip (B, L, 3, H, W) -> its input frames (B, T, ...) and future frames (B, F, ...)."""
        return clip[:, : self.config.frames_in], clip[:, self.config.frames_in :]

    def decoded_loss(self, out: dict[str, Tensor], clip: Tensor) -> Tensor:
        """The summed moving-pixel-weighted MSE of the decoders' outputs ``out`` on their targets."""
        c = self.config
        frames, future = self.split(clip)
        before = torch.cat(
            [clip[:, :1], clip[:, :-1]], dim=1
        )  # the true frame before each (the first: itself)
        weights = c.moving_weight, c.moving_threshold
        losses = []
        if "reconstruct" in out:
            target, previous = frames.flip(1), before[:, : c.frames_in].flip(1)
            losses.append(weighted_mse(out["reconstruct"], target, previous, *weights))
        if "predict" in out:
            losses.append(weighted_mse(out["predict"], future, before[:, c.frames_in :], *weights))
        return torch.stack(losses).sum()

    def loss(self, model: CompositeModel, clip: Tensor) -> Tensor:  # type: ignore[override]
        """Decodes the input frames of each clip (B, L, 3, H, W); their reverse and the future frames
        are the targets."""
        frames, future = self.split(clip)
        teacher = future if self.config.conditional else None
        return self.decoded_loss(model(frames, self.config.frames_future, teacher), clip)

    def score_model(self, model: CompositeModel, clip: Tensor, scores: PredictionScores) -> None:  # type: ignore[override]
        """The next frame is the first future frame, predicted from the input frames (``val_*``); the
        rollout is every future frame, the future decoder's own outputs fed back when conditional
        (``val_rollout_*``); the reconstruction is every input frame (``val_reconstruct_*``);
        ``val_loss`` is the training loss, teacher-forced when conditional."""
        c = self.config
        frames, future = self.split(clip)
        out = model(frames, c.frames_future)  # conditional decoders read their own outputs
        # The training loss: conditional decoders read the true frames there.
        trained = model(frames, c.frames_future, future) if c.conditional else out
        scores.mean("val_loss", self.decoded_loss(trained, clip).item(), clip.shape[0])
        targets = self.scored_frames(clip)
        if "predict" in out:
            scores.frames("val", out["predict"][:, 0], *targets["next"])
            scores.frames("val_rollout", out["predict"].flatten(0, 1), *targets["rollout"])
        if "reconstruct" in out:
            scores.frames("val_reconstruct", out["reconstruct"].flatten(0, 1), *targets["reconstruct"])

    def score_baselines(self, mean: Tensor, clip: Tensor, scores: PredictionScores) -> None:
        """Copy-last predicts the last input frame for the next frame, the rollout and the
        reconstruction (``baseline_copy_last{,_rollout,_reconstruct}_*``); the mean frame predicts
        the next frame (``baseline_mean_frame_*``)."""
        frames, future = self.split(clip)
        last = frames[:, -1:]  # (B, 1, 3, H, W)
        targets = self.scored_frames(clip)
        scores.frames("baseline_copy_last", last[:, 0], *targets["next"])
        scores.frames("baseline_copy_last_rollout", last.expand_as(future).flatten(0, 1), *targets["rollout"])
        scores.frames(
            "baseline_copy_last_reconstruct", last.expand_as(frames).flatten(0, 1), *targets["reconstruct"]
        )
        scores.frames("baseline_mean_frame", mean.expand_as(future[:, 0]), *targets["next"])

    def scored_frames(self, clip: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """The true frames that validation scores in a batch of clips (B, L, 3, H, W), each with the
        true frame before it (for the moving-pixel mask): ``next`` (B, 3, H, W), ``rollout``
        (B F, 3, H, W) and ``reconstruct`` (B T, 3, H, W), the input frames in reverse order."""
        frames, future = self.split(clip)
        return {
            "next": (future[:, 0], frames[:, -1]),
            "rollout": (future.flatten(0, 1), clip[:, self.config.frames_in - 1 : -1].flatten(0, 1)),
            "reconstruct": (
                frames.flip(1).flatten(0, 1),
                torch.cat([frames[:, :1], frames[:, :-1]], dim=1).flip(1).flatten(0, 1),
            ),
        }

    def describe(self, metrics: dict[str, Any]) -> str:
        m = metrics
        parts = [f"val loss {m['val_loss']:.6f}"]
        if "val_mse" in m:
            parts.append(
                f"next-frame MSE {m['val_mse']:.6f} vs copy-last {m['baseline_copy_last_mse']:.6f}; "
                f"moving-pixel MSE {m['val_moving_mse']:.5f} "
                f"vs copy-last {m['baseline_copy_last_moving_mse']:.5f}"
            )
        if "val_reconstruct_mse" in m:
            parts.append(f"reconstruction MSE {m['val_reconstruct_mse']:.6f}")
        return ", ".join(parts)

    @property
    def predicts_frames(self) -> bool:
        """False for the autoencoder alone (``decoders=reconstruct``): it has no future decoder."""
        return "predict" in DECODERS[self.config.decoders]

    @torch.no_grad()
    def predict_episode(self, model: CompositeModel, frames: Tensor, steps: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Each frame t predicted by the future decoder from the (up to) ``frames_in`` true frames before
        it, and ``steps`` ahead from those before t - steps + 1 (see ``PretextMethod.predict_episode``).

        Raises:
            ValueError: for ``steps < 1``, or a model without a future decoder (``decoders=reconstruct``).
        """
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if "predict" not in model.decoders:
            raise ValueError(
                "this composite model has no future decoder (decoders=reconstruct): it predicts nothing"
            )
        one_step = torch.full_like(frames, math.nan)
        k_step = torch.full_like(frames, math.nan)
        for end in range(1, frames.shape[0]):
            window = frames[None, max(0, end - self.config.frames_in) : end]  # (1, <= frames_in, 3, H, W)
            predicted = model(window, steps)["predict"][0]  # (steps, 3, H, W): frames end .. end + steps - 1
            one_step[end] = predicted[0]
            if end + steps - 1 < frames.shape[0]:
                k_step[end + steps - 1] = predicted[-1]
        return one_step.clamp(0, 1), k_step.clamp(0, 1)
