"""The direction classifier of Han et al. 2021 (sections 4.2-4.4): video encoder -> hidden layer -> softmax.

The encoder is any pretext method's ``VideoEncoder`` (``learn.methods.base``), rebuilt through
the method registry from an ``EncoderSpec``; for k = 1 it reads a single frame from a zero state,
for k > 1 the k frames ending at the classified one. The head flattens the encoder's feature map
(B, C, h, w), so that where the puck and bar are stays readable, normalises each feature (the one
addition to Han et al.'s head: by default with fixed statistics of the training frames,
``FeatureScaler``; or by batch normalisation, ``HeadBatchNorm``), and maps it through one hidden
layer to one logit per class. Every arm of a comparison builds this
same model: ``build_classifier(config, seed, encoder_state)`` loads a pretext run's encoder
weights, ``build_classifier(config, seed)`` leaves them random (the scratch arm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from airhockey.learn.config import HEAD_NORMS, EncoderConfig, from_dict, to_dict
from airhockey.learn.methods import get_method
from airhockey.learn.nn.encoder import VideoEncoder
from airhockey.learn.nn.stack_cnn import FrameStackCNN, StackCNNConfig
from airhockey.learn.pretext.checkpoint import KIND_CLASSIFIER, load_checkpoint

MODEL_FILE = "model.pt"
"""The trained classifier in a classify run folder (the weights of its best validation epoch)."""
STACK_CNN = "stack_cnn"
"""``EncoderSpec.method`` of the practitioner's frame-stack CNN (``learn.nn.stack_cnn``), an encoder
no pretext method trains."""


@dataclass(frozen=True)
class EncoderSpec:
    """Which encoder a classifier has: a registered method and its config, from which the method
    builds its encoder (``PretextMethod.build_encoder``), or ``STACK_CNN`` and a ``StackCNNConfig``.
    Plain data: a spec travels to worker processes and into checkpoints."""

    method: str = "next_frame"
    """The registry name of the method whose encoder this is, or ``STACK_CNN``."""
    config: dict[str, Any] = field(default_factory=dict)
    """The method's config as plain data (``PretextMethod.config_dict()``); {} for its defaults."""

    def __post_init__(self) -> None:
        # As JSON gives it back (tuples as lists), so that a spec equals its stored copy.
        object.__setattr__(self, "config", json.loads(json.dumps(self.config)))

    def build(self) -> VideoEncoder:
        """The encoder, with fresh weights from torch's global generator."""
        if self.method == STACK_CNN:
            return FrameStackCNN(from_dict(StackCNNConfig, self.config))
        return get_method(self.method).from_dict(self.config).build_encoder()

    def for_frames(self, k: int) -> EncoderSpec:
        """The spec of this encoder reading k frames: the frame-stack CNN's input is sized for its k,
        a recurrent encoder reads any number as it is."""
        if self.method != STACK_CNN:
            return self
        return EncoderSpec(self.method, {**self.config, "frames": k})

    @classmethod
    def stack_cnn(cls, config: StackCNNConfig) -> EncoderSpec:
        """The practitioner's frame-stack CNN (``FrameStackCNN``) with these sizes."""
        return cls(STACK_CNN, to_dict(config))

    @classmethod
    def shared(cls, encoder: EncoderConfig) -> EncoderSpec:
        """The shared frame encoder (``FrameEncoder``, as ``next_frame`` builds it) with these sizes:
        the scratch arm's encoder."""
        return cls("next_frame", {"encoder": to_dict(encoder)})


