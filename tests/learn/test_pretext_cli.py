"""The learn pretext and learn predict commands on a small generated dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.generate import GenerateConfig, generate
from airhockey.learn.autoencoder import load_encoder

runner = CliRunner()
# 20 episodes, so that the 80/10/10 split by class leaves a validation episode of each class.
DATA = GenerateConfig(episodes=20, width=32, height=32, policy="scripted", shard_size=10, lockstep_envs=4)
TINY = ["--hidden-channels", "4", "--frames-in", "3", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pretext") / "data"
    generate(DATA, path, workers=1, progress=False)
    return path


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


def test_pretext_then_predict_through_the_cli(dataset, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["learn", "pretext", str(dataset), "--out", str(run), "--epochs", "1", *TINY])
    assert result.exit_code == 0, result.output
    assert "copy-last" in result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_done"] == 1 and metrics["threads"] == 1
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["image_size"] == [32, 32] and config["model"]["hidden_channels"] == 4
    assert config["command"].startswith("airhockey")
    test_episodes = set(config["data"]["test_episodes"])
    assert test_episodes and not test_episodes & set(
        config["data"]["train_episodes"] + config["data"]["val_episodes"]
    )
    assert load_encoder(run)(torch.rand(1, 3, 32, 32)).shape == (1, 4, 8, 8)

    result = runner.invoke(
        app, ["learn", "pretext", str(dataset), "--out", str(run), "--epochs", "2", "--resume", *TINY]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((run / "metrics.json").read_text())["epochs_done"] == 2

    video = tmp_path / "pred.gif"
    result = runner.invoke(
        app,
        [
            "learn",
            "predict",
            str(run),
            "--data",
            str(dataset),
            "--episode",
            "1",
            "--out",
            str(video),
            "--steps",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert video.stat().st_size > 0

    assert_one_line_error(
        runner.invoke(app, ["learn", "pretext", str(dataset), "--out", str(run), *TINY]),
        "already holds a run",
    )
    assert_one_line_error(
        runner.invoke(app, ["learn", "predict", str(run), "--data", str(dataset), "--episode", "99"]),
        "episode",
    )


def test_pretext_errors_are_one_line(dataset, tmp_path):
    assert_one_line_error(
        runner.invoke(app, ["learn", "pretext", str(tmp_path / "none"), "--out", str(tmp_path / "r"), *TINY]),
        "",
    )
    if not torch.cuda.is_available():
        assert_one_line_error(
            runner.invoke(
                app,
                ["learn", "pretext", str(dataset), "--out", str(tmp_path / "r"), "--device", "cuda", *TINY],
            ),
            "CUDA",
        )
    assert_one_line_error(
        runner.invoke(app, ["learn", "predict", str(tmp_path / "none"), "--data", str(dataset)]),
        "no checkpoint",
    )


def test_the_command_defaults_are_the_configs_defaults():
    import inspect

    from airhockey.cli import learn_pretext
    from airhockey.learn.autoencoder import AutoencoderConfig
    from airhockey.learn.pretext import PretextConfig

    params = inspect.signature(learn_pretext).parameters
    for name in ("frames_in", "frames_predicted", "hidden_channels"):
        assert params[name].default == getattr(AutoencoderConfig(), name), name
    for name in ("seed", "device", "workers", "batch_size", "lr", "clip_stride", "split_seed"):
        assert params[name].default == getattr(PretextConfig(), name), name
