"""``skip_clip``: future clip order ranking (El-Nouby et al. 2019).

A context clip of K consecutive frames, and M later target frames at a fixed rate r (the first r
frames after the context's last, the next 2r, ...). A context encoder g (the shared encoder, over
the context clip) and a target encoder f (another instance of it, on each target frame alone)
give feature maps; the score of a target is the mean cosine similarity of the two maps over
aligned spatial cells (eq. 3). A hinge rank loss asks each target to score above every
later one (eq. 1), a contrastive hinge asks each to score above the mean score of M frames of
other episodes (eq. 2), and the target encoder also predicts which of 0/90/180/270 degrees a
target frame was rotated by. The three terms are summed without weights, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.config import EncoderConfig, FrameCount, Jitter, Keep
from airhockey.learn.data import frames_to_tensor
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.methods.order import (
    WindowSamples,
    jitter_frames,
)
from airhockey.learn.nn.autoencoder import FrameEncoder
from airhockey.learn.nn.encoder import PretextModel
from airhockey.ranges import Range, check_fields


@dataclass(frozen=True)
class SkipClipConfig:
    """Settings of the ``skip_clip`` method."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The sizes of the shared encoder, the context encoder g; the target encoder f has the same."""
    context: FrameCount = 8
    """Context frames K, 1-1,024."""
    targets: Annotated[int, Range(2, 64)] = 4
    """Target frames M, ranked, 2-64."""
    rate: FrameCount = 3
    """Frames r between the context's last frame and the first target, and between targets, 1-1,024."""
    rank_margin: Annotated[float, Range(0, 2)] = 0.1
    """Margin of the rank hinge (eq. 1), in cosine-similarity units, 0-2."""
    negative_margin: Annotated[float, Range(0, 2)] = 0.1
    """Margin of the contrastive hinge (eq. 2), 0-2."""
    negatives: bool = True
    """Add the contrastive hinge against M frames of other episodes (eq. 2)."""
    rotation: bool = True
    """Add the rotation-prediction auxiliary task on the target encoder (square frames only)."""
    motion_keep: Keep = 0.75
    """Fraction (in (0, 1]) of the windows (context and targets), those that move the most, that
    samples come from."""
    jitter: Jitter = 0
    """Largest (0-64) shift in pixels, drawn independently for the context clip (one shift for all its
    frames, which the recurrence reads together) and for every target and negative frame of a
    sample (OPN's spatial jittering, Lee et al. 2017); 0: none. Validation samples are jittered
    too (fixed shifts: the same every epoch), so validation measures the task trained on."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.rotation and self.encoder.image_size[0] != self.encoder.image_size[1]:
            raise ValueError(
                f"rotation needs square frames, not {tuple(self.encoder.image_size)}: set rotation=false"
            )

    @property
    def span(self) -> int:
        """Frames from the context's first frame to the last target."""
        return self.context + self.rate * self.targets

    @property
    def target_positions(self) -> NDArray[np.int64]:
        """(M,) window positions of the targets, nearest first."""
        return self.context - 1 + self.rate * np.arange(1, self.targets + 1)


class SkipClipSamples(WindowSamples):
    """Skip-Clip samples from high-motion windows of ``SkipClipConfig.span`` frames.

    Item: ``context`` (K, 3, H, W), ``targets`` (M, 3, H, W) nearest first, all float in [0, 1];
    with ``negatives``, ``negatives`` (M, 3, H, W): random frames of one other episode of ``ids``;
    with ``rotation``, ``rotated`` (M, 3, H, W): the targets each turned by ``rotations`` (M,)
    int64 quarter turns counter-clockwise. With ``jitter``, the context clip is shifted
    by one random offset and every target and negative frame by its own (``jitter_frames``); the
    rotated targets are the shifted ones turned. The shifts are drawn last, so they change a
    sample's pixels but not which frames it holds or its rotations.
    """

    def __init__(
        self, config: SkipClipConfig, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool
    ) -> None:
        super().__init__(episodes, ids, config.span, config.motion_keep, seed, training, config.jitter)
        self.config = config
        if config.negatives and len(self.ids) < 2:
            raise ValueError("negatives need at least two episodes")

    def make(self, frames: NDArray[np.uint8], rng: np.random.Generator, episode: int) -> dict[str, Tensor]:
        c = self.config
        negatives = None
        if c.negatives:
            others = self.ids[self.ids != episode]
            other = int(others[rng.integers(len(others))])
            length = len(self.motion[int(np.searchsorted(self.ids, other))]) + 1
            picks = np.sort(rng.choice(length, c.targets, replace=length < c.targets))
            negatives = self.episodes.frames(other)[picks]  # (M, H, W, 3)
        turns = rng.integers(4, size=c.targets) if c.rotation else None
        context = jitter_frames(frames[None, : c.context], self.jitter, rng)[0]  # (K, H, W, 3): one shift
        targets = jitter_frames(frames[c.target_positions], self.jitter, rng)  # (M, H, W, 3)
        item = {"context": frames_to_tensor(context), "targets": frames_to_tensor(targets)}
        if negatives is not None:
            item["negatives"] = frames_to_tensor(jitter_frames(negatives, self.jitter, rng))
        if turns is not None:
            item["rotated"] = frames_to_tensor(
                np.stack([np.rot90(f, k) for f, k in zip(targets, turns, strict=True)])
            )
            item["rotations"] = torch.from_numpy(turns.astype(np.int64))
        return item


