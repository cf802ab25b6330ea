"""The ``lvln`` method (the ladder network of Leuschner and Scheffczyk 2020): shapes, causality,
learning, the trainer, settings."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from airhockey.errors import UserError
from airhockey.learn.config import PretextConfig, apply_settings, from_dict, to_dict
from airhockey.learn.methods import get_method
from airhockey.learn.methods.lvln import (
    LVLN,
    LadderEncoder,
    LocationConv2d,
    LVLNConfig,
    LVLNModel,
    UpBlock,
    fast_ssim,
    ladder_loss,
)
from airhockey.learn.nn.metrics import ssim
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.synthetic import moving_puck_clips

CONFIG = LVLNConfig(
    image_size=(16, 16),
    channels=(4, 8),
    location_levels=1,
    location_channels=2,
    frames_in=3,
    frames_predicted=2,
    feature_channel_stride=2,
    mean_frame_clips=8,
)
TRAIN = PretextConfig(epochs=None, steps=5, batch_size=8, lr=5e-3, patience=10)


@pytest.fixture(scope="module")
def clips() -> tuple[torch.Tensor, torch.Tensor]:
    """24 training and 8 validation clips of 5 frames, 16x16, a 3-px puck."""
    return (
        moving_puck_clips(24, CONFIG.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, CONFIG.clip_length, size=16, puck=3, seed=2),
    )


def model(config: LVLNConfig = CONFIG, seed: int = 0) -> LVLNModel:
    torch.manual_seed(seed)
    return LVLN(config).build_model().eval()


def test_every_module_gives_the_documented_shapes():
    frames = torch.rand(2, 4, 3, 16, 16)  # (B, T, 3, H, W)
    encoder = LadderEncoder(CONFIG)
    hidden, blocks, state = encoder.ladder(frames)
    assert [h.shape for h in hidden] == [(2, 4, 4, 8, 8), (2, 4, 8, 4, 4)]
    assert [x.shape for x in blocks] == [(8, 4, 8, 8), (8, 8, 4, 4)]
    assert [[s.shape for s in level] for level in state] == [[(2, 4, 8, 8)], [(2, 8, 4, 4)]]
    # Features: all 8 deepest channels, every 2nd of the 4 shallower ones pooled to 4x4.
    assert encoder.out_channels == 8 + 2 and encoder.feature_size == (4, 4)
    assert encoder.encode(frames).shape == (2, 4, 10, 4, 4)
    assert LocationConv2d(8, 5, (4, 4), 2)(torch.rand(3, 8, 4, 4)).shape == (3, 5, 4, 4)
    assert UpBlock(8, 4)(torch.rand(3, 8, 4, 4)).shape == (3, 4, 8, 8)
    net = model()
    predictions, _ = net.advance(frames)
    assert predictions.shape == (2, 4, 3, 16, 16)
    assert net(frames, future=2).shape == (2, 6, 3, 16, 16)
    assert predictions.min() >= 0 and predictions.max() <= 1


def test_no_prediction_or_feature_reads_a_later_frame():
    net = model()
    frames = torch.rand(2, 5, 3, 16, 16)
    changed = frames.clone()
    changed[:, 3:] = torch.rand(2, 2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(frames)[:, :3], net(changed)[:, :3])
        torch.testing.assert_close(net.encoder.encode(frames)[:, :3], net.encoder.encode(changed)[:, :3])
        assert not torch.allclose(net(frames)[:, 3], net(changed)[:, 3])


def test_feeding_predictions_back_equals_stepping_with_them():
    net = model()
    frames = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        rolled = net(frames, future=2)  # (1, 5, 3, H, W)
        fed = torch.cat([frames, rolled[:, 2:4]], dim=1)  # the context, then two predictions fed back
        torch.testing.assert_close(net(fed), rolled)


def test_an_untrained_model_copies_the_last_frame_or_about_that():
    frames = torch.rand(2, 3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model()(frames), frames)  # a residual output starts at zero change
        masked = model(dataclasses.replace(CONFIG, output="mask"))(frames)
        assert (masked - frames).abs().mean() < 0.05  # the mask starts 5 % open
        image = model(dataclasses.replace(CONFIG, output="image"))(frames)
        assert image.shape == frames.shape and image.min() >= 0 and image.max() <= 1


def test_the_loss_weights_sum_to_one_and_the_ssim_of_the_loss_tracks_the_metric():
    config = dataclasses.replace(CONFIG, dssim_weight=2.0, l1_weight=1.0, l2_weight=1.0)
    assert config.loss_weights == (0.5, 0.25, 0.25)
    a = torch.rand(4, 3, 16, 16)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    torch.testing.assert_close(fast_ssim(a, b), ssim(a, b), atol=0.03, rtol=0)
    assert ladder_loss(a, a, a, config) == pytest.approx(0.0, abs=1e-6)
    only_l2 = dataclasses.replace(CONFIG, dssim_weight=0.0, l1_weight=0.0, l2_weight=3.0)
    assert ladder_loss(b, a, a, only_l2) == pytest.approx(((b - a) ** 2).mean().item(), rel=1e-5)


def test_the_loss_goes_down_on_moving_puck_clips(clips):
    method, net = LVLN(CONFIG), model()
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        for batch in clips[0].split(8):
            loss = method.loss(net, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert sum(losses[-3:]) < 0.9 * sum(losses[:3])


def test_the_trainer_resumes_it_exactly_and_the_run_reopens_through_the_registry(clips, tmp_path):
    train_pretext(clips, tmp_path / "whole", LVLN(CONFIG), TRAIN, progress=False)
    train_pretext(
        clips, tmp_path / "split", LVLN(CONFIG), dataclasses.replace(TRAIN, steps=4), progress=False
    )
    metrics = train_pretext(clips, tmp_path / "split", None, TRAIN, resume=True, progress=False)
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)
    assert metrics["val_rollout_mse"] > 0 and metrics["baseline_copy_last_mse"] > 0

    run = PretextRun.open(tmp_path / "split")
    assert run.method.name == "lvln" and run.method.config == CONFIG
    encoder, net = run.encoder(), run.model()
    sequence = clips[1][:2]  # (B, T, 3, H, W)
    features = encoder.encode(sequence)
    torch.testing.assert_close(features, net.encoder.encode(sequence))
    for k in (1, 2, sequence.shape[1]):  # the features after the first k frames
        torch.testing.assert_close(encoder(sequence[:, :k]), features[:, k - 1])
    assert encoder(sequence[:, 0]).shape == (2, encoder.out_channels, *encoder.feature_size)

    one, three = run.method.predict_episode(net, sequence[0], steps=3)
    assert torch.isnan(three[:3]).all() and not torch.isnan(three[3:]).any()
    with torch.no_grad():
        torch.testing.assert_close(one[1:], net(sequence[:1, :-1])[0].clamp(0, 1))
        torch.testing.assert_close(three[3], net(sequence[:1, :1], future=2)[0, -1].clamp(0, 1))


def test_settings_round_trip_through_set_and_plain_data():
    method = get_method("lvln")
    config = apply_settings(
        method.config_class(),
        [
            "channels=4,8",
            "gru_layers=2",
            "location_levels=1",
            "dssim_weight=2",
            "l1_weight=1",
            "l2_weight=1",
            "output=mask",
        ],
    )
    assert config.channels == (4, 8) and config.hidden == (4, 8) and config.gru_layers == 2
    assert config.loss_weights[0] == pytest.approx(0.5) and config.output == "mask"
    assert from_dict(LVLNConfig, to_dict(config)) == config
    assert method.from_dict(method(config).config_dict()).config == config
    with pytest.raises(UserError, match="output must be one of"):
        apply_settings(config, ["output=sideways"])
    with pytest.raises(UserError, match="location_levels"):
        apply_settings(config, ["location_levels=3"])
    with pytest.raises(UserError, match="divisible"):
        apply_settings(config, ["image_size=18,18"])


def pooled_ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 7) -> torch.Tensor:
    """The reference for ``fast_ssim``: its formula with the window's means from ``avg_pool2d``."""
    c1, c2 = 0.01**2, 0.03**2
    stacked = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    mu_p, mu_t, pp, tt, pt = F.avg_pool2d(stacked, window, stride=1).chunk(5, dim=1)
    var_p, var_t = (pp - mu_p**2).clamp_min(0), (tt - mu_t**2).clamp_min(0)
    cov = pt - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(dim=1)


@pytest.mark.parametrize("noise", [0.0, 1e-3, 0.1, 1.0])
def test_fast_ssim_and_its_gradient_equal_the_average_pooling_formulation_in_float64(noise):
    torch.manual_seed(0)
    target = torch.full((6, 3, 24, 20), 0.9)
    target[:, :, 5:10, 7:12] = 0.1  # a dark puck on a light, flat table
    pred = (target + noise * torch.randn_like(target)).clamp(0, 1)
    results = []
    for ssim_fn, dtype in ((fast_ssim, torch.float32), (pooled_ssim, torch.float64)):
        x = pred.to(dtype, copy=True).requires_grad_()
        value = ssim_fn(x, target.to(dtype))
        value.square().sum().backward()
        results.append((value.detach().double(), x.grad.double()))
    (value, grad), (expected, expected_grad) = results
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(grad, expected_grad, atol=1e-6, rtol=1e-4)


def test_fast_ssim_equals_the_average_pooling_formulation_in_float32_on_varied_frames():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 8, 3, 16, 16)
    torch.testing.assert_close(fast_ssim(pred, target), pooled_ssim(pred, target), atol=1e-6, rtol=0)
