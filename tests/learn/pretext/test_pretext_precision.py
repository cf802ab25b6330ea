"""Pretext training in each precision: the same seed gives the same run, and the run folder says
which precision it ran in."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import torch

from airhockey.errors import UserError
from airhockey.learn.config import EncoderConfig, PretextConfig
from airhockey.learn.device import cpu_has_bf16
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.synthetic import moving_puck_clips

MODEL = NextFrameConfig(
    encoder=EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=8), frames_in=3
)
TRAIN = PretextConfig(epochs=2, batch_size=8, lr=5e-3)


@pytest.fixture(scope="module")
def clips() -> tuple[torch.Tensor, torch.Tensor]:
    return (
        moving_puck_clips(16, MODEL.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, MODEL.clip_length, size=16, puck=3, seed=2),
    )


def run(clips, out, precision: str) -> tuple[list[dict[str, str]], dict[str, torch.Tensor]]:
    """Trains in ``precision``; the log rows (seconds left out) and the last weights."""
    train_pretext(
        clips, out, NextFrame(MODEL), dataclasses.replace(TRAIN, precision=precision), progress=False
    )
    with open(out / "log.csv") as f:
        rows = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in csv.DictReader(f)]
    return rows, torch.load(out / "last.pt", weights_only=True)["model"]


@pytest.mark.parametrize(
    "precision",
    ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(not cpu_has_bf16(), reason="no bfloat16"))],
)
def test_the_same_seed_gives_the_same_run_in_each_precision(clips, tmp_path, precision):
    rows_a, weights_a = run(clips, tmp_path / "a", precision)
    rows_b, weights_b = run(clips, tmp_path / "b", precision)
    assert rows_a == rows_b
    for k in weights_a:
        assert torch.equal(weights_a[k], weights_b[k]), k
        assert weights_a[k].dtype == torch.float32 or not weights_a[k].is_floating_point()
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["training"]["precision"] == precision
    assert torch.load(tmp_path / "a" / "best.pt", weights_only=True)["train_config"]["precision"] == precision


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bfloat16 instructions")
def test_bf16_trains_otherwise_than_fp32_with_float32_losses(clips, tmp_path):
    rows_32, _ = run(clips, tmp_path / "fp32", "fp32")
    rows_16, _ = run(clips, tmp_path / "bf16", "bf16")
    assert rows_32 != rows_16
    losses = [float(r["train_loss"]) for r in rows_16]
    assert all(0.0 < x < 1.0 for x in losses)


def test_a_precision_the_cpu_cannot_run_is_refused_before_anything_is_written(clips, tmp_path):
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        train_pretext(
            clips,
            tmp_path / "run",
            NextFrame(MODEL),
            dataclasses.replace(TRAIN, precision="fp16"),
            progress=False,
        )
    assert not (tmp_path / "run").exists()
