import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from airhockey.learn.config import EncoderConfig
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.nn.autoencoder import ConvLSTMAutoencoder
from airhockey.learn.nn.metrics import FramePredictionStats, moving_mask, ssim


def block_clip() -> torch.Tensor:
    """(3, 3, 16, 16): a black frame, then a white 2x2 block, then the block 2 px to the right."""
    clip = torch.zeros(3, 3, 16, 16)
    clip[1, :, 2:4, 2:4] = 1.0
    clip[2, :, 2:4, 4:6] = 1.0
    return clip


def test_ssim_is_one_for_identical_frames_and_matches_the_formula_on_flat_ones():
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    a, b = 0.2, 0.7
    flat = ssim(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b))
    expected = (2 * a * b + 0.01**2) / (a**2 + b**2 + 0.01**2)  # no variance: only the luminance term
    assert flat.item() == pytest.approx(expected, rel=1e-4)
    assert ssim(x, x.flip(-1)).mean() < 0.5


def float64_ssim(
    pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """The reference for ``ssim``: the same definition evaluated in float64 without a shift."""
    c1, c2 = 0.01**2, 0.03**2
    pred, target = pred.double(), target.double()
    channels = pred.shape[1]
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).expand(5 * channels, 1, 1, window)
    stacked = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    blurred = F.conv2d(F.conv2d(stacked, g, groups=5 * channels), g.transpose(2, 3), groups=5 * channels)
    mu_p, mu_t, pp, tt, pt = blurred.chunk(5, dim=1)
    var_p, var_t, cov = pp - mu_p**2, tt - mu_t**2, pt - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(dim=1)


def table_frames(n: int, size: int) -> torch.Tensor:
    """(n, 3, size, size): a light, flat table with a dark 5-px puck at a random place in each frame."""
    frames = torch.full((n, 3, size, size), 230 / 255)
    for i, (y, x) in enumerate(torch.randint(0, size - 5, (n, 2)).tolist()):
        frames[i, :, y : y + 5, x : x + 5] = 25 / 255
    return frames


@pytest.mark.parametrize("case", ["random", "exact", "noisy", "slightly noisy", "shifted", "flat"])
def test_float32_ssim_equals_the_float64_definition(case):
    torch.manual_seed(0)
    frames = table_frames(20, 64)  # 64x64: the 20 frames go through in several chunks
    pred, target = {
        "random": (torch.rand_like(frames), torch.rand_like(frames)),
        "exact": (frames.clone(), frames),
        "noisy": ((frames + 0.01 * torch.randn_like(frames)).clamp(0, 1), frames),
        "slightly noisy": ((frames + 1e-3 * torch.randn_like(frames)).clamp(0, 1), frames),
        "shifted": (frames.roll(1, dims=-1), frames),
        "flat": (torch.full_like(frames, 0.9), torch.full_like(frames, 0.91)),
    }[case]
    value = ssim(pred, target)
    assert value.dtype == torch.float32 and value.shape == (20,)
    torch.testing.assert_close(value.double(), float64_ssim(pred, target), atol=1e-5, rtol=0)
    torch.testing.assert_close(ssim(pred[:3], target[:3]), value[:3])  # the same in a smaller call


def test_moving_mask_marks_where_the_block_was_and_where_it_is():
    clip = block_clip()
    mask = moving_mask(clip[1:2], clip[2:3], threshold=0.05)  # (1, 1, H, W)
    assert mask.sum() == 8
    assert mask[0, 0, 2:4, 2:6].all()


def test_stats_on_a_hand_made_case():
    clip = block_clip()
    stats = FramePredictionStats(moving_threshold=0.05)
    stats.update(clip[:2], clip[1:], clip[:2])  # copy-last: predict frame t for frame t + 1
    r = stats.result()
    # Squared errors: 4 px x 3 channels for the first pair, 8 px x 3 for the second; 2 x 768 values.
    assert r["mse"] == pytest.approx(36 / 1536)
    assert r["moving_mse"] == pytest.approx(1.0)  # every moving value is off by 1
    assert r["psnr"] == pytest.approx((-10 * math.log10(12 / 768) - 10 * math.log10(24 / 768)) / 2)


def test_stats_say_nan_when_nothing_moves():
    stats = FramePredictionStats(moving_threshold=0.05)
    x = torch.rand(1, 3, 16, 16)
    stats.update(x, x, x)
    assert math.isnan(stats.result()["moving_mse"])
    assert stats.result()["mse"] == 0


@pytest.mark.parametrize("frames_in, frames_predicted", [(2, 1), (1, 2)])
def test_evaluate_computes_the_baselines_by_hand(frames_in, frames_predicted):
    encoder = EncoderConfig(image_size=(16, 16), stem_channels=(4,), hidden_channels=4)
    method = NextFrame(
        NextFrameConfig(encoder=encoder, frames_in=frames_in, frames_predicted=frames_predicted)
    )
    clip = block_clip()
    loader = DataLoader(clip[None], batch_size=1)
    cpu = torch.device("cpu")
    # The black mean frame, as the mean of an all-black training set gives it.
    r = {
        **method.baselines([torch.zeros_like(clip)], loader, cpu),
        **method.evaluate(ConvLSTMAutoencoder(encoder), loader, cpu),
    }
    assert r["baseline_copy_last_mse"] == pytest.approx(36 / 1536)
    assert r["baseline_copy_last_moving_mse"] == pytest.approx(1.0)
    # The black mean frame misses the block in both targets (4 px each) and, among the 4 + 8
    # moving pixels, only the 4 + 4 where the block is.
    assert r["baseline_mean_frame_mse"] == pytest.approx(24 / 1536)
    assert r["baseline_mean_frame_moving_mse"] == pytest.approx(24 / 36)
    assert {"val_mse", "val_psnr", "val_ssim", "val_moving_mse"} <= r.keys()
    if frames_predicted > 1:
        # Copying the single context frame (black) for both predicted frames.
        assert r["baseline_copy_last_rollout_mse"] == pytest.approx(24 / 1536)
        assert r["baseline_copy_last_rollout_moving_mse"] == pytest.approx(24 / 36)
    else:
        assert "val_rollout_mse" not in r
