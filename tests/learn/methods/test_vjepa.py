"""V-JEPA style latent prediction (Bardes et al. 2024): the EMA target on hand-made weights, what the
predictions read, label-free samples, the registry's contract (config round trip, resume, frozen
encoder), and learnability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from airhockey.errors import UserError
from airhockey.learn.config import PretextConfig, apply_settings, from_dict, to_dict
from airhockey.learn.methods import get_method
from airhockey.learn.methods.videomae import hidden_positions
from airhockey.learn.methods.vjepa import VJEPA, VJEPAConfig
from airhockey.learn.nn.transformer import TransformerConfig
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.episodes import ArrayEpisodes, coded_episodes, puck_episodes

TINY = TransformerConfig(image_size=(16, 16), patch=4, width=16, depth=2, heads=2)
IDS = np.arange(6)


def tiny(*settings: str) -> VJEPA:
    """V-JEPA with the tiny transformer, 4-frame clips, a predictor of width 8 (and ``settings``)."""
    config = VJEPAConfig(encoder=TINY, frames=4, clip_stride=2, predictor_width=8, predictor_depth=1)
    return VJEPA(apply_settings(config, list(settings)))


def batch_of(method: VJEPA, n: int = 4) -> dict[str, torch.Tensor]:
    data = method.samples(puck_episodes(6, 12, seed=1), IDS, seed=0, training=True)
    return next(iter(DataLoader(data, batch_size=n)))


def test_the_momentum_rises_linearly_then_stays():
    config = tiny("ema_start=0.9", "ema_end=1.0", "ema_steps=10").config
    assert [config.momentum(s) for s in (0, 5, 10, 50)] == pytest.approx([0.9, 0.95, 1.0, 1.0])


def test_the_target_moves_by_the_momentum_rule_and_never_gets_a_gradient():
    method = tiny("ema_start=0.5", "ema_end=0.5")
    torch.manual_seed(0)
    model = method.build_model().train()
    assert all(not p.requires_grad for p in model.target_encoder.parameters())
    target = {k: v.clone() for k, v in model.target_encoder.state_dict().items()}
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in target.items())  # a copy at first
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)  # as if an optimiser step had moved the context encoder
    online = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    loss = method.loss(model, batch_of(method))
    loss.backward()
    moved = model.target_encoder.state_dict()
    for k, v in moved.items():
        torch.testing.assert_close(v, 0.5 * target[k] + 0.5 * online[k])
    assert int(model.ema_updates) == 1
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.predictor.parameters())
    snapshot = {k: v.clone() for k, v in moved.items()}
    with torch.no_grad():
        method.loss(model, batch_of(method))  # no update outside training
    model.eval()
    method.loss(model, batch_of(method))
    assert int(model.ema_updates) == 1
    assert all(torch.equal(v, snapshot[k]) for k, v in model.target_encoder.state_dict().items())


def test_predictions_read_only_the_visible_patches_and_targets_are_layer_normalised():
    method = tiny()
    torch.manual_seed(0)
    model = method.build_model().eval()
    batch = batch_of(method)
    hidden = hidden_positions(batch["visible"], 16)[:, 0]
    changed = batch["clip"].clone()
    for i, p in enumerate(hidden.tolist()):
        y, x = divmod(p, 4)
        changed[i, :, :, 4 * y : 4 * y + 4, 4 * x : 4 * x + 4] = torch.rand(4, 3, 4, 4)
    with torch.no_grad():
        pred, targets = model(batch["clip"], batch["visible"])
        again, new_targets = model(changed, batch["visible"])
    assert pred.shape == targets.shape == (4, 4 * 14, 16)  # 14 of 16 positions hidden, 4 frames
    assert torch.equal(pred, again) and not torch.equal(targets, new_targets)
    assert torch.allclose(targets.mean(-1), torch.zeros(4, 56), atol=1e-5)


def test_samples_are_a_function_of_the_frames_and_the_seed():
    original = coded_episodes([12, 14, 12, 16, 12, 13])
    frames = [original.frames(i) for i in range(len(original))]
    relabelled = ArrayEpisodes(frames, labels=[1, 1, 0, 0, 1, 0], hit_frames=[3, 4, 5, 6, 7, 8])
    method = tiny()
    for training in (True, False):
        a = method.samples(original, IDS, seed=3, training=training)
        b = method.samples(relabelled, IDS, seed=3, training=training)
        assert all(torch.equal(a[i][k], b[i][k]) for i in range(len(a)) for k in ("clip", "visible"))


def test_settings_round_trip_and_are_checked():
    method = tiny("mask_blocks=0", "ema_steps=50", "causal=false")
    assert from_dict(VJEPAConfig, to_dict(method.config)) == method.config
    assert get_method("vjepa").from_dict(method.config_dict()).config == method.config
    assert method.with_image_size((32, 32)).image_size == (32, 32)
    with pytest.raises(UserError, match=r"ema_end must be a finite number in \[0, 1\]"):
        apply_settings(method.config, ["ema_end=1.5"])
    with pytest.raises(UserError, match="predictor_width"):
        apply_settings(method.config, ["predictor_width=10"])


def split_data(method: VJEPA):
    episodes = puck_episodes(6, 12, seed=1)
    return method.samples(episodes, IDS[:4], 0, True), method.samples(episodes, IDS[4:], 0, False)


def test_resume_continues_exactly_with_the_target_and_its_schedule(tmp_path):
    method = tiny()
    data = split_data(method)
    config = PretextConfig(epochs=2, batch_size=8, patience=10)
    whole = train_pretext(data, tmp_path / "whole", method, config, progress=False)
    train_pretext(data, tmp_path / "half", method, dataclasses.replace(config, epochs=1), progress=False)
    resumed = train_pretext(data, tmp_path / "half", None, config, resume=True, progress=False)
    assert resumed["val_relative_l1"] == whole["val_relative_l1"]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "half" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["ema_updates"]) == whole["steps"]


def test_a_frozen_encoder_keeps_both_encoders_while_the_predictor_trains(tmp_path):
    method = tiny()
    config = PretextConfig(epochs=1, batch_size=8, patience=10, frozen_encoder=True)
    train_pretext(split_data(method), tmp_path / "frozen", method, config, progress=False)
    torch.manual_seed(config.seed)
    initial = method.build_model().state_dict()
    frozen = torch.load(tmp_path / "frozen" / "last.pt", weights_only=True)["model"]
    encoders = {k for k in initial if k.startswith(("encoder.", "target_encoder."))}
    assert all(torch.equal(frozen[k], initial[k]) for k in encoders)
    assert not all(torch.equal(frozen[k], initial[k]) for k in initial.keys() - encoders - {"ema_updates"})


def test_the_predictor_beats_the_batch_mean_target_on_a_moving_puck():
    method = tiny("mask_ratio=0.5")
    train = method.samples(puck_episodes(8, 12, seed=2), np.arange(8), seed=0, training=True)
    loader = DataLoader(train, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = method.build_model()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    with torch.no_grad():
        before = method.evaluate(model.eval(), loader, torch.device("cpu"))
    model.train()
    for _ in range(15):
        for batch in loader:
            optimizer.zero_grad()
            method.loss(model, batch).backward()
            optimizer.step()
    with torch.no_grad():
        after = method.evaluate(model.eval(), loader, torch.device("cpu"))
    assert after["val_relative_l1"] < 0.5 * before["val_relative_l1"], (before, after)
