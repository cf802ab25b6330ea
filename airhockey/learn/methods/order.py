"""What the order-based methods share (Misra et al. 2016, Lee et al. 2017, Fernando et al. 2017,
Xu et al. 2019, El-Nouby et al. 2019): motion-aware windows, permutation pseudo-labels, per-window
samples, the Siamese feature model and the classification method base.

Sampling reads frames only. An episode's motion is measured from its frames (``frame_motion``:
the mean absolute difference of successive frames), never from the stored physical state, and a
method draws its samples from the windows of an episode that move the most (``motion_windows``),
as Shuffle and Learn and OPN draw theirs from high optical-flow windows. Every random
choice in a sample comes from a generator seeded by ``(seed, epoch, index)``, so the samples are a
function of the frames and the seed alone. That includes OPN's spatial jitter (``jitter_frames``),
an option of every method (``jitter``) that shifts each frame, or each clip, of a sample
by its own few pixels, so that where the puck lies in the frame no longer orders them by itself.

    windows = motion_windows(episodes, ids, span=9, keep=0.75)   # (N, 2): episode, first frame
    sorting_class((2, 0, 3, 1)) == sorting_class((1, 3, 0, 2))   # a tuple and its reverse: one class
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from functools import cache
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.config import EncoderConfig
from airhockey.learn.data import frames_to_tensor
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.autoencoder import FrameEncoder
from airhockey.learn.nn.encoder import PretextModel

C = TypeVar("C")


# ----------------------------------------------------------------------- motion-aware windows
def frame_motion(frames: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Motion between successive frames: (T, H, W, 3) uint8 -> (T - 1,) mean absolute difference in [0, 1]."""
    x = frames.astype(np.int16)
    return np.abs(np.diff(x, axis=0)).mean(axis=(1, 2, 3)) / 255.0


def episode_motion(episodes: Any, ids: NDArray[np.int64]) -> list[NDArray[np.float64]]:
    """``frame_motion`` of each of the episodes ``ids`` (read from their frames once)."""
    return [frame_motion(episodes.frames(int(e))) for e in ids]


def motion_windows(
    episodes: Any,
    ids: NDArray[np.int64],
    span: int,
    keep: float,
    motion: list[NDArray[np.float64]] | None = None,
) -> NDArray[np.int64]:
    """The windows of ``span`` consecutive frames that move the most, over the episodes ``ids``.

    A window's motion is the mean of ``frame_motion`` over its ``span - 1`` transitions; the
    windows at or above the ``1 - keep`` quantile of all windows are kept, so that a sample is
    never drawn where nothing moves (there its order is not in the frames).

    Args:
        episodes: the dataset (``EpisodeShards`` or anything with ``frames(i, start, stop)``).
        ids: dataset-wide indices of the episodes to draw from.
        span: frames in a window (at least 2).
        keep: fraction of the windows kept, in (0, 1]; 1 keeps all.
        motion: ``episode_motion(episodes, ids)``, where already computed.

    Returns:
        (N, 2) int64: the dataset-wide episode and the first frame of each kept window, in
        episode order; empty when no episode has ``span`` frames.
    """
    if span < 2 or not 0 < keep <= 1:
        raise ValueError(f"span must be at least 2 and keep in (0, 1], got {span} and {keep}")
    motion = episode_motion(episodes, ids) if motion is None else motion
    rows, scores = [], []
    for episode, m in zip(ids, motion, strict=True):
        n = len(m) - span + 2  # windows of span frames in len(m) + 1 frames
        if n < 1:
            continue
        sums = np.concatenate([[0.0], np.cumsum(m)])
        scores.append((sums[span - 1 :] - sums[:n]) / (span - 1))
        rows.append(np.stack([np.full(n, episode), np.arange(n)], axis=1))
    if not rows:
        return np.zeros((0, 2), np.int64)
    windows, score = np.concatenate(rows).astype(np.int64), np.concatenate(scores)
    threshold = np.quantile(score, 1.0 - keep) if keep < 1 else -np.inf
    return windows[score >= threshold]


def spaced_positions(rng: np.random.Generator, count: int, span: int, gap: int) -> NDArray[np.int64]:
    """``count`` sorted frame positions in ``range(span)``, successive ones at least ``gap`` apart.

    Raises:
        ValueError: when ``span < (count - 1) * gap + 1``.
    """
    free = span - (count - 1) * (gap - 1)
    if free < count:
        raise ValueError(f"{count} positions {gap} apart do not fit in {span} frames")
    return np.sort(rng.choice(free, count, replace=False)) + np.arange(count) * (gap - 1)


