"""A finished (or interrupted) pretext run, opened once into a value that later stages receive.

    run = PretextRun.open("runs/pretext")
    run.method.name, run.training.split_seed, run.metrics["val_mse"]
    encoder = run.encoder()        # a VideoEncoder with the trained weights, rebuilt via the registry

Classifiers, ``compare``, ``pipeline``, the report and ``predict`` use only this and the encoder
interface (``learn.methods.base.VideoEncoder``); none of them reads a pretext checkpoint itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from airhockey.errors import UserError
from airhockey.learn.config import PretextConfig, from_dict
from airhockey.learn.methods import get_method
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.encoder import PretextModel, VideoEncoder
from airhockey.learn.pretext.checkpoint import BEST, KIND_PRETEXT, load_checkpoint, resolve_checkpoint


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
                or one of a method that is not registered.
        """
        path = resolve_checkpoint(run_or_checkpoint, BEST)
        ckpt = load_checkpoint(path, KIND_PRETEXT)
        method = get_method(ckpt["method"]).from_dict(ckpt["method_config"])
        folder = path.parent
        config = folder / "config.json"
        metrics = folder / "metrics.json"
        try:
            data = json.loads(config.read_text()).get("data", {}) if config.is_file() else {}
            finished = json.loads(metrics.read_text()) if metrics.is_file() else None
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read the run files in {str(folder)!r}: {err}") from None
        return cls(
            path=path,
            method=method,
            training=from_dict(PretextConfig, ckpt["train_config"]),
            data=data,
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
