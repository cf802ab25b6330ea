"""The learn methods, pretext and predict commands on a small generated dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.generate import GenerateConfig, generate
from airhockey.learn.methods import get_method
from airhockey.learn.pretext.run import PretextRun

runner = CliRunner()
# 20 episodes, so that the 80/10/10 split by class leaves a validation episode of each class.
DATA = GenerateConfig(episodes=20, width=32, height=32, policy="scripted", shard_size=10, lockstep_envs=4)
TINY = ["--set", "encoder.hidden_channels=4", "--set", "frames_in=3", "--threads", "1", "--no-progress"]


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
    args = ["learn", "pretext", str(dataset), "--method", "next_frame", "--out", str(run)]
    result = runner.invoke(app, [*args, "--epochs", "1", *TINY])
    assert result.exit_code == 0, result.output
    assert "copy-last" in result.output and "the epoch budget ran out" in result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_done"] == 1 and metrics["threads"] == 1
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "next_frame" and config["method_config"]["frames_in"] == 3
    assert config["encoder"]["image_size"] == [32, 32] and config["encoder"]["hidden_channels"] == 4
    assert config["command"].startswith("airhockey")
    test_episodes = set(config["data"]["test_episodes"])
    assert test_episodes and not test_episodes & set(
        config["data"]["train_episodes"] + config["data"]["val_episodes"]
    )
    assert PretextRun.open(run).encoder()(torch.rand(1, 3, 32, 32)).shape == (1, 4, 8, 8)

    resume = [
        "learn",
        "pretext",
        str(dataset),
        "--out",
        str(run),
        "--resume",
        "--threads",
        "1",
        "--no-progress",
    ]
    result = runner.invoke(app, [*resume, "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "metrics.json").read_text())["epochs_done"] == 2
    assert_one_line_error(
        runner.invoke(app, [*resume, "--epochs", "3", "--set", "frames_in=2"]), "own method"
    )

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


def test_a_step_budget_and_a_time_budget(dataset, tmp_path):
    args = ["learn", "pretext", str(dataset), *TINY]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "steps"), "--steps", "3"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "steps" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["stopped_by"] == "steps"
    assert "the step budget ran out" in result.output
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "time"), "--minutes", "0.000001"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "time" / "metrics.json").read_text())["stopped_by"] == "time"


def test_a_frozen_encoder_run_keeps_its_initial_encoder(dataset, tmp_path):
    run = tmp_path / "frozen"
    args = ["learn", "pretext", str(dataset), "--out", str(run), "--steps", "2", "--frozen-encoder", *TINY]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["frozen_encoder"] is True
    torch.manual_seed(config["training"]["seed"])
    initial = get_method("next_frame").from_dict(config["method_config"]).build_model()
    stored = torch.load(run / "last.pt", weights_only=True)
    assert all(torch.equal(v, stored["encoder"][k]) for k, v in initial.encoder.state_dict().items())
    decoder = {k: v for k, v in initial.state_dict().items() if not k.startswith("encoder.")}
    assert not all(torch.equal(v, stored["model"][k]) for k, v in decoder.items())


def test_an_unknown_method_or_setting_is_one_line_naming_the_valid_ones(dataset, tmp_path):
    args = ["learn", "pretext", str(dataset), "--out", str(tmp_path / "r"), "--no-progress"]
    assert_one_line_error(runner.invoke(app, [*args, "--method", "nope"]), "registered methods: next_frame")
    result = runner.invoke(app, [*args, "--set", "hidden=4"])
    assert_one_line_error(result, "unknown setting 'hidden'")
    assert "encoder.hidden_channels" in result.stderr and "frames_in" in result.stderr
    assert_one_line_error(
        runner.invoke(app, [*args, "--set", "frames_in=two"]), "frames_in must be an integer"
    )
    assert_one_line_error(runner.invoke(app, [*args, "--set", "frames_in"]), "key=value")
    assert_one_line_error(
        runner.invoke(app, [*args, "--set", "frames_in=0"]),
        "frames_in must be an integer in [1, 1024], got 0",
    )
    assert not (tmp_path / "r").exists()  # nothing written before the settings were checked


def test_learn_methods_lists_the_registry_and_a_methods_settings():
    result = runner.invoke(app, ["learn", "methods"])
    assert result.exit_code == 0 and "next_frame" in result.output
    assert get_method("next_frame").source in result.output
    result = runner.invoke(app, ["learn", "methods", "next_frame"])
    assert result.exit_code == 0 and "--set encoder.hidden_channels=16" in result.output
    assert "lowest val_mse" in result.output


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
    import dataclasses
    import inspect

    from airhockey.cli.learn import learn_classify, learn_pretext
    from airhockey.cli.study import compare_config, learn_compare
    from airhockey.learn.config import ClassifyConfig, CompareConfig, PretextConfig

    checked = 0
    # The pretext command's --epochs defaults to None: 30 unless --steps or --minutes is given.
    for command, config, skip in (
        (learn_pretext, PretextConfig(), {"epochs"}),
        (learn_classify, ClassifyConfig(), set()),
    ):
        params = inspect.signature(command).parameters
        for field in dataclasses.fields(config):
            if field.name in params and field.name not in skip:
                # A field whose default is derived from others (None: ``freeze_epochs``) keeps None.
                declared = field.default if field.default is not dataclasses.MISSING else None
                expected = None if declared is None else getattr(config, field.name)
                assert params[field.name].default == expected, (command, field.name)
                checked += 1
    assert checked >= 15
    assert inspect.signature(learn_classify).parameters["hidden"].default == CompareConfig().hidden
    # learn compare: every option left out (None) keeps CompareConfig's default.
    params = inspect.signature(learn_compare).parameters
    for name in ("budgets", "repeats", "seed", "device", "frames_k"):
        assert params[name].default is None, name
    assert compare_config() == CompareConfig()
    assert inspect.signature(learn_pretext).parameters["method"].default is None


def test_compare_takes_the_rest_of_its_settings_through_set():
    from airhockey.cli.study import compare_config
    from airhockey.errors import UserError

    config = compare_config(
        budgets="4,16,all",
        repeats=5,
        device="cuda",
        frames_k="2,4",
        settings=["training.epochs=7", "scratch_schedule=unfrozen", "search_lrs=3e-4,1e-3", "oracle=false"],
    )
    assert config.budgets == (4, 16, None) and config.repeats == 5 and config.frames_k == (2, 4)
    assert config.training.epochs == 7 and config.training.device == "cuda"
    assert config.scratch_schedule == "unfrozen" and config.search_lrs == (3e-4, 1e-3) and not config.oracle
    # --set applies after the options: a setting may refer to the budgets given.
    assert compare_config(budgets="8,32", settings=["frames_k_budget=32"]).frames_k_budget == 32
    with pytest.raises(UserError, match="unknown setting 'epochs' of CompareConfig"):
        compare_config(settings=["epochs=3"])


def test_settings_are_judged_at_the_data_frame_size(tmp_path):
    """A stem of stride 128 fits 128 x 128 frames though not the config's default 64 x 64."""
    data = tmp_path / "shapes128"
    made = runner.invoke(
        app, ["data", "shapes", str(data), "--episodes", "40", "--width", "128", "--height", "128"]
    )
    assert made.exit_code == 0, made.output
    deep = ["--set", "encoder.stem_channels=4,4,4,4,4,4,4"]
    args = ["learn", "pretext", str(data), "--steps", "1", "--no-progress", *deep]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "deep")])
    assert result.exit_code == 0, result.output
    assert PretextRun.open(tmp_path / "deep").image_size == (128, 128)
    deeper = ["--set", "encoder.stem_channels=4,4,4,4,4,4,4,4"]  # stride 256: too deep for the frames
    refused = runner.invoke(app, [*args, *deeper, "--out", str(tmp_path / "deeper")])
    assert_one_line_error(refused, "must be divisible by 256")
    assert not (tmp_path / "deeper").exists()
