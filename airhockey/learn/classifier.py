"""The direction classifier of seed 000 (sections 4.2-4.4): frame encoder -> one hidden layer -> softmax.

The encoder is the pretext autoencoder's ``FrameEncoder`` (stem and two ConvLSTM layers, run on a
single frame from a zero state); the head flattens its feature map (B, C, h, w), so that where the
puck and bar are stays readable, standardises each feature with statistics of the training frames
(``FeatureScaler``, the one addition to seed 000's head), and maps it through one hidden layer to
one logit per class.
Both arms of the comparison build this same model: ``build_classifier(config, pretext=RUN)`` loads
the encoder's weights from a pretext run, ``build_classifier(config)`` leaves them random.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from airhockey.learn.autoencoder import AutoencoderConfig, FrameEncoder, load_encoder
from airhockey.learn.checkpoint import load_checkpoint

KIND = "classifier"
"""The ``kind`` recorded in checkpoints of this model."""
MODEL_FILE = "model.pt"
"""The trained classifier in a classify run folder (the weights of its best validation epoch)."""


@dataclass(frozen=True)
class ClassifierConfig:
    """Sizes of the classifier; stored in every checkpoint to rebuild the model."""

    encoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    """The pretext model's sizes, of which the frame encoder's are used."""
    num_classes: int = 2
    """Classes of the softmax: 2 for left/right, 5 for data generated with ``--labels all``."""
    hidden: int = 64
    """Units of the hidden layer."""
    dropout: float = 0.5
    """Dropout on the encoder's features and on the hidden layer while training."""

    def __post_init__(self) -> None:
        if self.num_classes < 2 or self.hidden < 1:
            raise ValueError(f"need num_classes >= 2 and hidden >= 1, got {self.num_classes}, {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def feature_count(self) -> int:
        """Values in the encoder's flattened feature map, C * h * w."""
        h, w = self.encoder.feature_size
        return self.encoder.hidden_channels * h * w

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields, the encoder's as a nested dict (what checkpoints store)."""
        return {**dataclasses.asdict(self), "encoder": self.encoder.to_dict()}

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> ClassifierConfig:
        """The inverse of ``to_dict``."""
        return cls(**{**fields, "encoder": AutoencoderConfig.from_dict(fields["encoder"])})


class FeatureScaler(nn.Module):
    """Standardises each feature with a mean and standard deviation fit once, then fixed: (B, F) -> (B, F).

    The encoder's features of one frame differ from another's in few places and by little (the
    puck and bar are a few pixels): for a pretext encoder on 32x32 frames, a standard deviation
    across frames of about a fiftieth of their mean size, on which a plain head barely learns.
    Standardised, those differences are what the head sees. The statistics are fit on the training
    frames through the encoder as training starts (``fit``) and then kept, so that training and
    testing scale alike however the encoder is fine-tuned (batch normalisation, tried first, scored
    lower after fine-tuning). They are buffers, saved with the model.
    """

    VARIANCE_FLOOR = 1e-8
    """Added to each variance, so that a feature constant over the training frames stays finite."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    @torch.no_grad()
    def fit(self, features: Tensor) -> None:
        """Sets the statistics from features (N, F) of the training frames."""
        features = features.double()  # small variations on a larger mean: float32 sums lose them
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_((features.var(dim=0, correction=0) + self.VARIANCE_FLOOR).sqrt())

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class DirectionClassifier(nn.Module):
    """Frame encoder, then one hidden layer, then a softmax over the classes.

    ``forward`` returns logits (the softmax is folded into the cross-entropy loss);
    ``predict_proba`` returns the softmax.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = FrameEncoder(config.encoder)
        self.head = nn.Sequential(
            nn.Flatten(),
            FeatureScaler(config.feature_count),
            nn.Dropout(config.dropout),
            nn.Linear(config.feature_count, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_classes),
        )

    def forward(self, frames: Tensor) -> Tensor:
        """(B, 3, H, W) frames in [0, 1] -> (B, num_classes) logits."""
        return self.head(self.encoder(frames))  # encoder: (B, C, h, w)

    @torch.no_grad()
    def predict_proba(self, frames: Tensor) -> Tensor:
        """(B, 3, H, W) frames in [0, 1] -> (B, num_classes) class probabilities."""
        return torch.softmax(self(frames), dim=-1)

    @property
    def scaler(self) -> FeatureScaler:
        """The head's feature standardisation, to ``fit`` before training."""
        return self.head[1]  # type: ignore[return-value]

    def set_encoder_trainable(self, trainable: bool) -> None:
        """Freezes (False) or unfreezes (True) the encoder's weights; the head always trains."""
        self.encoder.requires_grad_(trainable)

    @property
    def encoder_trainable(self) -> bool:
        """Whether the encoder's weights currently receive gradients."""
        return any(p.requires_grad for p in self.encoder.parameters())


def encoder_config(pretext: str | Path) -> AutoencoderConfig:
    """The model sizes of a pretext run (its ``best.pt``) or checkpoint file."""
    from airhockey.learn.autoencoder import KIND as PRETEXT

    return AutoencoderConfig.from_dict(load_checkpoint(pretext, PRETEXT)["model_config"])


def build_classifier(
    config: ClassifierConfig, seed: int, pretext: str | Path | None = None
) -> DirectionClassifier:
    """A classifier with weights drawn from ``seed``, and the encoder's from ``pretext`` if given.

    The random draws do not depend on ``pretext``: the two arms of a comparison built with the
    same seed start from the same head.

    Args:
        config: the model's sizes; with ``pretext``, ``config.encoder`` must be the run's.
        seed: seed of the initial weights.
        pretext: a pretext run folder or checkpoint file, or None for a random encoder.

    Raises:
        UserError: when the pretext checkpoint is missing or unreadable.
        ValueError: when the pretext model's sizes are not ``config.encoder``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DirectionClassifier(config)
    if pretext is not None:
        encoder = load_encoder(pretext)
        if encoder.config != config.encoder:
            raise ValueError(
                f"the pretext run's model is {encoder.config}, the classifier's {config.encoder}"
            )
        model.encoder.load_state_dict(encoder.state_dict())
    return model


def load_classifier(run_or_checkpoint: str | Path, device: str | torch.device = "cpu") -> DirectionClassifier:
    """The classifier of a ``learn classify`` run (its ``model.pt``) or checkpoint file, in eval mode."""
    ckpt = load_checkpoint(run_or_checkpoint, KIND, name=MODEL_FILE)
    model = DirectionClassifier(ClassifierConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