@dataclass(frozen=True)
class ClassifierConfig:
    """Sizes of the classifier; stored in every checkpoint to rebuild the model."""

    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    """The encoder: a pretext run's method and config, or the shared encoder for the scratch arm."""
    num_classes: int = 2
    """Classes of the softmax: 2 for left/right, 5 for data generated with ``--labels all``."""
    hidden: int = 64
    """Units of the hidden layer."""
    dropout: float = 0.5
    """Dropout on the encoder's features and on the hidden layer while training."""
    head_norm: str = "scaler"
    """The head's normalisation of the features, one of ``HEAD_NORMS`` (``ClassifyConfig.head_norm``);
    checkpoints written before it was recorded read as 'scaler'."""

    def __post_init__(self) -> None:
        if self.num_classes < 2 or self.hidden < 1:
            raise ValueError(f"need num_classes >= 2 and hidden >= 1, got {self.num_classes}, {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.head_norm not in HEAD_NORMS:
            raise ValueError(f"head_norm must be one of {HEAD_NORMS}, got {self.head_norm!r}")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (what checkpoints store)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> ClassifierConfig:
        """The inverse of ``to_dict``."""
        return cls(**{**fields, "encoder": EncoderSpec(**fields["encoder"])})


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


class HeadBatchNorm(nn.BatchNorm1d):
    """Batch normalisation of the features, (B, F) -> (B, F): each feature standardised by the
    batch's statistics while training (by their running averages in eval mode), then scaled and
    shifted by learnt weights. Unlike ``FeatureScaler`` it needs no fitting and follows the
    features as the encoder trains, which a model trained from scratch may need. A training batch
    of one frame (an epoch's last, at some sizes) has no spread to normalise by: it is normalised
    by the running averages instead, and leaves them as they are.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and len(x) == 1:
            return nn.functional.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def head_norm(name: str, features: int) -> nn.Module:
    """The head's normalisation of ``features`` features named ``name`` (one of ``HEAD_NORMS``)."""
    return FeatureScaler(features) if name == "scaler" else HeadBatchNorm(features)


class DirectionClassifier(nn.Module):
    """Video encoder, then one hidden layer, then a softmax over the classes.

    ``forward`` returns logits (the softmax is folded into the cross-entropy loss).
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = config.encoder.build()
        features = self.encoder.feature_count
        self.head = nn.Sequential(
            nn.Flatten(),
            head_norm(config.head_norm, features),
            nn.Dropout(config.dropout),
            nn.Linear(features, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_classes),
        )

    def forward(self, frames: Tensor) -> Tensor:
        """(B, 3, H, W) frames, or (B, k, 3, H, W) the k frames ending at the classified one, in [0, 1]
        -> (B, num_classes) logits."""
        return self.head(self.encoder(frames))  # encoder: (B, C, h, w)

    @property
    def scaler(self) -> FeatureScaler | None:
        """The head's fixed feature standardisation, to ``fit`` before training; None for a head
        with batch normalisation, which needs no fitting."""
        norm = self.head[1]
        return norm if isinstance(norm, FeatureScaler) else None

    def set_encoder_trainable(self, trainable: bool) -> None:
        """Freezes (False) or unfreezes (True) the encoder's weights; the head always trains."""
        self.encoder.requires_grad_(trainable)


def build_classifier(
    config: ClassifierConfig, seed: int, encoder_state: dict[str, Tensor] | None = None
) -> DirectionClassifier:
    """A classifier with weights drawn from ``seed``, and the encoder's from ``encoder_state`` if given.

    The random draws do not depend on ``encoder_state``: arms built with the same seed start from
    the same head.

    Args:
        config: the model's sizes; with ``encoder_state``, ``config.encoder`` must describe the
            encoder those weights belong to (``EncoderSpec(run.method.name, run.method.config_dict())``).
        seed: seed of the initial weights.
        encoder_state: a trained encoder's state dict (``PretextRun.encoder_state()``), or None
            for a random encoder.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DirectionClassifier(config)
    if encoder_state is not None:
        model.encoder.load_state_dict(encoder_state)
    return model


def load_classifier(run_or_checkpoint: str | Path, device: str | torch.device = "cpu") -> DirectionClassifier:
    """The classifier of a ``learn classify`` run (its ``model.pt``) or checkpoint file, in eval mode."""
    ckpt = load_checkpoint(run_or_checkpoint, KIND_CLASSIFIER, name=MODEL_FILE)
    model = DirectionClassifier(ClassifierConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
