"""Counting a pretext step's FLOPs: forward and backward counted, nothing of the run changed, and the
count recorded in every run's metrics; a budget in FLOPs converted into the steps it buys, on the
command line and in the benchmark."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import generate
from airhockey.learn.config import EncoderConfig, PretextConfig
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.flops import (
    budget_steps,
    loader_step_flops,
    synthetic_step_flops,
    training_step_flops,
)
from airhockey.learn.pretext.trainer import train_pretext
from airhockey.learn.protocol.benchmark import QUICK, Sessions
from tests.learn.pretext.test_pretext_cli import DATA, TINY, assert_one_line_error
from tests.learn.synthetic import moving_puck_clips

ENCODER = EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=8)
METHOD = NextFrame(NextFrameConfig(encoder=ENCODER, frames_in=3, frames_predicted=1, mean_frame_clips=8))


class LinearLoss:
    """A stand-in method whose loss is one linear layer's summed output."""

    def loss(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return model(batch).sum()


def test_a_linear_layer_counts_its_forward_and_weight_gradient_products():
    layer = torch.nn.Linear(12, 5, bias=False)
    batch = torch.randn(7, 12)  # no gradient to the input: forward 2BIO, weight gradient 2BIO
    assert training_step_flops(LinearLoss(), layer, batch) == 4 * 7 * 12 * 5  # type: ignore[arg-type]


def test_counting_changes_neither_the_model_nor_the_random_stream():
    torch.manual_seed(0)
    model = METHOD.build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = moving_puck_clips(4, METHOD.config.clip_length, size=16, puck=3, seed=1)
    state = torch.get_rng_state()
    flops = training_step_flops(METHOD, model, batch)
    assert flops > 0
    assert torch.equal(torch.get_rng_state(), state)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    double = moving_puck_clips(8, METHOD.config.clip_length, size=16, puck=3, seed=1)
    assert training_step_flops(METHOD, model, double) == 2 * flops  # per sample: the batch scales it


def test_every_run_records_its_flops_per_step_and_in_all(tmp_path):
    clips = (
        moving_puck_clips(16, METHOD.config.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, METHOD.config.clip_length, size=16, puck=3, seed=2),
    )
    config = PretextConfig(steps=3, epochs=None, batch_size=8)
    train_pretext(clips, tmp_path / "run", METHOD, config, progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    torch.manual_seed(0)
    batch = clips[0][:8]
    assert metrics["flops_per_step"] == training_step_flops(METHOD, METHOD.build_model(), batch)
    assert metrics["pretext_flops"] == pytest.approx(3 * metrics["flops_per_step"])


def clips_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """16 training clips (2 batches of 8: a 3-step run crosses an epoch) and 8 validation clips."""
    return (
        moving_puck_clips(16, METHOD.config.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, METHOD.config.clip_length, size=16, puck=3, seed=2),
    )


def run_weights(out: Path, config: PretextConfig, resume: bool = False) -> tuple[dict, dict]:
    """Trains (from the same global random state) and returns the metrics and ``last.pt``'s model."""
    torch.manual_seed(0)
    metrics = train_pretext(
        clips_pair(), out, None if resume else METHOD, config, resume=resume, progress=False
    )
    return metrics, torch.load(out / "last.pt", weights_only=True)["model"]


def test_a_budget_buys_its_flops_divided_by_a_steps_rounded_up():
    assert budget_steps(9.0, 3, "x") == 3
    assert budget_steps(10.0, 3, "x") == 4
    assert budget_steps(3.0, 3, "x") == 1
    with pytest.raises(UserError, match="less than one training step of x"):
        budget_steps(2.9, 3, "x")
    with pytest.raises(UserError, match="counts no FLOPs"):
        budget_steps(1e12, 0, "x")


def test_counting_a_loaders_first_batch_keeps_the_random_stream():
    loader = DataLoader(clips_pair()[0], batch_size=8, shuffle=True)  # draws a seed as it starts
    model = METHOD.build_model()
    state = torch.get_rng_state()
    assert loader_step_flops(METHOD, model, loader, torch.device("cpu")) > 0
    assert torch.equal(torch.get_rng_state(), state)


def test_a_flops_budget_trains_exactly_as_the_steps_it_buys(tmp_path):
    steps_metrics, steps_model = run_weights(
        tmp_path / "steps", PretextConfig(steps=3, epochs=None, batch_size=8)
    )
    per_step = steps_metrics["flops_per_step"]
    flops = PretextConfig(flops=2.5 * per_step, epochs=None, batch_size=8)  # buys ceil(2.5) = 3 steps
    metrics, model = run_weights(tmp_path / "flops", flops)
    assert metrics["steps"] == metrics["flops_budget_steps"] == 3 and metrics["stopped_by"] == "flops"
    assert all(torch.equal(v, model[k]) for k, v in steps_model.items())
    assert json.loads((tmp_path / "flops" / "config.json").read_text())["training"]["flops"] == 2.5 * per_step

    both = dataclasses.replace(flops, steps=2)  # the smaller budget wins
    assert run_weights(tmp_path / "both", both)[0]["stopped_by"] == "steps"

    # Resumed with a larger budget (flops may change on resume), a run trains on to it.
    more, more_model = run_weights(tmp_path / "flops", dataclasses.replace(flops, flops=4 * per_step), True)
    assert more["steps"] == 4 and more["stopped_by"] == "flops"
    _, four_model = run_weights(tmp_path / "four", PretextConfig(steps=4, epochs=None, batch_size=8))
    assert all(torch.equal(v, more_model[k]) for k, v in four_model.items())


def test_a_flops_budget_below_one_step_is_refused_before_anything_is_written(tmp_path):
    config = PretextConfig(flops=1.0, epochs=None, batch_size=8)
    with pytest.raises(UserError, match="less than one training step of next_frame at batch size 8"):
        train_pretext(clips_pair(), tmp_path / "run", METHOD, config, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flops") / "data"
    generate(DATA, path, workers=1, progress=False)
    return path


def test_the_flops_option_of_learn_pretext(dataset, tmp_path):
    runner = CliRunner()
    args = ["learn", "pretext", str(dataset), "--method", "next_frame", *TINY]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "steps"), "--steps", "2"])
    assert result.exit_code == 0, result.output
    per_step = json.loads((tmp_path / "steps" / "metrics.json").read_text())["flops_per_step"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "flops"), "--flops", f"{2 * per_step:.17g}"])
    assert result.exit_code == 0, result.output
    assert "stopped after 2 steps, the FLOPs budget ran out" in result.output
    steps, flops = (
        torch.load(tmp_path / r / "last.pt", weights_only=True)["model"] for r in ("steps", "flops")
    )
    assert all(torch.equal(v, flops[k]) for k, v in steps.items())

    small = runner.invoke(app, [*args, "--out", str(tmp_path / "small"), "--flops", f"{per_step / 2:g}"])
    assert_one_line_error(small, "less than one training step")
    assert not (tmp_path / "small").exists()
    assert_one_line_error(runner.invoke(app, [*args, "--out", str(tmp_path / "z"), "--flops", "0"]), "flops")


