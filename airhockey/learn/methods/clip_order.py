"""``clip_order``: Video Clip Order Prediction (Xu et al. 2019): the order of shuffled clips.

Three clips of ``clip_length`` consecutive frames, ``gap`` frames apart, from a high-motion window
are shuffled by one of the 6 orders (6 classes; a reversed order is its own class, as in VCOP).
The shared encoder reads each clip, its maps are averaged over space (VCOP's global average
pooling), and every pair of projected clip features, concatenated, passes through a shared layer
before the classifier (VCOP's pairwise relations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from torch import nn
from torch.utils.data import Dataset

from airhockey.learn.config import EncoderConfig, FrameCount, Jitter, Keep, Units
from airhockey.learn.methods.order import (
    OrderClassification,
    OrderModel,
    OrderSamples,
    PairwiseHead,
    order_classes,
)
from airhockey.ranges import Range, check_fields


@dataclass(frozen=True)
class ClipOrderConfig:
    """Settings of the ``clip_order`` method."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The shared frame encoder's sizes."""
    clips: Annotated[int, Range(2, 8)] = 3
    """Clips in a tuple, 2-8 (VCOP's 3: 6 classes); n! classes in general."""
    clip_length: FrameCount = 4
    """Consecutive frames in each clip (1-1,024)."""
    gap: Annotated[int, Range(0, 1024)] = 2
    """Frames left out between successive clips (0-1,024), so that a clip's end does not match the
    next one's start."""
    feature_dim: Units = 128
    """Units of each clip's projected feature vector (1-16,384)."""
    pair_dim: Units = 128
    """Units of the layer each concatenated pair of clip features passes through (1-16,384)."""
    hidden: Units = 128
    """Units of the classifier's hidden layer (1-16,384)."""
    motion_keep: Keep = 0.75
    """Fraction of the windows, those that move the most, that tuples are drawn from, in (0, 1]."""
    center: bool = True
    """Subtract the mean of a tuple's clip features before pairing them (``order.centred``)."""
    jitter: Jitter = 0
    """Largest shift in pixels (0-64), drawn independently for every clip of a training sample and applied
    to all its frames (OPN's spatial jittering, Lee et al. 2017, per clip, so that a clip's frames stay
    aligned for the encoder's recurrence); 0: none. Validation samples are jittered too
    (fixed shifts: the same every epoch), so validation measures the task trained on."""
    pool: bool = True
    """Average each clip's feature maps over space (then batch-normalise the channel means) before
    the projection, as VCOP's 3D CNNs end in global average pooling (its clip features are 512
    channel means); off: the projection reads the whole (C, h, w) maps, as the other order methods'
    do (OPN's fc6 reads pool5's maps), and the task is trivial on air hockey: a head on a frozen
    random encoder solves it (docs/pretext_order_methods.md). Runs written before this setting
    existed read as off (``ClipOrder.stored_defaults``)."""
    jitter_per_frame: bool = False
    """Shift every frame of a clip by its own offset (as the single-frame methods do) instead of
    one shift per clip: the motion inside a clip then jumps by up to twice ``jitter`` pixels, so
    that it is harder to read from a clip alone (on air hockey a frozen random encoder still
    ordered such clips: docs/pretext_order_methods.md)."""

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def span(self) -> int:
        """Frames in a window: the clips and the gaps between them."""
        return self.clips * self.clip_length + (self.clips - 1) * self.gap


def clip_positions(order: tuple[int, ...], clip_length: int, gap: int) -> NDArray[np.int64]:
    """Window positions (clips, clip_length) of a shuffled tuple: its k-th clip is ``order[k]``-th in time."""
    starts = np.asarray(order, dtype=np.int64) * (clip_length + gap)
    return starts[:, None] + np.arange(clip_length)


class ClipOrderSamples(OrderSamples):
    """Shuffled clips ``clips`` (clips, clip_length, 3, H, W) and the index of their order ``label``;
    each clip jittered by one shift (each frame by its own with ``jitter_per_frame``)."""

    def __init__(
        self, config: ClipOrderConfig, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool
    ) -> None:
        super().__init__(episodes, ids, config.span, config.motion_keep, seed, training, config.jitter)
        self.config = config
        self.jitter_whole_clips = not config.jitter_per_frame

    def positions(self, rng: np.random.Generator) -> tuple[NDArray[np.int64], int]:
        label = int(rng.integers(math.factorial(self.config.clips)))
        order = order_classes(self.config.clips)[label]
        return clip_positions(order, self.config.clip_length, self.config.gap), label


class ClipOrder(OrderClassification[ClipOrderConfig]):
    """Clip order prediction, VCOP (Xu et al. 2019).

    Deviations from the paper:

    - The clip encoder is the shared encoder (stem + ConvLSTM over the clip, its features after the
      last frame), not a 3D CNN; clips are 4 frames with 2-frame gaps rather than 16 with 8,
      to fit three clips in episodes of 30-43 frames (the same clip-to-gap ratio of 2).
    - Clips come from a high-motion window (motion: mean absolute frame difference); VCOP samples
      anywhere in the video.
    - The hidden layer after the pairwise relations is an addition (VCOP concatenates them into
      the final linear layer).
    - The clip features are VCOP's spatial means of the encoder's maps (``pool``), batch-normalised
      before the projection (an addition: a fresh encoder's channel means differ between clips by
      about 1e-4, which would keep a frozen-encoder check from reading them for scale alone).
      With ``pool=false`` the projection reads the whole maps, from which a head on a frozen
      random encoder solves the task; pooled, it gains far less over chance than a trained
      encoder (``docs/pretext_order_methods.md``, "Trivial, learnt, or impossible?").
    - The clip features are centred (their mean over the tuple subtracted) before pairing
      (``center``): the static table dominates them, and without this the task stays at chance.
    - OPN's spatial jitter (Lee et al. 2017) is an option VCOP does not have: ``jitter`` > 0 shifts each
      clip of a tuple by its own random offset of up to ``jitter`` pixels, the same for
      all frames of the clip (a per-frame shift would make the motion inside a clip jump, which the
      encoder's recurrence reads); off by default. ``jitter_per_frame`` shifts each frame on its
      own instead, for when the motion inside a clip is what gives the order away.
    """

    name = "clip_order"
    stored_defaults: ClassVar[dict[str, Any]] = {"pool": False}
    summary = "VCOP: the order of 3 shuffled clips with gaps, 6 classes, pairs of pooled clip features"
    source = "Xu et al. 2019 (Video Clip Order Prediction)"
    config_class = ClipOrderConfig

    @property
    def classes(self) -> int:
        return math.factorial(self.config.clips)

    def head(self) -> nn.Module:
        c = self.config
        return PairwiseHead(c.clips, c.feature_dim, c.pair_dim, c.hidden, self.classes, "concat", c.center)

    def build_model(self) -> OrderModel:
        c = self.config
        return OrderModel(c.encoder, c.feature_dim, self.head(), pool=c.pool)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        return ClipOrderSamples(self.config, episodes, ids, seed, training)
