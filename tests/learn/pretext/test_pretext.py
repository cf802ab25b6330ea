"""The generic pretext trainer with ``next_frame`` on tiny synthetic clips: learning, determinism,
budgets, resume, the run folder, the opened run, predictions."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from airhockey.errors import UserError
from airhockey.learn.config import EncoderConfig, PretextConfig
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.prediction import prediction_video
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.synthetic import moving_puck_clips

ENCODER = EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=8)
MODEL = NextFrameConfig(encoder=ENCODER, frames_in=3, frames_predicted=1, mean_frame_clips=8)
TRAIN = PretextConfig(epochs=2, batch_size=8, lr=5e-3, patience=10)


@pytest.fixture(scope="module")
def clips() -> tuple[torch.Tensor, torch.Tensor]:
    """24 training and 8 validation clips of 4 frames, 16x16, a 3-px puck."""
    return (
        moving_puck_clips(24, MODEL.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, MODEL.clip_length, size=16, puck=3, seed=2),
    )


def train(clips, out, config=TRAIN, model=MODEL, **kwargs):
    return train_pretext(
        clips, out, None if model is None else NextFrame(model), config, progress=False, **kwargs
    )


def log_rows(run) -> list[dict[str, str]]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def weights(run, name="last.pt") -> dict[str, torch.Tensor]:
    return torch.load(run / name, weights_only=True)["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_training_loss_goes_down(clips, tmp_path):
    train(clips, tmp_path / "run", dataclasses.replace(TRAIN, epochs=6))
    losses = [float(r["train_loss"]) for r in log_rows(tmp_path / "run")]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0]


def test_the_run_folder_holds_config_log_checkpoints_and_metrics(clips, tmp_path):
    run = tmp_path / "run"
    returned = train(clips, run, command="airhockey learn pretext x")
    metrics = json.loads((run / "metrics.json").read_text())
    for name in ("val", "baseline_copy_last", "baseline_mean_frame"):
        for metric in ("mse", "psnr", "ssim", "moving_mse"):
            assert isinstance(metrics[f"{name}_{metric}"], float)
    assert metrics["val_mse_vs_copy_last"] == pytest.approx(
        1 - metrics["val_mse"] / metrics["baseline_copy_last_mse"]
    )
    assert metrics["stopped_by"] == "epochs" and metrics["epochs_done"] == 2
    assert metrics["method"] == "next_frame" and metrics["steps"] == 6
    assert metrics == pytest.approx(returned)
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "next_frame"
    assert NextFrame.from_dict(config["method_config"]).config == MODEL
    assert config["encoder"]["hidden_channels"] == ENCODER.hidden_channels
    assert config["training"] == dataclasses.asdict(TRAIN)
    assert config["command"] == "airhockey learn pretext x"
    assert [r["epoch"] for r in log_rows(run)] == ["1", "2"]
    assert {"best.pt", "last.pt"} <= {p.name for p in run.iterdir()}


def test_the_same_seed_gives_the_same_run_and_another_seed_another(clips, tmp_path):
    train(clips, tmp_path / "a")
    train(clips, tmp_path / "b")
    train(clips, tmp_path / "c", dataclasses.replace(TRAIN, seed=1))
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert not torch.equal(
        weights(tmp_path / "a")["output.conv.weight"], weights(tmp_path / "c")["output.conv.weight"]
    )


def test_a_resumed_run_continues_exactly_as_an_uninterrupted_one(clips, tmp_path):
    train(clips, tmp_path / "whole", dataclasses.replace(TRAIN, epochs=3))
    train(clips, tmp_path / "split", dataclasses.replace(TRAIN, epochs=1))
    train(clips, tmp_path / "split", dataclasses.replace(TRAIN, epochs=3), model=None, resume=True)
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "split"))
    whole, split = log_rows(tmp_path / "whole"), log_rows(tmp_path / "split")
    assert [r["val_mse"] for r in whole] == [r["val_mse"] for r in split]


def test_a_run_from_before_a_trainer_setting_existed_resumes_with_its_default(clips, tmp_path):
    """Runs written before ``frozen_encoder`` existed store no value for it: they resume as runs
    with the default, and exactly; a run cannot be resumed with the setting changed."""
    train(clips, tmp_path / "whole", dataclasses.replace(TRAIN, epochs=2))
    train(clips, tmp_path / "old", dataclasses.replace(TRAIN, epochs=1))
    ckpt = torch.load(tmp_path / "old" / "last.pt", weights_only=True)
    del ckpt["train_config"]["frozen_encoder"]
    torch.save(ckpt, tmp_path / "old" / "last.pt")
    with pytest.raises(UserError, match="frozen_encoder"):
        train(
            clips, tmp_path / "old", dataclasses.replace(TRAIN, frozen_encoder=True), model=None, resume=True
        )
    train(clips, tmp_path / "old", dataclasses.replace(TRAIN, epochs=2), model=None, resume=True)
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "old"))


def test_a_step_budget_stops_mid_epoch_and_a_larger_one_continues_it_exactly(clips, tmp_path):
    # 24 clips in batches of 8: 3 steps an epoch; 4 steps end one step into the second epoch.
    train(clips, tmp_path / "whole", dataclasses.replace(TRAIN, epochs=None, steps=5))
    stopped = train(clips, tmp_path / "split", dataclasses.replace(TRAIN, epochs=None, steps=4))
    assert stopped["stopped_by"] == "steps" and stopped["steps"] == 4 and stopped["epochs_done"] == 2
    resumed = train(clips, tmp_path / "split", dataclasses.replace(TRAIN, epochs=None, steps=5), resume=True)
    assert resumed["steps"] == 5 and resumed["stopped_by"] == "steps"
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "split"))
    assert [r["step"] for r in log_rows(tmp_path / "split")] == ["3", "4", "5"]


def test_a_run_stopped_by_its_time_budget_mid_epoch_resumes_where_it_stopped(clips, tmp_path):
    train(clips, tmp_path / "whole")
    stopped = train(clips, tmp_path / "split", dataclasses.replace(TRAIN, minutes=1e-6))
    assert stopped["stopped_by"] == "time" and stopped["steps"] == 1
    assert log_rows(tmp_path / "split")[0]["batches"] == "1"
    train(clips, tmp_path / "split", resume=True)
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "split"))


def test_early_stopping_ends_a_run_that_stops_improving(clips, tmp_path):
    metrics = train(clips, tmp_path / "run", dataclasses.replace(TRAIN, epochs=50, lr=0.0, patience=2))
    assert metrics["stopped_by"] == "early_stopping"
    assert metrics["epochs_done"] == 3 and metrics["best_epoch"] == 1


def test_user_mistakes_end_in_a_user_error(clips, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(UserError, match="--resume"):
        train(clips, run, resume=True)
    train(clips, run, dataclasses.replace(TRAIN, epochs=1))
    with pytest.raises(UserError, match="already holds a run"):
        train(clips, run)
    with pytest.raises(UserError, match="lr"):
        train(clips, run, dataclasses.replace(TRAIN, lr=1e-2), model=None, resume=True)
    with pytest.raises(UserError, match="own method"):
        train(
            clips,
            run,
            dataclasses.replace(TRAIN, epochs=2),
            model=dataclasses.replace(MODEL, frames_in=2),
            resume=True,
        )
    with pytest.raises(UserError, match="image_size"):
        train(
            clips,
            tmp_path / "other",
            model=dataclasses.replace(MODEL, encoder=EncoderConfig(image_size=(32, 32))),
        )
    with pytest.raises(UserError, match=r"CUDA|unknown device"):
        train(
            clips,
            tmp_path / "other",
            dataclasses.replace(TRAIN, device="cuda" if not torch.cuda.is_available() else "tpu"),
        )


def test_an_opened_run_rebuilds_its_encoder_through_the_registry(clips, tmp_path):
    run = tmp_path / "run"
    train(clips, run)
    opened = PretextRun.open(run)
    assert opened.method.name == "next_frame" and opened.method.config == MODEL
    assert opened.training == TRAIN and opened.metrics is not None and opened.name == "run"
    encoder = opened.encoder()
    model = PretextRun.open(run / "best.pt").model()
    frame = clips[1][:2, 0]  # (B, 3, H, W): single frames, as the classifier reads them
    torch.testing.assert_close(encoder(frame), model.encoder(frame))
    assert encoder(frame).shape == (2, ENCODER.hidden_channels, *ENCODER.feature_size)
    # The encoder interface: features after the first k frames are the sequence's at step k - 1.
    sequence = clips[1][:2]  # (B, T, 3, H, W)
    features = encoder.encode(sequence)  # (B, T, C, h, w)
    for k in (1, 2, sequence.shape[1]):
        torch.testing.assert_close(encoder(sequence[:, :k]), features[:, k - 1])
    assert_same_weights(
        encoder.state_dict(),
        {k[8:]: v for k, v in weights(run, "best.pt").items() if k.startswith("encoder.")},
    )
    assert all(p.requires_grad for p in encoder.parameters())
    with pytest.raises(UserError, match="no checkpoint"):
        PretextRun.open(tmp_path / "nowhere")


def test_a_rollout_feeds_predictions_back_and_is_scored(clips, tmp_path):
    model = dataclasses.replace(MODEL, frames_in=2, frames_predicted=2)
    metrics = train(clips, tmp_path / "run", dataclasses.replace(TRAIN, epochs=1), model=model)
    assert metrics["val_rollout_mse"] > 0 and metrics["baseline_copy_last_rollout_mse"] > 0


def test_predictions_of_an_episode_and_its_video(clips, tmp_path):
    run = tmp_path / "run"
    train(clips, run, dataclasses.replace(TRAIN, epochs=1))
    opened = PretextRun.open(run)
    model, predict_episode = opened.model(), opened.method.predict_episode
    episode = moving_puck_clips(1, 7, size=16, puck=3, seed=3)[0]  # (T, 3, H, W)
    one, three = predict_episode(model, episode, steps=3)
    assert one.shape == three.shape == episode.shape
    assert torch.isnan(one[0]).all() and not torch.isnan(one[1:]).any()
    assert torch.isnan(three[:3]).all() and not torch.isnan(three[3:]).any()
    with torch.no_grad():
        torch.testing.assert_close(one[1:], model(episode[None, :-1])[0].clamp(0, 1))
        torch.testing.assert_close(three[3], model(episode[None, :1], future=2)[0, -1].clamp(0, 1))
    same, one_again = predict_episode(model, episode, steps=1)
    torch.testing.assert_close(same, one_again, equal_nan=True)
    frames = (episode.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    path = prediction_video(opened, frames, 2, tmp_path / "pred.gif", fps=10)
    assert path.stat().st_size > 0
    assert math.isfinite(json.loads((run / "metrics.json").read_text())["val_mse"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_runs_unchanged_on_cuda(clips, tmp_path):
    metrics = train(clips, tmp_path / "run", dataclasses.replace(TRAIN, epochs=1, device="cuda"))
    assert metrics["device"] == "cuda" and math.isfinite(metrics["val_mse"])
    assert PretextRun.open(tmp_path / "run").encoder(device="cuda")(clips[1][:2, 0].cuda()).is_cuda


def test_a_small_moving_puck_does_not_collapse_into_the_background(tmp_path):
    """The mean frame (the empty table) scores about half of copy-last on the moving pixels; a model
    whose output fades the puck into the background scores the same. The composite output must
    beat it clearly; the plain sigmoid image (the paper's output) stays at that level here, even
    with moving pixels weighted 11 times."""
    train_set = moving_puck_clips(64, MODEL.clip_length, size=16, puck=3, seed=1)
    val_set = moving_puck_clips(16, MODEL.clip_length, size=16, puck=3, seed=2)
    config = dataclasses.replace(TRAIN, epochs=10)
    moving = {}
    for composite in (True, False):
        model = dataclasses.replace(MODEL, composite=composite, mean_frame_clips=16, moving_weight=10.0)
        m = train((train_set, val_set), tmp_path / str(composite), config, model)
        moving[composite] = m["val_moving_mse"] / m["baseline_mean_frame_moving_mse"]
    assert moving[True] < 0.75
    assert moving[True] < 0.8 * moving[False]
