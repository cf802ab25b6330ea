"""``sorting``: the Order Prediction Network (Lee et al. 2017): sort four shuffled frames.

Four frames ``gap`` apart (consecutive by default) from a high-motion window are shuffled by one
of the 24 permutations; the class is the permutation up to reversal (12 classes: a tuple played
backwards is as plausible as forwards). The shared encoder reads each frame on its own, and the
classifier reads the differences of the projected features of every pair of frames (OPN's
pairwise feature extraction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from torch import nn
from torch.utils.data import Dataset

from airhockey.learn.config import EncoderConfig, FrameCount, Jitter, Keep, Units
from airhockey.learn.methods.order import (
    OrderClassification,
    OrderSamples,
    PairwiseHead,
    sorting_class,
    sorting_classes,
)
from airhockey.ranges import Range, check_fields


@dataclass(frozen=True)
class SortingConfig:
    """Settings of the ``sorting`` method."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The shared frame encoder's sizes."""
    frames: Annotated[int, Range(3, 8)] = 4
    """Frames in a tuple, 3-8 (OPN's 4: 24 orders, 12 classes); n!/2 classes in general."""
    feature_dim: Units = 128
    """Units (1-16,384) of each frame's projected feature vector (OPN's fc6)."""
    pair_dim: Units = 128
    """Units (1-16,384) of the layer each pair's feature difference passes through (OPN's fc7)."""
    hidden: Units = 128
    """Units of the classifier's hidden layer, 1-16,384."""
    gap: FrameCount = 1
    """Frames between successive frames of a tuple, in time, 1-1,024 (2 makes the task trivial on air hockey,
    ``docs/pretext_order_methods.md``)."""
    motion_keep: Keep = 0.75
    """Fraction (in (0, 1]) of the windows, those that move the most, that tuples are drawn from."""
    jitter: Jitter = 0
    """Largest (0-64) per-frame shift in pixels, drawn independently for every frame of a training sample
    (OPN's spatial jittering, Lee et al. 2017); 0: none. Validation samples are jittered too
    (fixed shifts: the same every epoch), so validation measures the task trained on."""

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def span(self) -> int:
        """Frames in a window, first to last frame of a tuple."""
        return (self.frames - 1) * self.gap + 1


class SortingSamples(OrderSamples):
    """Shuffled tuples ``clips`` (frames, 1, 3, H, W) and their ``label`` (``sorting_class``)."""

    def __init__(
        self, config: SortingConfig, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool
    ) -> None:
        super().__init__(episodes, ids, config.span, config.motion_keep, seed, training, config.jitter)
        self.config = config

    def positions(self, rng: np.random.Generator) -> tuple[NDArray[np.int64], int]:
        perm = rng.permutation(self.config.frames)  # tuple frame k is the perm[k]-th in time
        return (perm * self.config.gap)[:, None], sorting_class(perm)


class Sorting(OrderClassification[SortingConfig]):
    """Sequence sorting with the Order Prediction Network (Lee et al. 2017).

    Deviations from the paper:

    - Motion is the mean absolute difference of successive frames, not optical flow; whole frames
      are used, without OPN's high-motion patches or channel splitting: the camera is fixed and
      the objects are a few pixels, so a crop could lose them.
    - OPN's spatial jitter is off by default: ``jitter`` > 0 shifts each frame of a tuple
      by its own random offset of up to ``jitter`` pixels (OPN shifts each frame's patch), the
      border filled by repeating the edge, so that the puck's place in the frame alone no longer
      sorts the frames and the encoder has to place it against the table.
    - The frame branches are the shared encoder (stem + ConvLSTM on one frame), not AlexNet; fc6
      is a ``feature_dim`` projection of its feature map.
    - Frames are consecutive (``gap`` 1) in a window (OPN samples within a high-motion window
      too, with its own spacing): two frames apart, one moving puck on a fixed table makes the task
      trivial.
    """

    name = "sorting"
    summary = "OPN: sort 4 shuffled frames, 12 classes (order up to reversal), pairwise feature differences"
    source = "Lee et al. 2017 (Order Prediction Network)"
    config_class = SortingConfig

    @property
    def classes(self) -> int:
        return len(sorting_classes(self.config.frames))

    def head(self) -> nn.Module:
        c = self.config
        return PairwiseHead(c.frames, c.feature_dim, c.pair_dim, c.hidden, self.classes, "difference")

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        return SortingSamples(self.config, episodes, ids, seed, training)
