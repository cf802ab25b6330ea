"""A finished (or interrupted) pretext run, opened once into a value that later stages receive.

    run = PretextRun.open("runs/pretext")
    run.method.name, run.training.split_seed, run.metrics["val_mse"]
    encoder = run.encoder()        # a VideoEncoder with the trained weights, rebuilt via the registry

Classifiers, ``compare``, ``pipeline``, the report and ``predict`` use only this and the encoder
interface (``learn.methods.base.VideoEncoder``); none of them reads a pretext checkpoint itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from airhockey.errors import UserError
from airhockey.learn.config import PretextConfig, from_dict
from airhockey.learn.methods import get_method
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.encoder import PretextModel, VideoEncoder
from airhockey.learn.pretext.checkpoint import BEST, KIND_PRETEXT, load_checkpoint, resolve_checkpoint
from airhockey.learn.pretext.trainer import STOP_REASONS
from airhockey.records import REST, read_json_file, record_of, to_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class RunData:
    """What a run's ``config.json`` records of the dataset it was trained on."""

    path: str
    """The dataset's path, as given."""
    fingerprint: str | None
    """``EpisodeShards.fingerprint`` of the dataset (None for datasets without one)."""
    split_seed: int
    """The seed of the train/val/test split of its episodes."""
    train_episodes: tuple[int, ...]
    """The episodes of each part of the split."""
    val_episodes: tuple[int, ...]
    test_episodes: tuple[int, ...]


@dataclass(frozen=True)
class RunConfig:
    """A pretext run's ``config.json``: what trained it."""

    method: str
    """The method's registry name."""
    method_config: dict[str, Any]
    """The method's config as plain data."""
    encoder: dict[str, Any]
    """The encoder's config as plain data."""
    training: dict[str, Any]
    """The trainer's settings (``PretextConfig``) as plain data."""
    command: str
    """The command line that started the run."""
    data: RunData | None
    """The dataset; None (written as an empty object) for runs on samples in memory."""


@dataclass(frozen=True)
class RunMetrics:
    """A finished pretext run's ``metrics.json``."""

    method: str
    """The method's registry name."""
    val_samples: int
    """Validation samples."""
    best_epoch: int
    """The epoch of the best validation."""
    best_step: int
    """The optimiser step of the best validation."""
    epochs_done: int
    """Epochs begun."""
    steps: int
    """Optimiser steps done."""
    stopped_by: str
    """Why the run stopped (a key of ``trainer.STOP_REASONS``)."""
    train_seconds_this_session: float
    """Seconds of the session that finished the run."""
    device: str
    """The device it trained on."""
    threads: int
    """Torch threads."""
    parameters: int
    """Parameters of the model."""
    values: dict[str, float] = field(default_factory=dict, metadata=REST)
    """The best validation's metrics, the baselines and the derived metrics, by name."""


def read_config(folder: Path) -> RunConfig | None:
    """The ``config.json`` of the run folder ``folder``, or None where there is none.

    Raises:
        UserError: one line naming the file and the field, for a damaged file.
    """
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return None
    data = read_json_file(path)
    if isinstance(data, dict) and data.get("data") == {}:
        data = {**data, "data": None}  # runs on samples in memory record no dataset
    return record_of(RunConfig, data, path, "pretext run's config")


def read_metrics(folder: Path, selection_metric: str | None = None) -> dict[str, Any] | None:
    """The ``metrics.json`` of the run folder ``folder`` as plain data, checked field by field; None
    for a run that has not finished.

    Args:
        folder: the run folder.
        selection_metric: a metric the file must hold (the method's selection metric).

    Raises:
        UserError: one line naming the file and the field, for a damaged file.
    """
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return None
    data = read_json_file(path)
    metrics = record_of(RunMetrics, data, path, "pretext run's metrics")
    problem = None
    if metrics.stopped_by not in STOP_REASONS:
        problem = f"field 'stopped_by': {metrics.stopped_by!r} is none of {', '.join(STOP_REASONS)}"
    elif selection_metric is not None and selection_metric not in metrics.values:
        problem = f"field {selection_metric!r}: missing"
    if problem:
        raise UserError(f"{path}: {problem}: restore it or run again")
    return data


@dataclass(frozen=True)
class PretextRun:
    """What later stages need of a pretext run: the method, the settings, the data it read, its metrics."""

    path: Path
    """The checkpoint file (the run's ``best.pt`` when a folder was given)."""
    method: PretextMethod[Any]
    """The method, with the run's config."""
    training: PretextConfig
    """The trainer's settings (``split_seed`` gives the split the classifiers must use)."""
    data: dict[str, Any]
    """What ``config.json`` records of the data: path, fingerprint, split seed, episodes of each part
    (empty for runs trained on in-memory samples or folders without ``config.json``)."""
    metrics: dict[str, Any] | None
    """``metrics.json``, or None for a run that has not finished."""
    step: int
    """The optimiser step of the checkpoint's weights."""
    _state: dict[str, Any]

    @classmethod
    def open(cls, run_or_checkpoint: str | Path) -> PretextRun:
        """Opens a run folder (its ``best.pt``) or a pretext checkpoint file.

        Raises:
            UserError: a missing or unreadable checkpoint, one of another kind or format version,
                or one of a method that is not registered; a damaged ``config.json`` or
                ``metrics.json`` (naming the file and the field).
        """
        path = resolve_checkpoint(run_or_checkpoint, BEST)
        ckpt = load_checkpoint(path, KIND_PRETEXT)
        method = get_method(ckpt["method"]).from_dict(ckpt["method_config"])
        folder = path.parent
        config = read_config(folder)
        data = config.data if config is not None else None
        finished = read_metrics(folder, method.selection_metric)
        return cls(
            path=path,
            method=method,
            training=from_dict(PretextConfig, ckpt["train_config"]),
            data={} if data is None else to_json(data),
            metrics=finished,
            step=int(ckpt.get("step", 0)),
            _state={"model": ckpt["model"], "encoder": ckpt["encoder"]},
        )

    @property
    def folder(self) -> Path:
        """The run folder."""
        return self.path.parent

    @property
    def name(self) -> str:
        """A short name for reports: the run folder's name."""
        return self.folder.name or str(self.folder)

    @property
    def image_size(self) -> tuple[int, int]:
        """The frame size (height, width) the model reads."""
        return self.method.image_size

    def encoder(self, device: str | torch.device = "cpu") -> VideoEncoder:
        """The trained encoder, in training mode with gradients on, ready to be frozen or fine-tuned."""
        encoder = self.method.build_encoder()
        encoder.load_state_dict(self._state["encoder"])
        return encoder.to(device)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The trained encoder's state dict (for loading into a classifier's encoder)."""
        return self._state["encoder"]

    def model(self, device: str | torch.device = "cpu") -> PretextModel:
        """The whole trained model, in eval mode (for predictions)."""
        model = self.method.build_model()
        model.load_state_dict(self._state["model"])
        return model.to(device).eval()

    def summary(self) -> dict[str, Any]:
        """What a report records of the run: path, method, its config, step and metrics."""
        return {
            "path": str(self.folder),
            "method": self.method.name,
            "method_config": self.method.config_dict(),
            "step": self.step,
            "metrics": self.metrics,
        }
