"""A tiny generated dataset and a tiny pretext run on it, for the classifier and comparison tests."""

from __future__ import annotations

from pathlib import Path

from airhockey.generate import GenerateConfig, generate
from airhockey.learn.autoencoder import AutoencoderConfig
from airhockey.learn.classify import ClassifyConfig
from airhockey.learn.pretext import PretextConfig, train_pretext

DATA = GenerateConfig(episodes=20, width=32, height=32, policy="scripted", shard_size=10, lockstep_envs=4)
"""20 episodes: the 80/10/10 split by class gives 16 training, 2 validation and 2 test episodes."""
MODEL = AutoencoderConfig(stem_channels=(8,), hidden_channels=4, frames_in=3)
PRETEXT = PretextConfig(epochs=1, batch_size=8, clip_stride=8)
SCHEDULE = ClassifyConfig(epochs=2, freeze_epochs=1, batch_size=16, min_epoch_frames=32, frame_stride=4)
"""One frozen epoch, one fine-tuning epoch, a few steps each."""


def make_dataset(path: Path) -> Path:
    generate(DATA, path, workers=1, progress=False)
    return path


def make_pretext_run(data: Path, path: Path) -> Path:
    train_pretext(data, path, PRETEXT, MODEL, progress=False)
    return path
