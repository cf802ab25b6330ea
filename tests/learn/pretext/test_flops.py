"""Counting a pretext step's FLOPs: forward and backward counted, nothing of the run changed, and the
count recorded in every run's metrics."""

from __future__ import annotations

import json

import pytest
import torch

from airhockey.learn.config import EncoderConfig, PretextConfig
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.flops import training_step_flops
from airhockey.learn.pretext.trainer import train_pretext
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