def cell_cosine(context: Tensor, targets: Tensor) -> Tensor:
    """The score of eq. 3: cosine similarity of aligned cells, averaged over the grid.

    Args:
        context: (B, C, h, w), the context's features h.
        targets: (B, M, C, h, w), the targets' features z_i.

    Returns:
        (B, M) scores in [-1, 1].
    """
    return F.cosine_similarity(context.unsqueeze(1), targets, dim=2, eps=1e-6).mean(dim=(-2, -1))


def rank_hinge(scores: Tensor, margin: float) -> Tensor:
    """Eq. 1 per sample: sum over i < j of ``max(0, margin - s_i + s_j)``; (B, M) nearest first -> (B,)."""
    i, j = torch.triu_indices(scores.shape[1], scores.shape[1], offset=1, device=scores.device)
    return F.relu(margin - scores[:, i] + scores[:, j]).sum(dim=1)


def negative_hinge(scores: Tensor, negative_scores: Tensor, margin: float) -> Tensor:
    """Eq. 2 per sample: sum over targets of ``max(0, margin - s_i + mean(negative scores))``; -> (B,)."""
    return F.relu(margin - scores + negative_scores.mean(dim=1, keepdim=True)).sum(dim=1)


def rank_accuracy(scores: Tensor) -> Tensor:
    """Per sample, the share of target pairs i < j the scores put in order (s_i > s_j): (B, M) -> (B,)."""
    i, j = torch.triu_indices(scores.shape[1], scores.shape[1], offset=1, device=scores.device)
    return (scores[:, i] > scores[:, j]).float().mean(dim=1)


class SkipClipModel(PretextModel):
    """Context encoder g (``encoder``, the shared one), target encoder f, and the rotation head on f.

    Args:
        config: the method's settings.
    """

    def __init__(self, config: SkipClipConfig) -> None:
        super().__init__()
        self.encoder = FrameEncoder(config.encoder)
        self.target_encoder = FrameEncoder(config.encoder)
        self.rotation_head = (
            nn.Sequential(nn.Flatten(), nn.Linear(self.target_encoder.feature_count, 4))
            if config.rotation
            else None
        )

    def encode_frames(self, frames: Tensor) -> Tensor:
        """f on each frame alone: (B, M, 3, H, W) -> (B, M, C, h, w)."""
        b, m = frames.shape[:2]
        return self.target_encoder(frames.flatten(0, 1)).unflatten(0, (b, m))

    def scores(self, context: Tensor, frames: Tensor) -> Tensor:
        """Scores of frames against their context: (B, K, 3, H, W), (B, M, 3, H, W) -> (B, M)."""
        return cell_cosine(self.encoder(context), self.encode_frames(frames))

    def forward(self, context: Tensor, frames: Tensor) -> Tensor:
        return self.scores(context, frames)


