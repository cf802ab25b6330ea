"""The contract between a pretext method, the generic trainer, and everything downstream.

``PretextMethod`` is what ``learn.pretext.trainer.train_pretext`` needs to train any method, as in
solo-learn's method base class and OpenSTL's cell -> model -> method split: its config dataclass,
the model (a ``PretextModel`` whose ``encoder`` attribute is a ``VideoEncoder``, both in
``learn.nn.encoder``), the training samples it draws from the episodes of a split, its loss on a
batch, its validation metrics with the baselines that make them meaningful, and the metric that
picks the best checkpoint.

A method is one module under ``airhockey/learn/methods/`` and one line in ``METHODS``
(``learn.methods``); ``docs/pretext.md`` ("Adding a method") has a worked example. The predictive
methods share more on ``frame_prediction.FramePrediction``, the order tasks on
``order.OrderClassification``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.config import from_dict, to_dict
from airhockey.learn.nn.encoder import PretextModel, VideoEncoder

C = TypeVar("C")
Batch = Any
"""What the DataLoader yields from a method's samples (default collate): a tensor, or a tuple or
dict of tensors; the trainer moves it to the device with ``to_device``."""


class PretextMethod(ABC, Generic[C]):
    """A self-supervised pretext task: samples, model, loss, validation and checkpoint selection.

    A method instance holds its config (``self.config``, an instance of ``config_class``).
    Everything the trainer calls is a pure function of the config, the frames and the seeds it is
    given, so the same seed gives the same run on CPU.

    Class attributes to set:
        name: the registry name (``--method NAME``).
        summary: one line for ``airhockey learn methods``.
        source: the paper the method comes from, by author and year, and section (e.g.
            "Han et al. 2021, section 4.4"; docs/references.md lists them).
        config_class: the frozen dataclass of the method's settings; it must have an
            ``image_size`` field or an ``encoder: EncoderConfig`` field (see ``with_image_size``).
        selection_metric: the validation metric that picks ``best.pt``.
        selection_mode: "min" or "max": which direction of ``selection_metric`` is better.
        log_metrics: validation and baseline keys written to ``log.csv`` besides the selection metric.
        predictive: whether the model predicts frames (``predict_episode`` works).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    source: ClassVar[str]
    config_class: ClassVar[type]
    selection_metric: ClassVar[str]
    selection_mode: ClassVar[Literal["min", "max"]] = "min"
    log_metrics: ClassVar[tuple[str, ...]] = ()
    predictive: ClassVar[bool] = False
    stored_defaults: ClassVar[dict[str, Any]] = {}
    """Settings added after runs of the method were first written, with the value those runs had:
    a stored config without such a field reads as this value, not as the field's current default
    (so that an old run still builds the model its checkpoint holds)."""

    def __init__(self, config: C | None = None) -> None:
        self.config: C = config if config is not None else self.config_class()

    # ----------------------------------------------------------------- config
    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> PretextMethod[C]:
        """The method with a config read back from ``config_dict()`` (JSON or a checkpoint); fields
        the stored config lacks take ``stored_defaults``, then the config's defaults."""
        return cls(from_dict(cls.config_class, {**cls.stored_defaults, **fields}))

    def config_dict(self) -> dict[str, Any]:
        """The config as plain data, stored in checkpoints and ``config.json``."""
        return to_dict(self.config)

    @property
    def image_size(self) -> tuple[int, int]:
        """The frame size (height, width) the model reads."""
        config: Any = self.config
        return tuple(config.encoder.image_size if hasattr(config, "encoder") else config.image_size)

    def with_image_size(self, size: tuple[int, int]) -> PretextMethod[C]:
        """The same method for frames of ``size`` (the trainer calls it with the data's frame size).

        Raises:
            ValueError: when the config cannot take that size (e.g. not divisible by the stem's stride).
        """
        config: Any = self.config
        if hasattr(config, "encoder"):
            config = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, image_size=size))
        else:
            config = dataclasses.replace(config, image_size=size)
        return type(self)(config)

    # ----------------------------------------------------------------- model
    @abstractmethod
    def build_model(self) -> PretextModel:
        """The model, with fresh weights drawn from torch's global generator (the trainer seeds it)."""

    @abstractmethod
    def build_encoder(self) -> VideoEncoder:
        """The model's encoder alone (same class and sizes as ``build_model().encoder``), to load
        trained weights into: what classifiers and probes build."""

    def encoder_config(self) -> dict[str, Any]:
        """The encoder's sizes as plain data, recorded in checkpoints beside the method's config."""
        config: Any = self.config
        return to_dict(config.encoder) if hasattr(config, "encoder") else {"image_size": self.image_size}

    # ----------------------------------------------------------------- data
    @abstractmethod
    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        """The samples this method learns from, drawn from the episodes ``ids`` of a dataset.

        Args:
            episodes: the dataset, as ``generate.open_shards`` returns it (``EpisodeShards``).
            ids: dataset-wide indices of the episodes of one part of the split.
            seed: seed of any random choice in the samples (shuffles, negatives); the items must be
                a function of the frames and this seed alone (never labels or stored state).
            training: True for training samples, False for validation (which should not change
                between validations). A training dataset may define ``set_epoch(epoch)``; the
                trainer calls it before each epoch, so random samples can differ between epochs.

        Returns:
            A map-style Dataset whose items the default collate function batches.
        """

    # ----------------------------------------------------------------- training and validation
    @abstractmethod
    def loss(self, model: PretextModel, batch: Batch) -> Tensor:
        """The scalar training loss of ``model`` on a batch (already on the model's device)."""

    def baselines(self, train_set: Dataset, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Scores of trivial predictors on the validation samples (computed once per run), named
        ``baseline_*``: what makes the validation metrics meaningful (copy-last, chance...)."""
        return {}

    @abstractmethod
    def evaluate(self, model: PretextModel, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Validation metrics of ``model`` on the validation samples, named ``val_*``; they include
        ``selection_metric``. Called with the model in eval mode and gradients off."""

    def describe(self, metrics: dict[str, Any]) -> str:
        """One line for the console about a finished run's ``metrics.json``."""
        value = metrics.get(self.selection_metric)
        return f"{self.selection_metric} {value:.6g}" if isinstance(value, float) else ""

    def derived_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Extra entries of ``metrics.json`` computed from the best validation and the baselines."""
        return {}

    # ----------------------------------------------------------------- prediction (predictive methods)
    @property
    def predicts_frames(self) -> bool:
        """Whether this method, with its config, predicts frames (``predict_episode`` works):
        ``predictive``, unless the config turns the prediction off."""
        return self.predictive

    def predict_episode(self, model: PretextModel, frames: Tensor, steps: int) -> tuple[Tensor, Tensor]:
        """One-step and ``steps``-step predictions of every frame of an episode (predictive methods).

        Args:
            model: the trained model, in eval mode.
            frames: (T, 3, H, W) in [0, 1], a whole episode.
            steps: how far ahead the rollout predicts (1 gives the one-step predictions again).

        Returns:
            ``one_step`` and ``k_step``, each (T, 3, H, W) in [0, 1]: ``one_step[t]`` predicts frame t
            from true frames before it, ``k_step[t]`` from true frames up to t - steps with the
            predictions in between fed back. Frames with too little history are NaN.
        """
        raise NotImplementedError(f"method {self.name!r} does not predict frames")


def to_device(batch: Batch, device: torch.device) -> Batch:
    """A batch (tensor, or tuple/list/dict of them) moved to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
