"""The ``composite`` method (the autoencoder, future predictor and composite model of
Srivastava et al. 2015)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from airhockey.errors import UserError
from airhockey.learn.config import EncoderConfig, PretextConfig, apply_settings, from_dict, to_dict
from airhockey.learn.methods import get_method
from airhockey.learn.methods.composite import Composite, CompositeConfig, CompositeModel
from airhockey.learn.nn.autoencoder import FrameEncoder
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.synthetic import moving_puck_clips

ENCODER = EncoderConfig(image_size=(16, 16), stem_channels=(4, 8), hidden_channels=6)
CONFIG = CompositeConfig(encoder=ENCODER, frames_in=3, frames_future=2, mean_frame_clips=8)
TRAIN = PretextConfig(epochs=None, steps=5, batch_size=8, lr=5e-3, patience=10)


@pytest.fixture(scope="module")
def clips() -> tuple[torch.Tensor, torch.Tensor]:
    """24 training and 8 validation clips of 5 frames, 16x16, a 3-px puck."""
    return (
        moving_puck_clips(24, CONFIG.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, CONFIG.clip_length, size=16, puck=3, seed=2),
    )


def model(config: CompositeConfig = CONFIG, seed: int = 0) -> CompositeModel:
    torch.manual_seed(seed)
    return Composite(config).build_model().eval()


@pytest.mark.parametrize(
    ("decoders", "conditional"), [("both", False), ("both", True), ("predict", True), ("reconstruct", False)]
)
def test_each_decoder_outputs_its_frames(decoders, conditional):
    config = dataclasses.replace(CONFIG, decoders=decoders, conditional=conditional)
    net = model(config)
    frames = torch.rand(2, 3, 3, 16, 16)  # (B, T, 3, H, W)
    teacher = torch.rand(2, 4, 3, 16, 16)
    for out in (net(frames, future=4), net(frames, future=4, teacher=teacher)):
        assert set(out) == {"both": {"reconstruct", "predict"}}.get(decoders, {decoders})
        if "predict" in out:
            assert out["predict"].shape == (2, 4, 3, 16, 16)
        if "reconstruct" in out:
            assert out["reconstruct"].shape == (2, 3, 3, 16, 16)
        assert all(o.min() >= 0 and o.max() <= 1 for o in out.values())
    assert isinstance(net.encoder, FrameEncoder)
    loss = Composite(config).loss(net, torch.rand(2, config.clip_length, 3, 16, 16))
    assert loss.dim() == 0 and loss > 0


def test_a_conditional_decoder_reads_its_inputs_and_an_unconditioned_one_does_not():
    frames = torch.rand(1, 3, 3, 16, 16)
    teacher, other = torch.rand(1, 3, 3, 16, 16), torch.rand(1, 3, 3, 16, 16)  # the true future frames
    with torch.no_grad():
        conditional = model(dataclasses.replace(CONFIG, conditional=True))
        a, b = conditional(frames, 3, teacher)["predict"], conditional(frames, 3, other)["predict"]
        torch.testing.assert_close(a[:, 0], b[:, 0])  # step 0 reads the last input frame only
        assert not torch.allclose(a[:, 1:], b[:, 1:])
        generated = conditional(frames, 3)["predict"]  # its own outputs fed back
        torch.testing.assert_close(conditional(frames, 3, generated)["predict"], generated)
        unconditioned = model()
        torch.testing.assert_close(unconditioned(frames, 3, teacher), unconditioned(frames, 3, other))


def test_the_reconstruction_target_is_the_input_in_reverse_order(clips):
    method = Composite(dataclasses.replace(CONFIG, decoders="reconstruct"))
    clip = clips[0][:2]  # (B, L, 3, H, W)

    def reverse(frames, future=0, teacher=None):  # a model that reconstructs perfectly
        return {"reconstruct": frames.flip(1)}

    def forward(frames, future=0, teacher=None):
        return {"reconstruct": frames}

    assert method.loss(reverse, clip) == 0
    assert method.loss(forward, clip) > 0


def test_no_feature_or_prediction_reads_a_later_frame():
    method, net = Composite(CONFIG), model()
    episode = torch.rand(6, 3, 16, 16)  # (T, 3, H, W)
    changed = episode.clone()
    changed[4:] = torch.rand(2, 3, 16, 16)
    one, three = method.predict_episode(net, episode, steps=2)
    one_changed, three_changed = method.predict_episode(net, changed, steps=2)
    torch.testing.assert_close(one[:5], one_changed[:5], equal_nan=True)  # frame t reads frames < t
    torch.testing.assert_close(three[:6], three_changed[:6], equal_nan=True)  # frame t reads < t - 1
    with torch.no_grad():
        encode = net.encoder.encode
        torch.testing.assert_close(encode(episode[None])[:, :4], encode(changed[None])[:, :4])


def test_the_loss_goes_down_on_moving_puck_clips(clips):
    method, net = Composite(CONFIG), model()
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        for batch in clips[0].split(8):
            loss = method.loss(net, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])


def test_the_trainer_resumes_it_exactly_and_the_run_reopens_through_the_registry(clips, tmp_path):
    method = Composite(dataclasses.replace(CONFIG, conditional=True))
    train_pretext(clips, tmp_path / "whole", method, TRAIN, progress=False)
    train_pretext(clips, tmp_path / "split", method, dataclasses.replace(TRAIN, steps=4), progress=False)
    metrics = train_pretext(clips, tmp_path / "split", None, TRAIN, resume=True, progress=False)
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)
    for name in ("val_loss", "val_mse", "val_rollout_mse", "val_reconstruct_mse", "baseline_copy_last_mse"):
        assert metrics[name] > 0, name

    run = PretextRun.open(tmp_path / "split")
    assert run.method.name == "composite" and run.method.config == method.config
    encoder, net = run.encoder(), run.model()
    sequence = clips[1][:2]  # (B, T, 3, H, W)
    features = encoder.encode(sequence)
    torch.testing.assert_close(features, net.encoder.encode(sequence))
    for k in (1, 2, sequence.shape[1]):  # the features after the first k frames
        torch.testing.assert_close(encoder(sequence[:, :k]), features[:, k - 1])
    assert encoder(sequence[:, 0]).shape == (2, ENCODER.hidden_channels, *ENCODER.feature_size)

    one, three = run.method.predict_episode(net, sequence[0], steps=3)
    assert torch.isnan(one[0]).all() and not torch.isnan(one[1:]).any()
    assert torch.isnan(three[:3]).all() and not torch.isnan(three[3:]).any()
    with torch.no_grad():
        torch.testing.assert_close(three[4], net(sequence[:1, :2], 3)["predict"][0, -1].clamp(0, 1))


def test_an_autoencoder_alone_trains_but_predicts_nothing(clips, tmp_path):
    method = Composite(dataclasses.replace(CONFIG, decoders="reconstruct"))
    assert not method.predicts_frames and Composite(CONFIG).predicts_frames
    metrics = train_pretext(
        clips, tmp_path / "run", method, dataclasses.replace(TRAIN, steps=2), progress=False
    )
    assert "val_mse" not in metrics and metrics["val_reconstruct_mse"] > 0
    with pytest.raises(ValueError, match="no future decoder"):
        method.predict_episode(PretextRun.open(tmp_path / "run").model(), clips[1][0], steps=1)


def test_settings_round_trip_through_set_and_plain_data():
    method = get_method("composite")
    config = apply_settings(
        method.config_class(),
        ["decoders=predict", "conditional=true", "frames_in=4", "encoder.hidden_channels=8"],
    )
    assert config.decoders == "predict" and config.conditional and config.frames_in == 4
    assert config.encoder.hidden_channels == 8
    assert from_dict(CompositeConfig, to_dict(config)) == config
    assert method.from_dict(method(config).config_dict()).config == config
    with pytest.raises(UserError, match="decoders"):
        apply_settings(config, ["decoders=neither"])