def test_a_benchmark_gives_every_method_a_flops_budget_in_its_own_folder(tmp_path):
    from airhockey.cli.study import benchmark_config

    config = benchmark_config(quick=True, pretext_flops=2e9)
    assert config.pretext.flops == 2e9 and config.pretext.steps is None  # in the place of the steps
    assert config == QUICK.with_overrides(flops=2e9)
    capped = benchmark_config(quick=True, steps=7, pretext_flops=2e9).pretext
    assert (capped.flops, capped.steps) == (2e9, 7)
    with pytest.raises(UserError, match="steps or FLOPs"):
        dataclasses.replace(QUICK, pretext=dataclasses.replace(QUICK.pretext, steps=None))

    # A benchmark folder of equal steps (one written before the FLOPs budget existed included)
    # refuses the equal-FLOPs benchmark: it goes in its own folder.
    record = tmp_path / "benchmark.json"
    old = QUICK.to_dict()
    del old["pretext"]["flops"]
    Sessions(record, old, "old", []).write()
    Sessions.open(record, QUICK.to_dict(), "again")  # the same settings
    with pytest.raises(UserError, match="other settings"):
        Sessions.open(record, config.to_dict(), "flops")
    result = CliRunner().invoke(
        app, ["learn", "benchmark", str(tmp_path / "b"), "--quick", "--pretext-flops", "-1"]
    )
    assert_one_line_error(result, "flops")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("method", ["skip_clip", "videomae"])
def test_a_step_counted_on_synthetic_shapes_counts_what_a_run_on_the_data_counts(dataset, tmp_path, method):
    config = PretextConfig(steps=1, epochs=None, batch_size=4)
    args = ["learn", "pretext", str(dataset), "--method", method, "--steps", "1", "--batch-size", "4"]
    result = CliRunner().invoke(app, [*args, "--threads", "1", "--no-progress", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    per_step = json.loads((tmp_path / "r" / "metrics.json").read_text())["flops_per_step"]
    assert synthetic_step_flops([method], config, (DATA.height, DATA.width)) == {method: per_step}


def test_a_benchmark_refuses_a_flops_budget_below_a_step_before_it_writes(tmp_path):
    result = CliRunner().invoke(
        app, ["learn", "benchmark", str(tmp_path / "b"), "--quick", "--pretext-flops", "1e6"]
    )
    assert_one_line_error(result, "less than one training step of")
    assert not (tmp_path / "b").exists()