def jitter_frames(frames: NDArray[Any], max_shift: int, rng: np.random.Generator) -> NDArray[Any]:
    """OPN's spatial jitter: each item of the first axis of ``frames`` moved by its own random whole
    number of pixels, ``dy`` down and ``dx`` right, each drawn uniformly from ``[-max_shift, max_shift]``;
    the uncovered border repeats the edge pixels.

    Args:
        frames: (N, H, W, C) frames, each shifted on its own, or (N, T, H, W, C) clips, all frames
            of a clip shifted alike (so that they stay aligned for the encoder's recurrence).
        max_shift: largest shift in pixels along each axis; 0 returns ``frames`` itself.
        rng: the sample's generator; (N, 2) integers are drawn from it when ``max_shift`` > 0.

    Returns:
        An array of the shape and dtype of ``frames``.
    """
    if max_shift == 0:
        return frames
    s = max_shift
    h, w = frames.shape[-3:-1]
    shifts = rng.integers(-s, s + 1, size=(len(frames), 2))  # (N, 2): dy, dx
    padded = np.pad(frames, [(0, 0)] * (frames.ndim - 3) + [(s, s), (s, s), (0, 0)], mode="edge")
    return np.stack(
        [
            item[..., s - dy : s - dy + h, s - dx : s - dx + w, :]
            for item, (dy, dx) in zip(padded, shifts, strict=True)
        ]
    )


# ----------------------------------------------------------------------- permutation pseudo-labels
@cache
def sorting_classes(n: int) -> tuple[tuple[int, ...], ...]:
    """The n!/2 classes of OPN's sorting task: one permutation of each pair {p, reversed p}, the one
    with ``p[0] < p[-1]``, in lexicographic order (n = 4: 12 classes)."""
    return tuple(p for p in itertools.permutations(range(n)) if p[0] < p[-1])


def sorting_class(perm: tuple[int, ...] | NDArray[np.int64]) -> int:
    """The sorting class of a shuffled tuple whose k-th frame is the ``perm[k]``-th in time; a tuple
    and its reverse have the same class."""
    p = tuple(int(v) for v in perm)
    return sorting_classes(len(p)).index(p if p[0] < p[-1] else p[::-1])


@cache
def order_classes(n: int) -> tuple[tuple[int, ...], ...]:
    """The n! orders of VCOP's clip order task, in lexicographic order (n = 3: 6 classes)."""
    return tuple(itertools.permutations(range(n)))


@cache
def scrambled_orders(n: int) -> tuple[tuple[int, ...], ...]:
    """The orders of n frames that are neither forward nor backward (n = 3: the 4 with the middle
    frame out of place): a reversed sub-sequence is plausible motion, so it cannot be the odd one."""
    return tuple(
        p for p in itertools.permutations(range(n)) if p not in (tuple(range(n)), tuple(range(n))[::-1])
    )


# ----------------------------------------------------------------------- samples
class WindowSamples(Dataset):
    """One sample per high-motion window of ``span`` frames of the episodes ``ids``.

    Item ``i`` reads window ``i``'s frames and hands them, with a generator seeded by
    ``(seed, epoch, i)``, to ``make``, which the methods implement. Training datasets draw new
    shuffles each epoch (``set_epoch``); validation datasets keep epoch 0, so they never change
    (their jitter included).

    Args:
        episodes: the dataset (``EpisodeShards``, or anything with ``frames(i, start, stop)``).
        ids: dataset-wide indices of the episodes to draw from.
        span: frames in a window.
        keep: fraction of the windows, the most moving, that samples come from.
        seed: seed of the random choices.
        training: training samples (True) or validation samples.
        jitter: largest shift in pixels of ``jitter_frames`` on the samples; 0: none.
    """

    def __init__(
        self,
        episodes: Any,
        ids: NDArray[np.int64],
        span: int,
        keep: float,
        seed: int,
        training: bool,
        jitter: int = 0,
    ) -> None:
        self.episodes = episodes
        self.ids = np.asarray(ids, dtype=np.int64)
        self.motion = episode_motion(episodes, self.ids)
        """``frame_motion`` of each episode of ``ids``."""
        self.windows = motion_windows(episodes, self.ids, span, keep, self.motion)
        """(N, 2): the episode and first frame of each sample's window."""
        self.span, self.seed, self.training, self.epoch = span, seed, training, 0
        self.jitter = jitter
        """Largest shift of ``jitter_frames`` on this dataset's samples (validation's too: its
        accuracy is that of the jittered task)."""
        if hasattr(episodes, "close"):
            episodes.close()  # DataLoader workers open their own handles

    def set_epoch(self, epoch: int) -> None:
        """Draws the random choices of epoch ``epoch`` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        episode, start = (int(v) for v in self.windows[i])
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return self.make(self.episodes.frames(episode, start, start + self.span), rng, episode)

    @abstractmethod
    def make(self, frames: NDArray[np.uint8], rng: np.random.Generator, episode: int) -> dict[str, Tensor]:
        """One sample from a window's frames (span, H, W, 3) uint8, drawing with ``rng``."""


