"""``vjepa``: latent prediction of masked tokens from visible ones, V-JEPA style (Bardes et al. 2024).

A context encoder (the video transformer, ``encoder``) reads the tokens a tube mask leaves visible;
a target encoder, an exponential moving average (EMA) of the context encoder that no gradient
reaches, reads the whole clip; a narrow predictor maps the visible tokens' features and a mask
token at every hidden place (with its position) to the target's features there, layer-normalised.
The loss is their mean absolute difference (L1); no pixel is predicted.

Before each training step the target moves towards the context encoder by the momentum rule
``target <- m target + (1 - m) context``, m rising linearly from ``ema_start`` to ``ema_end`` over
``ema_steps`` steps; the count of updates is a buffer of the model, so a resumed run continues the
schedule where it stopped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.config import FrameCount
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.methods.videomae import (
    MaskedClips,
    MaskRatio,
    TokenDecoder,
    check_masking,
    gather_tokens,
    hidden_positions,
    tube_tokens,
)
from airhockey.learn.nn.encoder import PretextModel
from airhockey.learn.nn.transformer import TransformerConfig, VideoTransformer
from airhockey.ranges import Range, check_fields

Momentum = Annotated[float, Range(0, 1)]
"""An EMA momentum, in [0, 1]: 1 keeps the target as it is."""


@dataclass(frozen=True)
class VJEPAConfig:
    """Settings of the ``vjepa`` method."""

    encoder: TransformerConfig = field(default_factory=TransformerConfig)
    """The video transformer's sizes (``encoder.*``), of the context and the target encoder."""
    frames: FrameCount = 8
    """Frames T of a clip, 1-1,024."""
    clip_stride: FrameCount = 4
    """Frames between the starts of successive clips of an episode, 1-1,024."""
    mask_ratio: MaskRatio = 0.9
    """Fraction of the patch positions the tube mask hides, in (0, 1); at least one stays visible."""
    mask_blocks: Annotated[int, Range(0, 64)] = 4
    """Random rectangles of the patch grid hidden first (multi-block masking), 0-64; 0: uniformly
    random positions, as ``videomae``'s."""
    predictor_width: Annotated[int, Range(4, 4096)] = 32
    """Token width of the predictor, 4-4,096; divisible by 4 and by ``predictor_heads``."""
    predictor_depth: Annotated[int, Range(1, 64)] = 2
    """Predictor blocks, 1-64."""
    predictor_heads: Annotated[int, Range(1, 64)] = 2
    """Attention heads of each predictor block, 1-64."""
    ema_start: Momentum = 0.99
    """EMA momentum of the target encoder at the first step, in [0, 1]."""
    ema_end: Momentum = 0.999
    """EMA momentum from step ``ema_steps`` on, in [0, 1]."""
    ema_steps: Annotated[int, Range(1, 10**9)] = 2000
    """Steps over which the momentum rises linearly from ``ema_start`` to ``ema_end``, 1 to 10^9."""
    causal: bool = True
    """Encode with the block-causal attention the classifiers use (True), or with full attention
    over the clip, as the paper does (False); the target encoder attends as the context encoder."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_masking(self.encoder, self.predictor_width, self.predictor_heads, "predictor")

    def momentum(self, step: int) -> float:
        """The EMA momentum of update ``step`` (0 first)."""
        progress = min(step / self.ema_steps, 1.0)
        return self.ema_start + (self.ema_end - self.ema_start) * progress


class VJEPAModel(PretextModel):
    """Context encoder (``encoder``), EMA target encoder, and predictor.

    Args:
        config: the method's settings.
    """

    def __init__(self, config: VJEPAConfig) -> None:
        super().__init__()
        self.config = config
        e = config.encoder
        self.encoder = VideoTransformer(e)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.predictor = TokenDecoder(
            e.width,
            config.predictor_width,
            config.predictor_depth,
            config.predictor_heads,
            e.width,
            e.feature_size,
        )
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def update_target(self) -> float:
        """Moves the target encoder towards the context encoder by the momentum rule; returns m."""
        m = self.config.momentum(int(self.ema_updates))
        for target, online in zip(self.target_encoder.parameters(), self.encoder.parameters(), strict=True):
            target.lerp_(online, 1.0 - m)  # m target + (1 - m) online; unchanged where they are equal
        self.ema_updates += 1
        return m

    def forward(self, clip: Tensor, visible: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted and target features of the hidden tokens of a clip under a tube mask.

        Args:
            clip: (B, T, 3, H, W) in [0, 1].
            visible: (B, n_v) patch positions the mask leaves visible.

        Returns:
            Predictions and targets, each (B, T (N - n_v), width); the targets carry no gradient.
        """
        causal, t, n = self.config.causal, clip.shape[1], self.config.encoder.patches
        shown = tube_tokens(visible, t, n)
        hidden = tube_tokens(hidden_positions(visible, n), t, n)
        with torch.no_grad():
            targets = self.target_encoder.encode_tokens(clip, causal=causal)  # (B, T N, width)
            targets = F.layer_norm(gather_tokens(targets, hidden), targets.shape[-1:])
        context = self.encoder.encode_tokens(clip, shown, causal=causal)
        return self.predictor(context, shown, hidden, t), targets


