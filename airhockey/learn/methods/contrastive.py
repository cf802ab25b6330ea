"""``contrastive``: contrastive clips, in the style of SimCLR (Chen et al. 2020) and CVRL (Qian et al. 2021).

Each sample is one episode: two clips of ``clip_length`` frames whose first frames lie at most
``max_distance`` frames apart, the distance drawn from CVRL's linearly decreasing distribution (near
clips more often than far ones). Each clip gets its own random augmentation, the same for all
of its frames (CVRL's temporally consistent augmentation): a crop resized back to the frame, a
horizontal flip when enabled, colour jitter and grey scale. The encoder reads a clip; its features after the
clip's last frame, averaged over space, go through a projection head (an MLP, used only here:
classifiers read the encoder alone), and InfoNCE (Oord et al. 2018; SimCLR's NT-Xent) with a
temperature pulls the two clips of an episode together and pushes every other episode's clips
of the batch away.

A batch holds each episode once: the samples are one per episode, and the trainer's sampler
visits each sample once per epoch. The loss also never counts two clips of one episode as a
negative pair, whatever the batch (``info_nce`` reads each sample's ``episode``).

    method = get_method("contrastive")()
    batch = {"clips": (B, 2, T, 3, H, W), "episode": (B,), "crop": (B, 2, 4), ...}
    loss = method.loss(model, batch)   # InfoNCE over the 2B clips
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.config import EncoderConfig, FrameCount, Units, to_dict
from airhockey.learn.data import frames_to_tensor
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.autoencoder import FrameEncoder
from airhockey.learn.nn.encoder import PretextModel, VideoEncoder
from airhockey.learn.nn.transformer import TransformerConfig, VideoTransformer
from airhockey.ranges import Range, check_fields

BACKBONES = ("convlstm", "transformer")
"""The encoders the method can train (``backbone``): the shared ConvLSTM encoder (``FrameEncoder``,
sized by ``encoder``) or the video transformer (``VideoTransformer``, sized by ``transformer``)."""
LUMA = (0.299, 0.587, 0.114)
"""Weights of R, G, B in a pixel's grey value (ITU-R BT.601, as torchvision's ``rgb_to_grayscale``)."""
CROP_ASPECT = (3 / 4, 4 / 3)
"""The range of a crop's width-to-height ratio, relative to the frame's (SimCLR's and CVRL's),
narrowed for large crops to the ratios that fit in the frame (area 1: the whole frame)."""
Fraction = Annotated[float, Range(0, 1)]
"""A probability or fraction, 0-1."""


@dataclass(frozen=True)
class ContrastiveConfig:
    """Settings of the ``contrastive`` method."""

    backbone: str = "convlstm"
    """The encoder trained: one of ``BACKBONES``."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The sizes of the ConvLSTM encoder (read with ``backbone=convlstm`` only)."""
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    """The sizes of the video transformer (read with ``backbone=transformer`` only)."""
    clip_length: FrameCount = 8
    """Frames in each of the two clips, 1-1,024."""
    max_distance: Annotated[int, Range(0, 1024)] = 16
    """Most frames between the first frames of the two clips, 0-1,024 (0: the same frames, two
    augmentations, as SimCLR's two views of one image); shorter episodes allow less."""
    temperature: Annotated[float, Range(0.001, 10)] = 0.1
    """InfoNCE temperature tau, 0.001-10: cosine similarities are divided by it."""
    projection_hidden: Units = 128
    """Units of the projection head's hidden layer, 1-16,384."""
    projection_dim: Units = 64
    """Units of the projection (what the loss compares), 1-16,384."""
    crop_area: Annotated[float, Range(0, 1, low_open=True)] = 0.5
    """Smallest area of a clip's crop, as a fraction of the frame, in (0, 1]; 1: no crop."""
    flip: bool = False
    """Mirror half of the clips left to right (off: this table's labels are left and right)."""
    colour_strength: Annotated[float, Range(0, 1)] = 0.5
    """SimCLR's colour distortion strength s, 0-1: brightness, contrast and saturation factors are
    drawn from [1 - 0.8 s, 1 + 0.8 s], the hue turn from [-0.2 s, 0.2 s]; 0: no colour jitter."""
    colour_probability: Fraction = 0.8
    """Share of the clips whose colours are jittered, 0-1."""
    grey_probability: Fraction = 0.2
    """Share of the clips turned grey (after any jitter), 0-1."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")


# ----------------------------------------------------------------------- augmentation
def draw_augmentations(config: ContrastiveConfig, rng: np.random.Generator, n: int) -> dict[str, Tensor]:
    """Random augmentations of ``n`` clips, one per clip (applied alike to all of its frames).

    Returns:
        ``crop`` (n, 4): each crop's centre (y, x) and size (height, width) as fractions of the
        frame; ``flip`` (n,): 1 to mirror the clip; ``colour`` (n, 4): brightness, contrast and
        saturation factors and the hue turn (1, 1, 1, 0 when the clip's colours are kept);
        ``grey`` (n,): 1 to turn the clip grey. All float32.
    """
    area = rng.uniform(config.crop_area, 1.0, n)
    low, high = np.maximum(CROP_ASPECT[0], area), np.minimum(CROP_ASPECT[1], 1 / area)  # the crop fits
    aspect = np.exp(rng.uniform(np.log(low), np.log(high)))
    height, width = np.sqrt(area / aspect), np.sqrt(area * aspect)
    centre_y = rng.uniform(height / 2, 1 - height / 2)
    centre_x = rng.uniform(width / 2, 1 - width / 2)
    flip = rng.random(n) < 0.5 if config.flip else np.zeros(n, bool)
    s = config.colour_strength
    factors = rng.uniform(1 - 0.8 * s, 1 + 0.8 * s, (n, 3))
    hue = rng.uniform(-0.2 * s, 0.2 * s, (n, 1))
    jittered = rng.random(n) < config.colour_probability
    colour = np.where(jittered[:, None], np.concatenate([factors, hue], axis=1), [1.0, 1.0, 1.0, 0.0])
    grey = rng.random(n) < config.grey_probability
    return {
        "crop": torch.from_numpy(np.stack([centre_y, centre_x, height, width], axis=1)).float(),
        "flip": torch.from_numpy(flip).float(),
        "colour": torch.from_numpy(colour).float(),
        "grey": torch.from_numpy(grey).float(),
    }


def crop_clips(clips: Tensor, crop: Tensor, flip: Tensor) -> Tensor:
    """Each clip's crop, resized back to the frame size (bilinear) and mirrored where ``flip``; the
    same for every frame of a clip (one sampling grid per clip).

    Args:
        clips: (N, T, 3, H, W).
        crop: (N, 4) centre (y, x) and size (height, width), fractions of the frame.
        flip: (N,) 1 to mirror left to right.

    Returns:
        (N, T, 3, H, W).
    """
    n, t, c, h, w = clips.shape
    theta = clips.new_zeros(n, 2, 3)  # output (x, y) in [-1, 1] -> input (x, y)
    theta[:, 0, 0] = crop[:, 3] * (1 - 2 * flip)
    theta[:, 0, 2] = 2 * crop[:, 1] - 1
    theta[:, 1, 1] = crop[:, 2]
    theta[:, 1, 2] = 2 * crop[:, 0] - 1
    grid = F.affine_grid(theta, [n, t * c, h, w], align_corners=False)  # (N, H, W, 2)
    out = F.grid_sample(clips.reshape(n, t * c, h, w), grid, "bilinear", "border", align_corners=False)
    return out.view(n, t, c, h, w)


def grey_value(clips: Tensor) -> Tensor:
    """Each pixel's grey value: (..., 3, H, W) -> (..., 1, H, W)."""
    weights = clips.new_tensor(LUMA).view(3, 1, 1)
    return (clips * weights).sum(dim=-3, keepdim=True)


def turn_hue(clips: Tensor, turns: Tensor) -> Tensor:
    """Hue turned by ``turns`` (a fraction of a full turn) per clip: a rotation of the chroma plane of
    the YIQ colour space, grey values kept. (N, T, 3, H, W), (N,) -> (N, T, 3, H, W)."""
    to_yiq = clips.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    angle = 2 * math.pi * turns
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(turns), 3, 3, dtype=clips.dtype, device=clips.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (N, 3, 3)
    return torch.einsum("nij,ntjhw->ntihw", matrix, clips)


def jitter_colours(clips: Tensor, colour: Tensor, grey: Tensor) -> Tensor:
    """Brightness, contrast, saturation and hue changed by each clip's factors, then grey where
    ``grey``, each result clipped to [0, 1]; the same for every frame of a clip (contrast scales
    about the clip's mean grey value).

    Args:
        clips: (N, T, 3, H, W) in [0, 1].
        colour: (N, 4) brightness, contrast and saturation factors and the hue turn.
        grey: (N,) 1 to turn the clip grey.
    """
    per_clip = colour.view(-1, 4, 1, 1, 1, 1).unbind(1)  # 4 x (N, 1, 1, 1, 1)
    brightness, contrast, saturation = per_clip[:3]
    x = (clips * brightness).clamp(0, 1)
    mean = grey_value(x).mean(dim=(1, 2, 3, 4), keepdim=True)
    x = ((x - mean) * contrast + mean).clamp(0, 1)
    g = grey_value(x)
    x = ((x - g) * saturation + g).clamp(0, 1)
    x = turn_hue(x, colour[:, 3]).clamp(0, 1)
    return torch.where(grey.view(-1, 1, 1, 1, 1) > 0, grey_value(x).expand_as(x), x)


def augment_clips(clips: Tensor, crop: Tensor, flip: Tensor, colour: Tensor, grey: Tensor) -> Tensor:
    """``draw_augmentations``' augmentations applied: (N, T, 3, H, W) in [0, 1] -> the same shape."""
    return jitter_colours(crop_clips(clips, crop, flip), colour, grey)


# ----------------------------------------------------------------------- samples
def clip_starts(
    rng: np.random.Generator, length: int, clip_length: int, max_distance: int
) -> NDArray[np.int64]:
    """The first frames of the two clips of one episode of ``length`` frames, in random order.

    The distance d between them is drawn from CVRL's linearly decreasing distribution over
    0..D (P(d) proportional to D + 1 - d), D = ``max_distance`` or less where the episode is short;
    the earlier clip starts anywhere that leaves room for both.
    """
    room = length - clip_length  # the latest first frame
    most = min(max_distance, room)
    weights = np.arange(most + 1, 0, -1, dtype=np.float64)
    d = int(rng.choice(most + 1, p=weights / weights.sum()))
    first = int(rng.integers(room - d + 1))
    starts = np.array([first, first + d], dtype=np.int64)
    return starts[rng.permutation(2)]


class ContrastiveSamples(Dataset):
    """One sample per episode of ``ids`` with at least ``clip_length`` frames.

    Item: ``clips`` (2, T, 3, H, W) float in [0, 1], the two clips as read (augmented on the
    device: ``augment_clips``); ``episode`` int64, the dataset-wide episode; and each clip's
    augmentation (``draw_augmentations``): ``crop`` (2, 4), ``flip`` (2,), ``colour`` (2, 4),
    ``grey`` (2,). Every random choice comes from a generator seeded by ``(seed, epoch, index)``;
    training datasets draw new clips each epoch (``set_epoch``), validation ones keep epoch 0.
    """

    def __init__(
        self, config: ContrastiveConfig, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool
    ) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        lengths = episodes.table()["length"][ids]
        self.config, self.episodes, self.seed, self.training, self.epoch = config, episodes, seed, training, 0
        self.ids = ids[lengths >= config.clip_length]
        """The episodes sampled, one item each."""
        self.lengths = lengths[lengths >= config.clip_length]
        if hasattr(episodes, "close"):
            episodes.close()  # DataLoader workers open their own handles

    def set_epoch(self, epoch: int) -> None:
        """Draws the random choices of epoch ``epoch`` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        c = self.config
        rng = np.random.default_rng([self.seed, self.epoch, i])
        episode = int(self.ids[i])
        starts = clip_starts(rng, int(self.lengths[i]), c.clip_length, c.max_distance)
        low = int(starts.min())
        frames = self.episodes.frames(episode, low, int(starts.max()) + c.clip_length)
        clips = np.stack([frames[s - low : s - low + c.clip_length] for s in starts])  # (2, T, H, W, 3)
        return {
            "clips": frames_to_tensor(clips),
            "episode": torch.tensor(episode, dtype=torch.int64),
            **draw_augmentations(c, rng, 2),
        }


# ----------------------------------------------------------------------- loss
def info_nce(features: Tensor, episodes: Tensor, temperature: float) -> tuple[Tensor, Tensor, Tensor]:
    """InfoNCE (SimCLR's NT-Xent) over the clips of a batch, each clip against all the others.

    Args:
        features: (2B, D), rows 2i and 2i + 1 the two clips of sample i (any scale: they are
            normalised here, so that the logits are cosine similarities over ``temperature``).
        episodes: (B,) each sample's episode. A clip's candidates are every other clip of the
            batch except the other clips of its own episode than its positive (so that a batch
            holding an episode twice does not count it as its own negative).
        temperature: tau.

    Returns:
        Per clip (2B,): the loss (cross-entropy of the positive among the candidates), whether
        the most similar candidate is the positive (top-1 retrieval), and the number of candidates
        (chance of a hit is one over it).
    """
    z = F.normalize(features, dim=1)
    logits = z @ z.T / temperature  # (2B, 2B)
    owner = episodes.repeat_interleave(2)
    index = torch.arange(len(z), device=z.device)
    positive = index ^ 1
    excluded = owner[:, None] == owner[None, :]  # itself, its positive and other clips of its episode
    excluded[index, positive] = False
    logits = logits.masked_fill(excluded, -math.inf)
    losses = F.cross_entropy(logits, positive, reduction="none")
    return losses, logits.argmax(dim=1) == positive, (~excluded).sum(dim=1)


# ----------------------------------------------------------------------- model and method
def build_backbone(config: ContrastiveConfig) -> VideoEncoder:
    """The encoder ``config.backbone`` names, with fresh weights.

    The method reads it only through the ``VideoEncoder`` interface (the features after a clip's
    last frame, averaged over space), so a new backbone is one entry of ``BACKBONES``, a config
    field and one branch here.
    """
    if config.backbone == "transformer":
        return VideoTransformer(config.transformer)
    return FrameEncoder(config.encoder)


def batch_standardised(features: Tensor) -> Tensor:
    """Each feature less its mean over the batch, over its standard deviation there: (N, C) -> (N, C).

    A fresh encoder's pooled features differ between clips by about a tenth of their size, and
    their spread is below a batch norm's epsilon: the projection would see nearly the same vector
    for every clip. Batch statistics in evaluation too (no running statistics, which would lag
    far behind an encoder whose features grow in training): the task is relative to the batch.
    """
    centred = features - features.mean(dim=0)
    return centred / centred.pow(2).mean(dim=0).sqrt().clamp_min(1e-12)


class ContrastiveModel(PretextModel):
    """The encoder, and the projection head: pooled features, standardised over the batch
    (``batch_standardised``) -> Linear, BatchNorm, ReLU, Linear.

    Args:
        config: the method's settings.
    """

    def __init__(self, config: ContrastiveConfig) -> None:
        super().__init__()
        self.encoder = build_backbone(config)
        channels = self.encoder.out_channels
        self.projection = nn.Sequential(
            nn.Linear(channels, config.projection_hidden),
            nn.BatchNorm1d(config.projection_hidden),
            nn.ReLU(),
            nn.Linear(config.projection_hidden, config.projection_dim),
        )

    def features(self, clips: Tensor) -> Tensor:
        """The encoder's features after each clip's last frame, averaged over space:
        (N, T, 3, H, W) -> (N, C)."""
        return self.encoder(clips).mean(dim=(-2, -1))

    def forward(self, clips: Tensor) -> tuple[Tensor, Tensor]:
        """Pooled features and projections of the clips: (N, T, 3, H, W) -> (N, C), (N, projection_dim)."""
        h = self.features(clips)
        return h, self.projection(batch_standardised(h))


class Contrastive(PretextMethod[ContrastiveConfig]):
    """Contrastive clips (Qian et al. 2021, CVRL, sections 3.1-3.3; Chen et al. 2020, SimCLR, section 2.1).

    Deviations from the papers (docs/pretext_methods.md has the reasons):

    - The encoder is the shared ConvLSTM encoder (16 channels after the last frame, averaged over
      space) or, with ``backbone=transformer``, the small video transformer (64), not a 3D
      ResNet-50 (2,048); the pooled features are standardised over the batch before the
      projection head, which has 2 layers (C -> 128 -> 64), not 3 (CVRL) of 2,048 units.
    - Clips of 8 frames at stride 1, at most 16 frames apart, not 16 frames at stride 2 drawn
      from a whole video: episodes hold 30-43 frames.
    - The trainer's batch (16 episodes by default: 30 candidates per clip) instead of 1,024 (CVRL)
      or 4,096 (SimCLR), and its AdamW and constant learning rate instead of LARS with warm-up and
      cosine decay.
    - Crops keep 50-100% of the frame, not 8-100% (SimCLR) or 30-100% (CVRL): the puck is a few
      pixels. No flip by default (the labels are left and right) and no blur (it erases the puck);
      colour strength 0.5. The hue turn rotates the YIQ chroma plane rather than shifting HSV hue.
    - Augmentations are drawn per sample on the CPU and applied on the device, batched.
    """

    name = "contrastive"
    summary = "contrastive clips (SimCLR/CVRL): two augmented clips of an episode, InfoNCE against the batch"
    source = "Qian et al. 2021, sections 3.1-3.3; Chen et al. 2020, section 2.1"
    config_class = ContrastiveConfig
    selection_metric = "val_loss"
    log_metrics = (
        "val_retrieval_accuracy",
        "val_feature_retrieval_accuracy",
        "baseline_chance_retrieval_accuracy",
        "baseline_pixel_retrieval_accuracy",
    )

    @property
    def backbone_config(self) -> EncoderConfig | TransformerConfig:
        """The sizes of the chosen backbone."""
        return self.config.transformer if self.config.backbone == "transformer" else self.config.encoder

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.backbone_config.image_size)  # type: ignore[return-value]

    def with_image_size(self, size: tuple[int, int]) -> Contrastive:
        """The same method with the chosen backbone set to frames of ``size`` (the other's sizes are
        not read).

        Raises:
            ValueError: when the backbone cannot take that size (a side not divisible by its stride).
        """
        c = self.config
        resized = dataclasses.replace(self.backbone_config, image_size=size)
        field_name = "transformer" if c.backbone == "transformer" else "encoder"
        return type(self)(dataclasses.replace(c, **{field_name: resized}))

    def encoder_config(self) -> dict[str, Any]:
        return {"backbone": self.config.backbone, **to_dict(self.backbone_config)}

    def build_model(self) -> ContrastiveModel:
        return ContrastiveModel(self.config)

    def build_encoder(self) -> VideoEncoder:
        return build_backbone(self.config)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        return ContrastiveSamples(self.config, episodes, ids, seed, training)

    @staticmethod
    def views(batch: dict[str, Tensor]) -> Tensor:
        """The batch's clips, augmented: (B, 2, T, 3, H, W) -> (2B, T, 3, H, W), rows 2i and 2i + 1
        the two clips of sample i."""
        flat = {k: batch[k].flatten(0, 1) for k in ("clips", "crop", "flip", "colour", "grey")}
        return augment_clips(flat["clips"], flat["crop"], flat["flip"], flat["colour"], flat["grey"])

    def loss(self, model: ContrastiveModel, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        _, z = model(self.views(batch))
        return info_nce(z, batch["episode"], self.config.temperature)[0].mean()

    def baselines(self, train_set: Dataset, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Chance (one over each clip's candidates, averaged), and retrieval by pixels: the nearest
        clip by cosine similarity of the augmented last frames, less the batch's mean frame. How
        close the pixel retrieval comes to 1 says how much of the task the raw frames give away."""
        chance, pixels, n = 0.0, 0.0, 0
        for batch in val_loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            last = self.views(batch)[:, -1].flatten(1)  # (2B, 3 H W)
            _, hits, candidates = info_nce(last - last.mean(dim=0), batch["episode"], 1.0)
            chance += float((1.0 / candidates).sum())
            pixels += float(hits.sum())
            n += len(hits)
        return {
            "baseline_chance_retrieval_accuracy": chance / max(n, 1),
            "baseline_pixel_retrieval_accuracy": pixels / max(n, 1),
        }

    def evaluate(
        self, model: ContrastiveModel, val_loader: DataLoader, device: torch.device
    ) -> dict[str, float]:  # type: ignore[override]
        """Per clip, averaged: ``val_loss`` (InfoNCE), ``val_retrieval_accuracy`` (the positive is the
        nearest candidate by the projections) and ``val_feature_retrieval_accuracy`` (by the
        encoder's pooled features, standardised over the batch: what the classifiers read, less
        the projection). Candidates are the clips of the same validation batch."""
        sums = {"val_loss": 0.0, "val_retrieval_accuracy": 0.0, "val_feature_retrieval_accuracy": 0.0}
        n = 0
        for batch in val_loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            h, z = model(self.views(batch))
            losses, hits, _ = info_nce(z, batch["episode"], self.config.temperature)
            feature_hits = info_nce(batch_standardised(h), batch["episode"], 1.0)[1]
            sums["val_loss"] += float(losses.sum())
            sums["val_retrieval_accuracy"] += float(hits.sum())
            sums["val_feature_retrieval_accuracy"] += float(feature_hits.sum())
            n += len(hits)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def derived_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "val_retrieval_accuracy_minus_pixels": metrics["val_retrieval_accuracy"]
            - metrics["baseline_pixel_retrieval_accuracy"]
        }

    def describe(self, metrics: dict[str, Any]) -> str:
        m = metrics
        return (
            f"val retrieval accuracy {m['val_retrieval_accuracy']:.3f} (encoder features "
            f"{m['val_feature_retrieval_accuracy']:.3f}) vs chance "
            f"{m['baseline_chance_retrieval_accuracy']:.3f}, pixels "
            f"{m['baseline_pixel_retrieval_accuracy']:.3f}; "
            f"InfoNCE {m['val_loss']:.3f}"
        )
