"""The method registry: a method defined here, in the test, runs through every stage without a package change.

``Reconstruct`` (reconstruct the current frame from the shared encoder's features) is the
"Adding a method" example of docs/pretext.md: one class, one ``register`` call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.learn.config import CompareConfig, EncoderConfig, PretextConfig
from airhockey.learn.data import ClipDataset
from airhockey.learn.downstream.classify import classify_on_dataset
from airhockey.learn.methods import get_method, method_names, register, unregister
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.autoencoder import FrameEncoder
from airhockey.learn.nn.encoder import PretextModel
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.pretext.trainer import train_pretext
from airhockey.learn.protocol.compare import compare_on_dataset
from tests.learn.tiny import SCHEDULE, TinyRuns, tiny_runs

runner = CliRunner()


@dataclass(frozen=True)
class ReconstructConfig:
    encoder: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(stem_channels=(8,), hidden_channels=4)
    )
    clip_length: int = 2


class ReconstructModel(PretextModel):
    def __init__(self, config: ReconstructConfig) -> None:
        super().__init__()
        self.encoder = FrameEncoder(config.encoder)
        factor = 2 ** len(config.encoder.stem_channels)
        self.decoder = nn.ConvTranspose2d(config.encoder.hidden_channels, 3, factor, stride=factor)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # (B, T, 3, H, W) -> (B, T, 3, H, W)
        features = self.encoder.encode(clips)  # (B, T, C, h, w)
        return torch.sigmoid(self.decoder(features.flatten(0, 1))).unflatten(0, clips.shape[:2])


class Reconstruct(PretextMethod[ReconstructConfig]):
    name = "test_reconstruct"
    summary = "reconstruct the current frame from the shared encoder (a test method)"
    source = "tests/learn/methods/test_registry.py"
    config_class = ReconstructConfig
    selection_metric = "val_mse"

    def build_model(self) -> ReconstructModel:
        return ReconstructModel(self.config)

    def build_encoder(self) -> FrameEncoder:
        return FrameEncoder(self.config.encoder)

    def samples(self, episodes, ids, seed, training):
        return ClipDataset(episodes, self.config.clip_length, ids, stride=4)

    def loss(self, model, clips):
        return ((model(clips) - clips) ** 2).mean()

    def evaluate(self, model, val_loader, device):
        errors = [((model(c.to(device)) - c.to(device)) ** 2).mean().item() for c in val_loader]
        return {"val_mse": sum(errors) / len(errors)}


@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    register(Reconstruct)
    yield
    unregister(Reconstruct.name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def test_registering_adds_the_method_and_names_stay_unique(registered):
    assert get_method("test_reconstruct") is Reconstruct
    assert method_names()[0] == "next_frame" and "test_reconstruct" in method_names()
    register(Reconstruct)  # the same class again is harmless
    with pytest.raises(ValueError, match="already registered"):
        register(type("Other", (Reconstruct,), {}), name="test_reconstruct")
    with pytest.raises(UserError, match="registered methods: next_frame"):
        get_method("nope")


def test_a_method_defined_in_a_test_runs_pretext_classify_and_compare(registered, runs, tmp_path):
    run = tmp_path / "pretext"
    metrics = train_pretext(
        runs.data, run, Reconstruct(), PretextConfig(steps=3, batch_size=8), progress=False
    )
    assert metrics["method"] == "test_reconstruct" and metrics["steps"] == 3
    opened = PretextRun.open(run)
    assert isinstance(opened.method, Reconstruct) and opened.image_size == (32, 32)
    assert opened.encoder()(torch.rand(2, 3, 32, 32)).shape == (2, 4, 16, 16)

    classified = classify_on_dataset(
        runs.data, tmp_path / "cls", SCHEDULE, pretext=run, labelled_episodes=4, hidden=8, progress=False
    )
    assert 0.0 <= classified["accuracy"] <= 1.0
    config = CompareConfig(
        budgets=(2,), repeats=2, training=SCHEDULE, hidden=8, after_hit_effect=False, practitioner=False
    )
    results = compare_on_dataset(
        runs.data, ["scratch", run, runs.pretext], tmp_path / "report", config, progress=False
    )
    assert results.arms == ("scratch", "pretext", "pretext-2")
    assert results.arm_details["pretext"].method == "test_reconstruct"
    assert results.arm_details["pretext-2"].method == "next_frame"
    assert set(results.budgets[0].paired_difference) == {"pretext", "pretext-2"}
    report = (tmp_path / "report" / "report.md").read_text()
    assert "pretext-2 minus scratch" in report and "test_reconstruct" in report


def test_the_same_method_through_the_cli(registered, runs, tmp_path):
    run = tmp_path / "pretext"
    common = ["--threads", "1", "--no-progress"]
    pretext = ["learn", "pretext", str(runs.data), "--method", "test_reconstruct", "--out", str(run)]
    result = runner.invoke(app, [*pretext, "--steps", "2", "--set", "clip_length=3", *common])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["method_config"]["clip_length"] == 3
    schedule = ["--epochs", "2", "--freeze-epochs", "1", "--frame-stride", "4", "--min-epoch-frames", "32"]
    classify = ["learn", "classify", str(runs.data), "--pretext", str(run), "--out", str(tmp_path / "cls")]
    result = runner.invoke(app, [*classify, "--labelled-episodes", "4", "--hidden", "8", *schedule, *common])
    assert result.exit_code == 0, result.output
    compare = ["learn", "compare", str(runs.data), "--arm", str(run), "--out", str(tmp_path / "report")]
    options = ["--budgets", "2", "--repeats", "2", "--set", "hidden=8", "--set", "after_hit_effect=false"]
    settings = ["training.epochs=2", "training.freeze_epochs=1", "training.frame_stride=4"]
    settings += ["training.min_epoch_frames=32"]
    options += [arg for setting in settings for arg in ("--set", setting)]
    result = runner.invoke(app, [*compare, *options, *common])
    assert result.exit_code == 0, result.output
    assert "2 labelled episodes: pretext" in result.output
    assert (Path(tmp_path / "report") / "report.md").is_file()
    result = runner.invoke(app, ["learn", "methods"])
    assert "test_reconstruct" in result.output