class OrderSamples(WindowSamples):
    """Classification samples: ``clips`` (n, T, 3, H, W) float in [0, 1] and ``label`` int64.

    ``positions`` returns the frame positions in the window, (n, T), and the label; the clips are
    read from them and jittered (``jitter_frames``): every frame by its own shift,
    or with ``jitter_whole_clips`` every clip by one. The jitter is drawn after the positions, so
    it changes a sample's pixels but not which frames it holds or its label.
    """

    jitter_whole_clips: bool = False
    """Shift all frames of a clip alike (one shift per clip) rather than each frame on its own; a
    subclass may set it per instance from its config."""

    def make(self, frames: NDArray[np.uint8], rng: np.random.Generator, episode: int) -> dict[str, Tensor]:
        positions, label = self.positions(rng)
        clips = frames[positions]  # (n, T, H, W, 3)
        if self.jitter_whole_clips:
            clips = jitter_frames(clips, self.jitter, rng)
        else:
            clips = jitter_frames(clips.reshape(-1, *frames.shape[1:]), self.jitter, rng).reshape(clips.shape)
        return {"clips": frames_to_tensor(clips), "label": torch.tensor(label, dtype=torch.int64)}

    @abstractmethod
    def positions(self, rng: np.random.Generator) -> tuple[NDArray[np.int64], int]:
        """The window positions of the sample's frames, (n, T), and its class."""


# ----------------------------------------------------------------------- models
class OrderModel(PretextModel):
    """The Siamese model of the order tasks: the shared encoder reads each frame or clip of a sample
    on its own, a projection makes a vector of it (OPN's fc6), and a fusion head classifies them.

    Args:
        encoder: the shared frame encoder's sizes.
        feature_dim: units of the projection.
        head: fusion and classifier: (B, n, feature_dim) -> (B, classes) logits.
        pool: average the encoder's maps over space before the projection (the global average
            pooling that ends VCOP's 3D CNNs), so that the projection sees (C,) channel means
            rather than the (C, h, w) maps, and cannot read where things are from a map's layout.
            The means are batch-normalised first: a fresh encoder's channel means differ between
            clips too little for a linear layer to read in a few thousand steps, which would make
            a frozen-encoder check fail for scale, not content.
    """

    def __init__(self, encoder: EncoderConfig, feature_dim: int, head: nn.Module, pool: bool = False) -> None:
        super().__init__()
        self.encoder = FrameEncoder(encoder)
        channels = self.encoder.out_channels
        readout: list[nn.Module] = (
            [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(channels)] if pool else [nn.Flatten()]
        )
        inputs = channels if pool else self.encoder.feature_count
        self.project = nn.Sequential(*readout, nn.Linear(inputs, feature_dim), nn.ReLU())
        self.head = head

    def features(self, clips: Tensor) -> Tensor:
        """One vector per frame or clip: (B, n, T, 3, H, W) -> (B, n, feature_dim).

        Each clip is encoded from a zero state (T = 1: a single frame), and the features after its
        last frame are projected.
        """
        b, n = clips.shape[:2]
        maps = self.encoder(clips.flatten(0, 1))  # (B n, C, h, w)
        return self.project(maps).unflatten(0, (b, n))

    def forward(self, clips: Tensor) -> Tensor:
        """Class logits: (B, n, T, 3, H, W) -> (B, classes)."""
        return self.head(self.features(clips))


def mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """One hidden ReLU layer: (..., in_features) -> (..., out_features)."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


def centred(features: Tensor, center: bool) -> Tensor:
    """(B, n, D) features less their mean over the n frames or clips of each sample, when ``center``.

    The frames of a sample share a static table that dominates their features; what orders them
    is the small rest. Differences remove the shared part by themselves; concatenations do not,
    and from a fresh encoder they barely start learning (``docs/pretext_order_methods.md``).
    """
    return features - features.mean(dim=1, keepdim=True) if center else features


class ConcatenationHead(nn.Module):
    """Features (centred, see ``centred``) concatenated, then a hidden layer: (B, n, D) -> (B, classes)."""

    def __init__(self, inputs: int, feature_dim: int, hidden: int, classes: int, center: bool = True) -> None:
        super().__init__()
        self.center = center
        self.classify = mlp(inputs * feature_dim, hidden, classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.classify(centred(features, self.center).flatten(1))


class PairwiseHead(nn.Module):
    """Pairwise fusion: for every pair i < j, the difference ``f_i - f_j`` (OPN) or the concatenation
    ``[f_i, f_j]`` (VCOP) through a layer shared by the pairs; the pair vectors are concatenated
    and classified by a hidden layer. (B, n, D) -> (B, classes).

    Args:
        inputs: n, the frames or clips of a sample.
        feature_dim: D.
        pair_dim: units of the shared pair layer.
        hidden: units of the classifier's hidden layer.
        classes: outputs.
        combine: "difference" or "concat".
        center: concatenate centred features (see ``centred``); differences need not be.
    """

    def __init__(
        self,
        inputs: int,
        feature_dim: int,
        pair_dim: int,
        hidden: int,
        classes: int,
        combine: str,
        center: bool = True,
    ) -> None:
        super().__init__()
        if combine not in ("difference", "concat"):
            raise ValueError(f"combine must be 'difference' or 'concat', got {combine!r}")
        pairs = list(itertools.combinations(range(inputs), 2))
        self.register_buffer("first", torch.tensor([i for i, _ in pairs]), persistent=False)
        self.register_buffer("second", torch.tensor([j for _, j in pairs]), persistent=False)
        self.combine, self.center = combine, center
        width = feature_dim if combine == "difference" else 2 * feature_dim
        self.pair = nn.Sequential(nn.Linear(width, pair_dim), nn.ReLU())
        self.classify = mlp(len(pairs) * pair_dim, hidden, classes)

    def forward(self, features: Tensor) -> Tensor:
        if self.combine == "concat":
            features = centred(features, self.center)
        first, second = features[:, self.first], features[:, self.second]  # (B, pairs, D) each
        pairs = first - second if self.combine == "difference" else torch.cat([first, second], dim=-1)
        return self.classify(self.pair(pairs).flatten(1))


class OrderClassification(PretextMethod[C]):
    """Base of the order classification tasks: cross-entropy on ``OrderModel``'s logits, validation
    accuracy against chance, the best checkpoint by validation accuracy.

    Subclasses set ``classes`` (via the config), build the head (``head``) and the samples.
    """

    selection_metric: ClassVar[str] = "val_accuracy"
    selection_mode = "max"
    log_metrics = ("val_loss", "baseline_chance_accuracy")

    @property
    @abstractmethod
    def classes(self) -> int:
        """Classes of the task."""

    @abstractmethod
    def head(self) -> nn.Module:
        """The fusion and classifier head: (B, n, feature_dim) -> (B, classes)."""

    def build_model(self) -> OrderModel:
        config: Any = self.config
        return OrderModel(config.encoder, config.feature_dim, self.head())

    def build_encoder(self) -> FrameEncoder:
        config: Any = self.config
        return FrameEncoder(config.encoder)

    def loss(self, model: OrderModel, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        return F.cross_entropy(model(batch["clips"]), batch["label"])

    def baselines(self, train_set: Dataset, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Chance (a uniform guess) and the majority class of the validation samples."""
        counts = torch.zeros(self.classes, dtype=torch.int64)
        for batch in val_loader:
            counts += torch.bincount(batch["label"], minlength=self.classes)
        total = max(int(counts.sum()), 1)
        return {
            "baseline_chance_accuracy": 1.0 / self.classes,
            "baseline_majority_accuracy": int(counts.max()) / total,
        }

    def evaluate(self, model: OrderModel, val_loader: DataLoader, device: torch.device) -> dict[str, float]:  # type: ignore[override]
        correct, loss, n = 0, 0.0, 0
        for batch in val_loader:
            clips, label = batch["clips"].to(device), batch["label"].to(device)
            logits = model(clips)
            loss += float(F.cross_entropy(logits, label, reduction="sum"))
            correct += int((logits.argmax(dim=1) == label).sum())
            n += len(label)
        return {"val_accuracy": correct / max(n, 1), "val_loss": loss / max(n, 1)}

    def derived_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {"val_accuracy_over_chance": metrics["val_accuracy"] / metrics["baseline_chance_accuracy"]}

    def describe(self, metrics: dict[str, Any]) -> str:
        m = metrics
        return (
            f"val accuracy {m['val_accuracy']:.3f} vs chance {m['baseline_chance_accuracy']:.3f} "
            f"({m['val_accuracy'] / m['baseline_chance_accuracy']:.2f}x), "
            f"majority class {m['baseline_majority_accuracy']:.3f}"
        )
