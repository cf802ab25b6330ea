"""A tiny generated dataset and a tiny pretext run on it, for the classifier and comparison tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from airhockey.generate import GenerateConfig, generate
from airhockey.learn.config import ClassifyConfig, EncoderConfig, PretextConfig
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.trainer import train_pretext

DATA = GenerateConfig(episodes=20, width=32, height=32, policy="scripted", shard_size=10, lockstep_envs=4)
"""20 episodes: the 80/10/10 split by class gives 16 training, 2 validation and 2 test episodes."""
MODEL = NextFrameConfig(
    encoder=EncoderConfig(stem_channels=(8,), hidden_channels=4), frames_in=3, clip_stride=8
)
PRETEXT = PretextConfig(epochs=1, batch_size=8)
SCHEDULE = ClassifyConfig(epochs=2, freeze_epochs=1, batch_size=16, min_epoch_frames=32, frame_stride=4)
"""One frozen epoch, one fine-tuning epoch, a few steps each."""


@dataclass(frozen=True)
class TinyRuns:
    """Where the tiny dataset and the pretext run trained on it lie."""

    data: Path
    pretext: Path


def tiny_runs(factory: pytest.TempPathFactory) -> TinyRuns:
    """The tiny dataset and its pretext run, made on the first call of a test session."""
    root = factory.getbasetemp() / "tiny-runs"
    runs = TinyRuns(root / "data", root / "pretext")
    if not (runs.pretext / "metrics.json").is_file():
        # One torch thread, as every learning test runs (tests/learn/conftest.py): a session-wide
        # fixture is made before that per-test setting applies, and another thread count sums
        # in another order, so a test rerunning this training would differ in the last bits.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            generate(DATA, runs.data, workers=1, progress=False)
            train_pretext(runs.data, runs.pretext, NextFrame(MODEL), PRETEXT, progress=False)
        finally:
            torch.set_num_threads(threads)
    return runs
