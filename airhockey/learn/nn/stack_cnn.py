"""The practitioner's model: a small 2D CNN over k stacked frames and their differences, trained from scratch.

What a person without pretraining would train on k frames: the k RGB frames stacked along the
channels, as deep Q-networks read the last four Atari frames (Mnih et al. 2015, Methods,
"Preprocessing"), with the k - 1 differences of consecutive frames beside them, the cheap motion
input of Wang et al. 2016 ("RGB difference" among their network inputs; the stacked motion
channels of the two-stream temporal network, Simonyan and Zisserman 2014, section 3.1, are
optical flow instead). At k = 1 it reads the frame alone. While training it augments each sample
with a small random shift (the frames padded by repeating their edge pixels, then cropped back at
a random offset, as in Kostrikov et al. 2020; padding and cropping is the usual CIFAR
augmentation of He et al. 2016, section 4.2) and a mild brightness and contrast jitter; never a
horizontal flip, which would swap the left and right labels. The k frames of one sample share
their shift and jitter, so that their differences still show motion alone.

``FrameStackCNN`` is a ``VideoEncoder``: the classifier's head reads its feature map like any
other encoder's, and a ``StackCNNConfig`` (plain data in a checkpoint) rebuilds it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airhockey.learn.nn.encoder import VideoEncoder
from airhockey.ranges import Range, check_fields

Side = Annotated[int, Range(1, 4096)]
"""A frame side in pixels, 1-4,096."""


@dataclass(frozen=True)
class StackCNNConfig:
    """Sizes and training augmentation of ``FrameStackCNN``."""

    image_size: tuple[Side, Side] = (64, 64)
    """Frame height and width in pixels (1-4,096 each); the comparison sets it from the data."""
    frames: Annotated[int, Range(1, 256)] = 1
    """k, 1-256: the frames it reads, the last k of its input (the classifier's ``context_frames``)."""
    channels: tuple[Annotated[int, Range(1, 1024)], ...] = (32, 64, 64)
    """Channels of the 3x3 stride-2 convolutions, one per halving of the frame (1-1,024 each; 1-8 of
    them); the last one's output is the feature map."""
    shift: Annotated[int, Range(0, 64)] = 4
    """Largest random shift in pixels while training, 0-64 (0: none)."""
    brightness: Annotated[float, Range(0, 1)] = 0.1
    """Largest brightness change while training, in [0, 1] (0: none): each sample is offset by a
    uniform draw in [-brightness, brightness]."""
    contrast: Annotated[float, Range(0, 1)] = 0.1
    """Largest contrast change while training, in [0, 1] (0: none): each sample's deviations from its
    mean are scaled by a uniform draw in [1 - contrast, 1 + contrast]."""

    def __post_init__(self) -> None:
        check_fields(self)
        if not 1 <= len(self.channels) <= 8:
            raise ValueError(f"channels must have 1 to 8 entries, got {len(self.channels)}")

    @property
    def in_channels(self) -> int:
        """Input channels: 3k for the frames and 3(k - 1) for their differences."""
        return 3 * self.frames + 3 * (self.frames - 1)

    @property
    def feature_size(self) -> tuple[int, int]:
        """Height and width of the feature map: each convolution halves a side, rounding up."""
        h, w = self.image_size
        for _ in self.channels:
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w


class FrameStackCNN(VideoEncoder):
    """A 2D CNN over the last k frames and their k - 1 differences: (B, T, 3, H, W) -> (B, C, h, w).

    ``forward`` reads the last k frames of its input (when it holds fewer, the first is repeated
    before them, as the classifier's windows begin an episode); ``encode`` gives the features of
    the window ending at each step, so the encoder is causal like every ``VideoEncoder``. In
    training mode (``.train()``) each sample is shifted and jittered (``augment``), with draws from
    torch's global generator: the same seed gives the same output. In eval mode it is deterministic.
    """

    def __init__(self, config: StackCNNConfig) -> None:
        super().__init__()
        self.config = config
        channels = (config.in_channels, *config.channels)
        self.convs = nn.Sequential(
            *(
                nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU())
                for c_in, c_out in itertools.pairwise(channels)
            )
        )
        self.out_channels = config.channels[-1]
        self.feature_size = config.feature_size

    def forward(self, frames: Tensor) -> Tensor:
        """The features of the last k frames: (B, 3, H, W) or (B, T, 3, H, W) in [0, 1] -> (B, C, h, w)."""
        if frames.dim() == 4:
            frames = frames.unsqueeze(1)
        k, t = self.config.frames, frames.shape[1]
        steps = torch.arange(t - k, t, device=frames.device).clamp(min=0)
        window = frames[:, steps]  # (B, k, 3, H, W)
        if self.training:
            window = self.augment(window)
        return self.convs(self.stack(window))

    def encode(self, frames: Tensor) -> Tensor:
        """The features of the k-frame window ending at each step: (B, T, 3, H, W) -> (B, T, C, h, w).

        One shift and jitter per sample in training mode, shared by all its windows.
        """
        b, t = frames.shape[:2]
        if self.training:
            frames = self.augment(frames)
        k = self.config.frames
        ends = torch.arange(t, device=frames.device)
        steps = (ends[:, None] + torch.arange(1 - k, 1, device=frames.device)).clamp(min=0)  # (T, k)
        windows = frames[:, steps].flatten(0, 1)  # (B * T, k, 3, H, W)
        return self.convs(self.stack(windows)).unflatten(0, (b, t))

    def encode_windows(self, frames: Tensor, windows: Tensor) -> Tensor:
        """The features after each window (``VideoEncoder.encode_windows``): (M, 3, H, W) frames,
        (B, k) indices -> (B, C, h, w). A stacked input has no per-frame part to share."""
        return self(frames[windows])

    def stack(self, window: Tensor) -> Tensor:
        """The CNN's input: (B, k, 3, H, W) -> (B, 6k - 3, H, W), the k frames' channels, then those
        of frames[1:] - frames[:-1]."""
        differences = window[:, 1:] - window[:, :-1]  # (B, k - 1, 3, H, W)
        return torch.cat([window.flatten(1, 2), differences.flatten(1, 2)], dim=1)

    def augment(self, frames: Tensor) -> Tensor:
        """Each sample shifted by up to ``shift`` pixels and its brightness and contrast jittered, the
        same for all its frames: (B, T, 3, H, W) -> (B, T, 3, H, W), clamped to [0, 1].

        Draws from torch's global generator (on the frames' device).
        """
        config = self.config
        b, t, c, h, w = frames.shape
        x = frames.reshape(b, t * c, h, w)
        if config.shift:
            s = config.shift
            padded = F.pad(x, (s, s, s, s), mode="replicate")  # (B, T*3, H + 2s, W + 2s)
            dy, dx = torch.randint(0, 2 * s + 1, (2, b, 1), device=x.device)
            rows = dy + torch.arange(h, device=x.device)  # (B, H)
            cols = dx + torch.arange(w, device=x.device)  # (B, W)
            batch = torch.arange(b, device=x.device)[:, None, None]
            x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, T*3, H, W)
        if config.brightness or config.contrast:
            draws = torch.rand(2, b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1  # in [-1, 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (1 + config.contrast * draws[0]) + mean + config.brightness * draws[1]
            x = x.clamp(0.0, 1.0)
        return x.reshape(b, t, c, h, w)
