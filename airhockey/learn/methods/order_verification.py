"""``order_verification``: Shuffle and Learn (Misra et al. 2016): is a frame tuple in order?

From a high-motion window of five frames ``a < b < c < d < e`` (``gap`` frames apart), a positive
tuple is ``(b, c, d)`` and a negative one ``(b, a, d)`` or ``(b, e, d)``: the same first and last
frame, so that only the middle frame tells them apart. The shared encoder reads each frame on its
own, the projected features are concatenated, and a hidden layer classifies the tuple.
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
    ConcatenationHead,
    OrderClassification,
    OrderSamples,
)
from airhockey.ranges import Range, check_fields

POSITIVE = (1, 2, 3)
"""The positive tuple's frames among the window's five (a, b, c, d, e) = 0..4: (b, c, d)."""
NEGATIVES = ((1, 0, 3), (1, 4, 3))
"""The negative tuples: (b, a, d) and (b, e, d)."""


@dataclass(frozen=True)
class OrderVerificationConfig:
    """Settings of the ``order_verification`` method."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The shared frame encoder's sizes."""
    feature_dim: Units = 128
    """Units (1-16,384) of each frame's projected feature vector (the paper's fc layer)."""
    hidden: Units = 128
    """Units of the classifier's hidden layer, 1-16,384."""
    gap: FrameCount = 2
    """Frames between successive frames of the five-frame window (a, b, c, d, e), 1-1,024."""
    negative_fraction: Annotated[float, Range(0, 1)] = 0.75
    """Share of negative tuples in training (Misra et al. report 75% as critical); validation is balanced."""
    motion_keep: Keep = 0.75
    """Fraction (in (0, 1]) of the windows, those that move the most, that tuples are drawn from."""
    center: bool = True
    """Subtract the mean of a tuple's frame features before concatenating them (``order.centred``)."""
    jitter: Jitter = 0
    """Largest (0-64) per-frame shift in pixels, drawn independently for every frame of a training sample
    (OPN's spatial jittering, Lee et al. 2017); 0: none. Validation samples are jittered too
    (fixed shifts: the same every epoch), so validation measures the task trained on."""

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def span(self) -> int:
        """Frames in a window, a to e."""
        return 4 * self.gap + 1


def verification_tuple(negative: bool, which: int, gap: int) -> tuple[NDArray[np.int64], int]:
    """The window positions of a tuple's three frames and its label (1 in order, 0 not).

    Args:
        negative: a negative tuple.
        which: which negative, 0 (b, a, d) or 1 (b, e, d).
        gap: frames between successive frames of the five-frame window.
    """
    frames = NEGATIVES[which] if negative else POSITIVE
    return np.asarray(frames, dtype=np.int64) * gap, int(not negative)


class VerificationSamples(OrderSamples):
    """Tuples ``clips`` (3, 1, 3, H, W) and ``label`` (1 in order), see ``OrderSamples``."""

    def __init__(
        self,
        config: OrderVerificationConfig,
        episodes: Any,
        ids: NDArray[np.int64],
        seed: int,
        training: bool,
    ) -> None:
        super().__init__(episodes, ids, config.span, config.motion_keep, seed, training, config.jitter)
        self.config = config

    def positions(self, rng: np.random.Generator) -> tuple[NDArray[np.int64], int]:
        share = self.config.negative_fraction if self.training else 0.5
        frames, label = verification_tuple(bool(rng.random() < share), int(rng.integers(2)), self.config.gap)
        return frames[:, None], label


class OrderVerification(OrderClassification[OrderVerificationConfig]):
    """Temporal order verification, Shuffle and Learn (Misra et al. 2016).

    Deviations from the paper:

    - Motion is the mean absolute difference of successive frames, not optical flow, and windows
      are kept by rank (the most moving ``motion_keep`` of them) rather than by a flow threshold.
    - The frame branches are the shared encoder (stem + ConvLSTM on one frame), not AlexNet, with
      a ``feature_dim`` projection in place of fc7; the classifier has one hidden layer.
    - Validation tuples are half positive, half negative, so that chance is 0.5 whatever the
      training share of negatives; "twice chance" cannot apply to a binary task, whose target is
      at least 0.75 (half of chance's errors).
    - The frame features are centred (their mean over the tuple subtracted) before they are
      concatenated (``center``): the static table they share dominates them.
    - Tuples are three frames of a five-frame window ``gap`` frames apart (the paper's five-frame
      tuples of whole videos do not fit 30-43-frame episodes).
    - OPN's spatial jitter (Lee et al. 2017) is an option the paper does not have: ``jitter`` > 0 shifts
      each frame of a tuple by its own random offset of up to ``jitter`` pixels, so that
      the puck's place in the frame no longer tells whether the middle frame lies between the
      others; off by default.
    """

    name = "order_verification"
    summary = "Shuffle and Learn: is a (b, c, d) frame tuple in order or (b, a|e, d)? (binary)"
    source = "Misra et al. 2016 (Shuffle and Learn)"
    config_class = OrderVerificationConfig

    @property
    def classes(self) -> int:
        return 2

    def head(self) -> nn.Module:
        c = self.config
        return ConcatenationHead(3, c.feature_dim, c.hidden, 2, c.center)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        return VerificationSamples(self.config, episodes, ids, seed, training)
