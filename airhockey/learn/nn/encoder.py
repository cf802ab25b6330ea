"""The encoder interface: all that classifiers and probes see of a trained model.

``VideoEncoder``: frames ``(B, T, 3, H, W)`` in [0, 1] go in; ``encode`` gives a feature map per
time step ``(B, T, C, h, w)``, and ``forward`` the features after the last given frame
``(B, C, h, w)``, so the features after the first k frames are ``encoder(frames[:, :k])`` (k = 1:
one frame from a zero state, the single-frame classifier of Han et al. 2021). The encoder is
causal: features at step t read frames 0..t only. ``PretextModel`` is any model that holds one as
its ``encoder`` attribute; every pretext method (``learn.methods``) builds one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


class VideoEncoder(nn.Module, ABC):
    """A causal video encoder: frames ``(B, T, 3, H, W)`` -> feature maps ``(B, T, C, h, w)``.

    Subclasses set ``out_channels`` (C) and ``feature_size`` ((h, w)) and implement ``encode``.
    """

    out_channels: int
    """Channels C of the feature maps."""
    feature_size: tuple[int, int]
    """Height and width (h, w) of the feature maps."""

    @abstractmethod
    def encode(self, frames: Tensor) -> Tensor:
        """Feature maps after each frame: (B, T, 3, H, W) in [0, 1] -> (B, T, C, h, w).

        Step t's features depend on frames 0..t only.
        """

    def forward(self, frames: Tensor) -> Tensor:
        """The features after the last frame: (B, 3, H, W) or (B, T, 3, H, W) -> (B, C, h, w)."""
        if frames.dim() == 4:
            frames = frames.unsqueeze(1)
        return self.encode(frames)[:, -1]

    def frame_features(self, frames: Tensor) -> Tensor:
        """The part of the encoder that reads each frame on its own: (N, 3, H, W) -> (N, ...).

        The identity here; an encoder with a per-frame stem before its recurrent part overrides
        it together with ``encode_frame_features``, so that ``encode_windows`` computes each
        frame's stem once however many windows hold the frame.
        """
        return frames

    def encode_frame_features(self, features: Tensor) -> Tensor:
        """``encode`` continued from ``frame_features``: (B, T, ...) -> (B, T, C, h, w)."""
        return self.encode(features)

    def encode_windows(self, frames: Tensor, windows: Tensor) -> Tensor:
        """The features after each of several windows over the same frames, each window read from
        a zero state as ``forward`` reads it: the overlapping k-frame windows of a classifier.

        Args:
            frames: (M, 3, H, W) in [0, 1], each frame once.
            windows: (B, k) int64 indices into ``frames``, each row a window in time order.

        Returns:
            (B, C, h, w): equal to ``self(frames[windows])`` (up to float rounding), with each
            frame's ``frame_features`` computed once instead of once per window holding it.
        """
        return self.encode_frame_features(self.frame_features(frames)[windows])[:, -1]

    @property
    def feature_count(self) -> int:
        """Values in one flattened feature map, C * h * w."""
        return self.out_channels * self.feature_size[0] * self.feature_size[1]


class PretextModel(nn.Module):
    """Any module with an ``encoder`` attribute that is a ``VideoEncoder``; methods subclass it."""

    encoder: VideoEncoder
