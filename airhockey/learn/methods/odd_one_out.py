"""``odd_one_out``: the Odd-One-Out Network (Fernando et al. 2017): which sub-sequence is shuffled?

From a high-motion window, N + 1 sub-sequences of a few frames each are drawn (each at its own
random, sorted frame positions); N keep their frames in time order, one, at a random position,
has them scrambled (neither forward nor backward). The shared encoder reads each sub-sequence as
a clip, and the head fuses the projected clip features to pick the odd one (N + 1 classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import Dataset

from airhockey.learn.config import EncoderConfig, FrameCount, Jitter, Keep, Units
from airhockey.learn.methods.order import (
    ConcatenationHead,
    OrderClassification,
    OrderSamples,
    mlp,
    scrambled_orders,
    spaced_positions,
)
from airhockey.ranges import Range, check_fields

FUSIONS = ("difference", "concat")


@dataclass(frozen=True)
class OddOneOutConfig:
    """Settings of the ``odd_one_out`` method."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The shared frame encoder's sizes."""
    elements: Annotated[int, Range(2, 64)] = 6
    """Sub-sequences in a question, N + 1, 2-64 (O3N uses 6); the classes."""
    frames_per_element: Annotated[int, Range(3, 64)] = 3
    """Frames in each sub-sequence, 3-64 (at least 3, so that some orders are neither forward nor
    backward)."""
    window: FrameCount = 16
    """Frames of the high-motion window all sub-sequences come from, 1-1,024."""
    gap: FrameCount = 2
    """Fewest frames between successive frames of a sub-sequence, 1-1,024."""
    fusion: str = "difference"
    """'difference': each element's summed differences to the others, scored by a shared layer (the
    paper's sum of differences); 'concat': all features concatenated, then classified."""
    feature_dim: Units = 128
    """Units (1-16,384) of each sub-sequence's projected feature vector."""
    hidden: Units = 128
    """Units of the classifier's hidden layer, 1-16,384."""
    motion_keep: Keep = 0.75
    """Fraction (in (0, 1]) of the windows, those that move the most, that questions are drawn from."""
    jitter: Jitter = 0
    """Largest (0-64) per-frame shift in pixels, drawn independently for every frame of a training sample
    (OPN's spatial jittering, Lee et al. 2017); 0: none. Validation samples are jittered too
    (fixed shifts: the same every epoch), so validation measures the task trained on."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.window < (self.frames_per_element - 1) * self.gap + 1:
            raise ValueError(
                f"window {self.window} cannot hold {self.frames_per_element} frames {self.gap} apart"
            )


def odd_one_out_question(
    rng: np.random.Generator, elements: int, frames: int, window: int, gap: int
) -> tuple[NDArray[np.int64], int]:
    """The window positions of a question's sub-sequences, (elements, frames), and the odd one's index.

    Every sub-sequence has its own sorted positions ``gap`` or more apart; the one at the odd
    index is reordered by one of ``scrambled_orders(frames)``.
    """
    positions = np.stack([spaced_positions(rng, frames, window, gap) for _ in range(elements)])
    odd = int(rng.integers(elements))
    orders = scrambled_orders(frames)
    positions[odd] = positions[odd][list(orders[int(rng.integers(len(orders)))])]
    return positions, odd


class OddOneOutSamples(OrderSamples):
    """Questions ``clips`` (elements, frames_per_element, 3, H, W) and the odd one's index ``label``."""

    def __init__(
        self, config: OddOneOutConfig, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool
    ) -> None:
        super().__init__(episodes, ids, config.window, config.motion_keep, seed, training, config.jitter)
        self.config = config

    def positions(self, rng: np.random.Generator) -> tuple[NDArray[np.int64], int]:
        c = self.config
        return odd_one_out_question(rng, c.elements, c.frames_per_element, c.window, c.gap)


class SumOfDifferencesHead(nn.Module):
    """Sum-of-differences fusion: element i's ``sum_j (f_i - f_j)`` through a shared layer to one
    score; the scores are the logits. (B, n, D) -> (B, n)."""

    def __init__(self, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.score = mlp(feature_dim, hidden, 1)

    def forward(self, features: Tensor) -> Tensor:
        n = features.shape[1]
        differences = n * features - features.sum(dim=1, keepdim=True)  # (B, n, D): sum_j (f_i - f_j)
        return self.score(differences).squeeze(-1)


class OddOneOut(OrderClassification[OddOneOutConfig]):
    """Odd-one-out learning with O3N (Fernando et al. 2017).

    Deviations from the paper:

    - Each element is a sub-sequence of ``frames_per_element`` frames read as a clip by the shared
      encoder (a ConvLSTM sees their order), not a dynamic image fed to a 2D CNN.
    - Elements come from one high-motion window of ``window`` frames (motion: mean absolute frame
      difference), not the whole video, since episodes are 30-43 frames and partly still.
    - The odd element's frames are scrambled, never simply reversed: a reversed sub-sequence is
      plausible motion on this table (the paper's odd element is any wrong order).
    - Sum-of-differences fusion is applied per element (``sum_j (f_i - f_j)``, then a layer
      shared by the elements scores each one), which keeps the head equivariant to where the odd
      element is; ``fusion=concat`` is the paper's concatenation (of centred features).
    - OPN's spatial jitter (Lee et al. 2017) is an option the paper does not have: ``jitter`` > 0 shifts
      every frame of a question by its own random offset of up to ``jitter`` pixels,
      frames of one sub-sequence included, since the order inside a sub-sequence is what the
      task asks about; off by default.
    """

    name = "odd_one_out"
    summary = "O3N: which of N+1 sub-sequences is out of order? (N+1 classes, sum-of-differences fusion)"
    source = "Fernando et al. 2017 (Odd-One-Out Networks)"
    config_class = OddOneOutConfig

    @property
    def classes(self) -> int:
        return self.config.elements

    def head(self) -> nn.Module:
        c = self.config
        if c.fusion == "concat":
            return ConcatenationHead(c.elements, c.feature_dim, c.hidden, c.elements)
        return SumOfDifferencesHead(c.feature_dim, c.hidden)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        return OddOneOutSamples(self.config, episodes, ids, seed, training)