class VJEPA(PretextMethod[VJEPAConfig]):
    """Latent prediction with an EMA target, in the style of V-JEPA (Bardes et al. 2024, section 3).

    Deviations from the paper (docs/pretext_methods.md gives the reasons):

    - The small causal video transformer of ``videomae`` (width 64, 4 blocks) instead of ViT-L/H
      with 2x16x16 tubelets; 8-frame clips of 64x64 pixels instead of 16 frames at 224x224.
    - A predictor of 2 blocks of width 32 (the paper: 12 blocks of width 384).
    - One tube mask per clip, the union of ``mask_blocks`` random rectangles completed (or trimmed)
      at random to exactly ``mask_ratio``; the paper draws short- and long-range multi-block
      masks of fixed scales and predicts each separately.
    - EMA momentum from 0.99 to 0.999 over 2,000 steps (the paper: 0.998 to 1.0 over its whole
      schedule): runs here are thousands of steps, not hundreds of thousands.
    - The target moves before each training step (from the weights the previous step left), so
      the last step's update waits for the next step; no augmentation.
    """

    name = "vjepa"
    summary = "V-JEPA style: predict an EMA target encoder's features of tube-masked tokens (L1, transformer)"
    source = "Bardes et al. 2024, section 3"
    config_class = VJEPAConfig
    selection_metric = "val_relative_l1"
    log_metrics = ("val_l1", "val_mean_l1", "val_target_spread")

    def build_model(self) -> VJEPAModel:
        return VJEPAModel(self.config)

    def build_encoder(self) -> VideoTransformer:
        return VideoTransformer(self.config.encoder)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        c = self.config
        grid = c.encoder.feature_size
        return MaskedClips(episodes, ids, c.frames, c.clip_stride, grid, c.mask_ratio, c.mask_blocks, seed)

    def loss(self, model: VJEPAModel, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        """The L1 between predicted and target features of the hidden tokens; in training mode the
        target encoder first takes its EMA update."""
        if model.training and torch.is_grad_enabled():
            model.update_target()
        pred, targets = model(batch["clip"], batch["visible"])
        return (pred - targets).abs().mean()

    def evaluate(self, model: VJEPAModel, val_loader: DataLoader, device: torch.device) -> dict[str, float]:  # type: ignore[override]
        """``val_l1``: the loss; ``val_mean_l1``: that of predicting every hidden token as the mean
        target of its batch at its place and time (a predictor that reads nothing of the clip);
        ``val_relative_l1``: their ratio, which picks ``best.pt`` (the targets move as the
        target encoder trains, so the L1 alone is no yardstick); ``val_target_spread``: the
        standard deviation of the targets across clips, which falls to 0 if they collapse."""
        sums = {"val_l1": 0.0, "val_mean_l1": 0.0, "val_target_spread": 0.0}
        count = 0
        for batch in val_loader:
            clip, visible = batch["clip"].to(device), batch["visible"].to(device)
            pred, targets = model(clip, visible)  # (B, L_h, D)
            t, n = clip.shape[1], self.config.encoder.patches
            with torch.no_grad():
                every = model.target_encoder.encode_tokens(clip, causal=self.config.causal)
                every = F.layer_norm(every, every.shape[-1:])  # (B, T N, D)
            mean = every.mean(dim=0, keepdim=True).expand_as(every)
            guess = gather_tokens(mean, tube_tokens(hidden_positions(visible, n), t, n))
            b = len(clip)
            sums["val_l1"] += b * float((pred - targets).abs().mean())
            sums["val_mean_l1"] += b * float((guess - targets).abs().mean())
            sums["val_target_spread"] += b * float(every.std(dim=0, correction=0).mean())
            count += b
        metrics = {k: v / max(count, 1) for k, v in sums.items()}
        metrics["val_relative_l1"] = metrics["val_l1"] / max(metrics["val_mean_l1"], 1e-12)
        return metrics

    def describe(self, metrics: dict[str, Any]) -> str:
        m = metrics
        return (
            f"val L1 {m['val_l1']:.4f} vs batch-mean target {m['val_mean_l1']:.4f} "
            f"(ratio {m['val_relative_l1']:.3f}); target spread {m['val_target_spread']:.3f}"
        )
