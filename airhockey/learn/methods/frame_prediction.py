"""What the frame-prediction methods share: clips as samples, a moving-pixel-weighted loss, and
validation scores of predicted frames against copying the last frame and predicting the mean frame.

A method on ``FramePrediction`` (``next_frame``, ``lvln``, ``composite``) learns from runs of
consecutive frames of an episode (``ClipDataset``) and says, in ``score_model`` and
``score_baselines``, which frames of a clip its model and the baselines predict; the base scores
them all the same way (``metrics.FramePredictionStats``: MSE, PSNR, SSIM, moving-pixel MSE).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.data import ClipDataset
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.encoder import PretextModel
from airhockey.learn.nn.metrics import FramePredictionStats, moving_mask

C = TypeVar("C")


def weighted_mse(
    pred: Tensor, target: Tensor, previous: Tensor, moving_weight: float, threshold: float
) -> Tensor:
    """The training loss: squared error with weight ``1 + moving_weight`` on moving pixels, averaged.

    Args:
        pred, target, previous: (..., 3, H, W): predictions, true frames, and the true frames before.
    """
    weight = 1.0 + moving_weight * moving_mask(previous, target, threshold).to(pred.dtype)
    return (weight * (pred - target) ** 2).mean()


def mean_frame(dataset: Dataset[Tensor], max_clips: int) -> Tensor:
    """The per-pixel mean (3, H, W) of the frames of up to ``max_clips`` clips spread over ``dataset``."""
    n = len(dataset)  # type: ignore[arg-type]
    picks = np.unique(np.linspace(0, n - 1, min(n, max_clips)).round().astype(int))
    total = sum(dataset[int(i)].double().mean(dim=0) for i in picks)
    return (total / len(picks)).float()


class PredictionScores:
    """Accumulates, under each name, the metrics of one predictor's frames, and running means.

    Args:
        moving_threshold: the change that makes a pixel moving (``metrics.moving_mask``).
    """

    def __init__(self, moving_threshold: float) -> None:
        self.moving_threshold = moving_threshold
        self.stats: dict[str, FramePredictionStats] = {}
        self.sums: dict[str, tuple[float, int]] = {}

    def frames(self, name: str, pred: Tensor, target: Tensor, previous: Tensor) -> None:
        """Adds predicted frames of predictor ``name``, each (N, 3, H, W) with its true frame and the
        true frame before that."""
        stats = self.stats.setdefault(name, FramePredictionStats(self.moving_threshold))
        stats.update(pred, target, previous)

    def mean(self, name: str, value: float, count: int) -> None:
        """Adds ``count`` items whose mean is ``value`` to the running mean ``name``."""
        total, n = self.sums.get(name, (0.0, 0))
        self.sums[name] = (total + value * count, n + count)

    def result(self) -> dict[str, float]:
        """``{name}_{mse, psnr, ssim, moving_mse}`` per predictor, then each running mean by its name."""
        scores = {
            f"{name}_{key}": value
            for name, stats in self.stats.items()
            for key, value in stats.result().items()
        }
        scores.update({name: total / max(n, 1) for name, (total, n) in self.sums.items()})
        return scores


class FramePrediction(PretextMethod[C]):
    """Base of the frame-prediction methods: clip samples, baselines, validation and its summary.

    The config must have ``frames_in``, ``clip_length``, ``clip_stride``, ``moving_threshold`` and
    ``mean_frame_clips``. Subclasses build the model, define the loss, and name the frames their
    model and the baselines predict in each validation clip (``score_model``, ``score_baselines``).
    """

    selection_mode = "min"
    predictive = True

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        config: Any = self.config
        return ClipDataset(episodes, config.clip_length, ids, config.clip_stride)

    def baselines(self, train_set: Dataset, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Copying the last frame, and the mean frame of up to ``mean_frame_clips`` training clips."""
        config: Any = self.config
        return self.scores(val_loader, device, mean=mean_frame(train_set, config.mean_frame_clips))

    def evaluate(self, model: PretextModel, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        return self.scores(val_loader, device, model=model)

    @torch.no_grad()
    def scores(
        self,
        loader: DataLoader,
        device: torch.device,
        *,
        model: PretextModel | None = None,
        mean: Tensor | None = None,
    ) -> dict[str, float]:
        """Scores of the model, or of the baselines (the mean frame given), on the loader's clips.

        Raises:
            ValueError: when the loader holds no clip.
        """
        config: Any = self.config
        scores = PredictionScores(config.moving_threshold)
        for clip in loader:
            clip = clip.to(device)  # (B, L, 3, H, W)
            if model is not None:
                self.score_model(model, clip, scores)
            if mean is not None:
                self.score_baselines(mean.to(device), clip, scores)
        if not scores.stats:
            raise ValueError("no validation clips to score")
        return scores.result()

    @abstractmethod
    def score_model(self, model: PretextModel, clip: Tensor, scores: PredictionScores) -> None:
        """Adds the model's predictions of the frames of a batch of clips (B, L, 3, H, W) to
        ``scores``, under names starting with ``val``."""

    @abstractmethod
    def score_baselines(self, mean: Tensor, clip: Tensor, scores: PredictionScores) -> None:
        """Adds the baselines' predictions of the frames that ``score_model`` scores to ``scores``,
        under names starting with ``baseline``; ``mean`` is the mean frame (3, H, W)."""

    def derived_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """``val_mse_vs_copy_last``: the fraction of copy-last's next-frame MSE that the model saves."""
        if "val_mse" not in metrics:
            return {}
        return {"val_mse_vs_copy_last": 1.0 - metrics["val_mse"] / metrics["baseline_copy_last_mse"]}
