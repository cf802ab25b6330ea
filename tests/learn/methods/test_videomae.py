"""VideoMAE (Tong et al. 2022): the tube mask, the masked-patch loss on hand-made input, label-free
samples, the registry's contract (config round trip, resume, frozen encoder), and learnability."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from airhockey.errors import UserError
from airhockey.learn.config import PretextConfig, apply_settings, from_dict, to_dict
from airhockey.learn.methods import get_method, method_names
from airhockey.learn.methods.videomae import (
    VideoMAE,
    VideoMAEConfig,
    hidden_positions,
    masked_mse,
    patch_targets,
    tube_mask,
    tube_tokens,
)
from airhockey.learn.nn.transformer import TransformerConfig, patchify
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.episodes import ArrayEpisodes, coded_episodes, puck_episodes

TINY = TransformerConfig(image_size=(16, 16), patch=4, width=16, depth=2, heads=2)
IDS = np.arange(6)


def tiny(*settings: str) -> VideoMAE:
    """VideoMAE with the tiny transformer, 4-frame clips, a decoder of width 8 (and ``settings``)."""
    config = VideoMAEConfig(encoder=TINY, frames=4, clip_stride=2, decoder_width=8, decoder_depth=1)
    return VideoMAE(apply_settings(config, list(settings)))


def items(dataset, n: int = 8) -> list[dict[str, torch.Tensor]]:
    return [dataset[i] for i in range(min(n, len(dataset)))]


def batch_of(method: VideoMAE, episodes=None, n: int = 4) -> dict[str, torch.Tensor]:
    data = method.samples(episodes or puck_episodes(6, 12, seed=1), IDS, seed=0, training=True)
    return next(iter(DataLoader(data, batch_size=n)))


# ----------------------------------------------------------------------- the tube mask
@pytest.mark.parametrize(("ratio", "visible"), [(0.9, 2), (0.75, 4), (0.5, 8), (0.99, 1), (0.01, 15)])
@pytest.mark.parametrize("blocks", [0, 3])
def test_the_mask_hides_exactly_its_ratio_of_distinct_positions(ratio, visible, blocks):
    for seed in range(20):
        shown = tube_mask(np.random.default_rng(seed), 16, ratio, blocks, (4, 4))
        assert len(shown) == visible and len(set(shown.tolist())) == visible
        assert np.all(np.diff(shown) > 0) and shown.min() >= 0 and shown.max() < 16


def test_one_mask_hides_the_same_positions_in_every_frame():
    visible = torch.tensor([[1, 6], [0, 15]])
    shown = tube_tokens(visible, frames=3, patches=16)
    assert shown.tolist() == [[1, 6, 17, 22, 33, 38], [0, 15, 16, 31, 32, 47]]
    hidden = hidden_positions(visible, 16)
    assert hidden.shape == (2, 14)
    for row, vis in zip(hidden.tolist(), visible.tolist(), strict=True):
        assert sorted(row + vis) == list(range(16)) and row == sorted(row)
    every = torch.cat([shown, tube_tokens(hidden, 3, 16)], dim=1).sort(dim=1).values
    assert torch.equal(every, torch.arange(48).expand(2, -1))


def test_samples_carry_the_clip_and_its_mask():
    method = tiny()
    data = method.samples(coded_episodes([12, 10]), np.arange(2), seed=0, training=True)
    assert len(data) == 5 + 4  # clips of 4 frames every 2 frames
    item = data[0]
    assert item["clip"].shape == (4, 3, 16, 16) and item["visible"].shape == (2,)  # 10% of 16, rounded


# ----------------------------------------------------------------------- the loss
def test_the_loss_reads_the_targets_of_hidden_patches_only():
    targets = torch.rand(1, 8, 5)  # (B, T N, 3 p^2): 2 frames of 4 patches
    hidden = torch.tensor([[1, 2, 5, 6]])  # positions 1 and 2 in both frames
    pred = torch.rand(1, 4, 5)
    errors = masked_mse(pred, targets, hidden)
    assert torch.allclose(errors, ((pred - targets[:, [1, 2, 5, 6]]) ** 2).mean(-1))
    changed = targets.clone()
    changed[:, [0, 3, 4, 7]] = 100.0  # the visible patches' targets
    assert torch.equal(masked_mse(pred, changed, hidden), errors)
    changed[:, 5] += 1.0  # a hidden one's
    assert not torch.equal(masked_mse(pred, changed, hidden), errors)


def test_predictions_read_only_the_visible_patches():
    """A hidden patch's pixels change its target but not a single prediction: the encoder reads the
    visible tokens only and the decoder mask tokens in the hidden places."""
    method = tiny()
    torch.manual_seed(0)
    model = method.build_model().eval()
    batch = batch_of(method)
    hidden = hidden_positions(batch["visible"], 16)[:, 0]  # the first hidden position of each clip
    changed = batch["clip"].clone()
    for i, p in enumerate(hidden.tolist()):
        y, x = divmod(p, 4)
        changed[i, :, :, 4 * y : 4 * y + 4, 4 * x : 4 * x + 4] = torch.rand(4, 3, 4, 4)
    with torch.no_grad():
        pred, _ = model(batch["clip"], batch["visible"])
        again, _ = model(changed, batch["visible"])
        assert torch.equal(pred, again)
        assert method.loss(model, {**batch, "clip": changed}) != method.loss(model, batch)


def test_normalised_targets_have_zero_mean_and_unit_spread_per_patch():
    clip = torch.rand(2, 3, 3, 16, 16)
    raw = patch_targets(clip, 4, normalise=False)
    assert torch.equal(raw, patchify(clip, 4).flatten(1, 2))
    normalised = patch_targets(clip, 4, normalise=True)
    assert torch.allclose(normalised.mean(-1), torch.zeros(2, 48), atol=1e-5)
    assert torch.allclose(normalised.std(-1, correction=0), torch.ones(2, 48), atol=1e-3)
    flat = patch_targets(torch.full((1, 1, 3, 16, 16), 0.5), 4, normalise=True)
    assert torch.equal(flat, torch.zeros_like(flat))  # a uniform patch is all zeros, not NaN


def test_the_mean_patch_baseline_is_perfect_when_every_clip_is_the_same():
    method = tiny("norm_pix_loss=false")
    frames = np.random.default_rng(0).integers(256, size=(12, 16, 16, 3), dtype=np.uint8)
    same = ArrayEpisodes([frames[:8].copy()] * 6)  # clips 0-3 and 2-5 differ: use one clip per episode
    data = dataclasses.replace(method.config, clip_stride=8)
    method = VideoMAE(dataclasses.replace(data, frames=8))
    train = method.samples(same, IDS, seed=0, training=True)
    baseline = method.baselines(train, DataLoader(train, batch_size=4), torch.device("cpu"))
    assert baseline["baseline_mean_patch_loss"] == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------- label-free
def test_samples_are_a_function_of_the_frames_and_the_seed():
    original = coded_episodes([12, 14, 12, 16, 12, 13])
    frames = [original.frames(i) for i in range(len(original))]
    relabelled = ArrayEpisodes(frames, labels=[1, 1, 0, 0, 1, 0], hit_frames=[3, 4, 5, 6, 7, 8])
    method = tiny()
    for training in (True, False):
        a = items(method.samples(original, IDS, seed=3, training=training))
        b = items(method.samples(relabelled, IDS, seed=3, training=training))
        assert all(torch.equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in x)
    other = items(method.samples(original, IDS, seed=4, training=True))
    assert any(not torch.equal(x["visible"], y["visible"]) for x, y in zip(a, other, strict=True))
    train = method.samples(original, IDS, seed=3, training=True)
    first = items(train)
    train.set_epoch(1)
    assert any(not torch.equal(x["visible"], y["visible"]) for x, y in zip(first, items(train), strict=True))


# ----------------------------------------------------------------------- the registry's contract
def test_registered_with_a_transformer_encoder_and_its_settings_round_trip():
    assert {"videomae", "vjepa"} <= set(method_names())
    method = tiny("mask_ratio=0.75", "encoder.width=24", "encoder.heads=3", "causal=false")
    assert method.config.mask_ratio == 0.75 and method.config.encoder.width == 24
    assert from_dict(VideoMAEConfig, to_dict(method.config)) == method.config
    assert get_method("videomae").from_dict(method.config_dict()).config == method.config
    assert method.with_image_size((32, 32)).image_size == (32, 32)
    assert method.encoder_config()["patch"] == 4
    with pytest.raises(UserError, match=r"mask_ratio must be a finite number in \(0, 1\)"):
        apply_settings(method.config, ["mask_ratio=1"])
    with pytest.raises(UserError, match="decoder_width"):
        apply_settings(method.config, ["decoder_width=10"])
    with pytest.raises(ValueError, match="at least 2 patches"):
        method.with_image_size((4, 4))


def test_loss_is_finite_and_reaches_every_parameter():
    method = tiny()
    torch.manual_seed(0)
    model = method.build_model()
    loss = method.loss(model, batch_of(method))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in model.parameters())


def split_data(method: VideoMAE):
    episodes = puck_episodes(6, 12, seed=1)
    return method.samples(episodes, IDS[:4], 0, True), method.samples(episodes, IDS[4:], 0, False)


def test_resume_continues_exactly(tmp_path):
    method = tiny()
    data = split_data(method)
    config = PretextConfig(epochs=2, batch_size=8, patience=10)
    whole = train_pretext(data, tmp_path / "whole", method, config, progress=False)
    train_pretext(data, tmp_path / "half", method, dataclasses.replace(config, epochs=1), progress=False)
    resumed = train_pretext(data, tmp_path / "half", None, config, resume=True, progress=False)
    assert resumed["val_loss"] == whole["val_loss"]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "half" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_frozen_encoder_keeps_its_random_weights_while_the_decoder_trains(tmp_path):
    method = tiny()
    config = PretextConfig(epochs=1, batch_size=8, patience=10, frozen_encoder=True)
    train_pretext(split_data(method), tmp_path / "frozen", method, config, progress=False)
    torch.manual_seed(config.seed)
    initial = method.build_model().state_dict()
    frozen = torch.load(tmp_path / "frozen" / "last.pt", weights_only=True)["model"]
    encoder = {k for k in initial if k.startswith("encoder.")}
    assert encoder and all(torch.equal(frozen[k], initial[k]) for k in encoder)
    assert not all(torch.equal(frozen[k], initial[k]) for k in initial.keys() - encoder)
    assert json.loads((tmp_path / "frozen" / "config.json").read_text())["training"]["frozen_encoder"]


# ----------------------------------------------------------------------- learnability
def test_the_loss_falls_on_a_moving_puck():
    """Raw pixels, half the patches hidden: a puck seen in some frames can be placed in the others."""
    method = tiny("mask_ratio=0.5", "norm_pix_loss=false")
    train = method.samples(puck_episodes(8, 12, seed=2), np.arange(8), seed=0, training=True)
    loader = DataLoader(train, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = method.build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = method.evaluate(model.eval(), loader, torch.device("cpu"))["val_loss"]
    model.train()
    for _ in range(15):
        for batch in loader:
            optimizer.zero_grad()
            method.loss(model, batch).backward()
            optimizer.step()
    with torch.no_grad():
        after = method.evaluate(model.eval(), loader, torch.device("cpu"))["val_loss"]
    baseline = method.baselines(train, loader, torch.device("cpu"))["baseline_mean_patch_loss"]
    assert after < 0.2 * before, (before, after, baseline)