class SkipClip(PretextMethod[SkipClipConfig]):
    """Future clip order ranking, Skip-Clip (El-Nouby et al. 2019, sections 3.1 and 4.1).

    Deviations from the paper:

    - g is the shared encoder (stem + ConvLSTM over the context), not a 3D ResNet-18, and f is a
      second instance of it on single frames (a 2D network, like the paper's 2D ResNet-18); the
      score reads their (hidden_channels, h, w) maps, 16 x 16 x 16 by default, not 512 x 7 x 7.
    - K = 8, M = 4, r = 3 instead of K = 16, M = 8, r = 4, so that a window (K + r M = 20 frames)
      fits episodes of 30-43 frames; targets are single frames (d = 1), as in the paper.
    - Windows are the most moving ``motion_keep`` of them (motion: mean absolute frame difference);
      the paper seeks to a random time.
    - The M negatives are random frames of one other episode of the same split part; the margins
      (0.1, the paper gives none) are settings.
    - No random reversal, flips or crops: the table is not left-right symmetric in its labels'
      sense, and the objects are a few pixels. OPN's spatial jitter (Lee et al. 2017) is an option
      (``jitter``, off by default): one shift for the context clip, one for each target and
      negative frame, so that the puck's place in the frame alone no longer ranks the targets.
    """

    name = "skip_clip"
    summary = "Skip-Clip: rank future frames by cosine score to a context clip (hinge), negatives, rotation"
    source = "El-Nouby et al. 2019, sections 3.1 and 4.1"
    config_class = SkipClipConfig
    selection_metric = "val_rank_accuracy"
    selection_mode = "max"
    log_metrics = ("val_negative_accuracy", "val_rotation_accuracy", "baseline_pixel_rank_accuracy")

    def build_model(self) -> SkipClipModel:
        return SkipClipModel(self.config)

    def build_encoder(self) -> FrameEncoder:
        return FrameEncoder(self.config.encoder)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        return SkipClipSamples(self.config, episodes, ids, seed, training)

    def _terms(self, model: SkipClipModel, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-sample loss terms (B,) and the scores, for the loss and for validation."""
        c = self.config
        h = model.encoder(batch["context"])  # (B, C, h, w)
        scores = cell_cosine(h, model.encode_frames(batch["targets"]))  # (B, M)
        terms = {"scores": scores, "rank": rank_hinge(scores, c.rank_margin)}
        if c.negatives:
            negative_scores = cell_cosine(h, model.encode_frames(batch["negatives"]))  # (B, M)
            terms["negative_scores"] = negative_scores
            terms["negative"] = negative_hinge(scores, negative_scores, c.negative_margin)
        if c.rotation:
            assert model.rotation_head is not None
            rotated = model.target_encoder(batch["rotated"].flatten(0, 1))  # (B M, C, h, w)
            logits = model.rotation_head(rotated)  # (B M, 4)
            terms["rotation_logits"] = logits
            terms["rotation"] = (
                F.cross_entropy(logits, batch["rotations"].flatten(), reduction="none")
                .unflatten(0, scores.shape)
                .sum(dim=1)
            )
        return terms

    def loss(self, model: SkipClipModel, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        terms = self._terms(model, batch)
        return sum(terms[k].mean() for k in ("rank", "negative", "rotation") if k in terms)  # type: ignore[return-value]

    def baselines(self, train_set: Dataset, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Chance (0.5 of the pairs), and ranking by pixels: a target scores minus its mean squared
        difference to the context's last frame. How close the pixel ranking comes to 1 says how
        much of the task the raw frames give away."""
        correct, n = 0.0, 0
        for batch in val_loader:
            last = batch["context"][:, -1:]  # (B, 1, 3, H, W)
            scores = -((batch["targets"] - last) ** 2).mean(dim=(2, 3, 4))  # (B, M)
            correct += float(rank_accuracy(scores).sum())
            n += len(scores)
        return {"baseline_chance_rank_accuracy": 0.5, "baseline_pixel_rank_accuracy": correct / max(n, 1)}

    def evaluate(
        self, model: SkipClipModel, val_loader: DataLoader, device: torch.device
    ) -> dict[str, float]:  # type: ignore[override]
        sums: dict[str, float] = {}
        n = 0
        for batch in val_loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            terms = self._terms(model, batch)
            scores = terms["scores"]
            values = {
                "val_rank_accuracy": rank_accuracy(scores),
                "val_order_accuracy": (scores[:, :-1] > scores[:, 1:]).all(dim=1).float(),
                "val_rank_loss": terms["rank"],
            }
            if "negative" in terms:
                values["val_negative_accuracy"] = (
                    (terms["scores"] > terms["negative_scores"].mean(1, keepdim=True)).float().mean(1)
                )
                values["val_negative_loss"] = terms["negative"]
            if "rotation" in terms:
                hits = terms["rotation_logits"].argmax(1) == batch["rotations"].flatten()
                values["val_rotation_accuracy"] = hits.float().unflatten(0, scores.shape).mean(1)
                values["val_rotation_loss"] = terms["rotation"]
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
            n += len(scores)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def derived_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "val_rank_accuracy_minus_pixels": metrics["val_rank_accuracy"]
            - metrics["baseline_pixel_rank_accuracy"]
        }

    def describe(self, metrics: dict[str, Any]) -> str:
        m = metrics
        return (
            f"val rank accuracy {m['val_rank_accuracy']:.3f} vs chance 0.5, pixel ranking "
            f"{m['baseline_pixel_rank_accuracy']:.3f}; all {self.config.targets} in order "
            f"{m['val_order_accuracy']:.3f}"
        )
