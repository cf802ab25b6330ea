"""The classifier model: shapes, loading pretext weights, the shared architecture, the feature scaler."""

from __future__ import annotations

import json

import pytest
import torch

from airhockey.learn.config import EncoderConfig, PretextConfig
from airhockey.learn.downstream.classifier import (
    ClassifierConfig,
    DirectionClassifier,
    EncoderSpec,
    FeatureScaler,
    build_classifier,
)
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.synthetic import moving_puck_clips

ENCODER = EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=4)
METHOD = NextFrameConfig(encoder=ENCODER, frames_in=3, mean_frame_clips=4)
CONFIG = ClassifierConfig(EncoderSpec.shared(ENCODER), num_classes=2, hidden=8)


@pytest.fixture(scope="module")
def pretext_run(tmp_path_factory: pytest.TempPathFactory) -> PretextRun:
    clips = (
        moving_puck_clips(16, METHOD.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, METHOD.clip_length, size=16, puck=3, seed=2),
    )
    run = tmp_path_factory.mktemp("classifier") / "pretext"
    train_pretext(clips, run, NextFrame(METHOD), PretextConfig(epochs=1, batch_size=8), progress=False)
    return PretextRun.open(run)


@pytest.mark.parametrize("k", [1, 3])
def test_k_frames_in_one_logit_per_class_out(k):
    model = DirectionClassifier(ClassifierConfig(EncoderSpec.shared(ENCODER), num_classes=5, hidden=8)).eval()
    frames = torch.rand(3, 3, 16, 16) if k == 1 else torch.rand(3, k, 3, 16, 16)
    assert model(frames).shape == (3, 5)


def test_the_pretrained_model_holds_the_pretext_encoder_and_the_scratch_one_does_not(pretext_run):
    spec = EncoderSpec(pretext_run.method.name, pretext_run.method.config_dict())
    pretrained = build_classifier(
        ClassifierConfig(spec, 2, 8), seed=0, encoder_state=pretext_run.encoder_state()
    )
    scratch = build_classifier(CONFIG, seed=0)
    encoder = pretext_run.encoder().state_dict()
    for name, value in pretrained.encoder.state_dict().items():
        torch.testing.assert_close(value, encoder[name])
    assert any(not torch.equal(v, encoder[k]) for k, v in scratch.encoder.state_dict().items())
    # Same architecture, and with the same seed the same head: the arms differ in the encoder only.
    assert {k: v.shape for k, v in pretrained.state_dict().items()} == {
        k: v.shape for k, v in scratch.state_dict().items()
    }
    for name, value in pretrained.head.state_dict().items():
        torch.testing.assert_close(value, scratch.head.state_dict()[name])


def test_encoder_weights_of_other_sizes_are_refused(pretext_run):
    other = ClassifierConfig(
        EncoderSpec.shared(EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=6))
    )
    with pytest.raises(RuntimeError, match="size mismatch"):
        build_classifier(other, seed=0, encoder_state=pretext_run.encoder_state())


def test_freezing_stops_gradients_to_the_encoder_only():
    model = DirectionClassifier(CONFIG)
    model.set_encoder_trainable(False)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    model(torch.rand(4, 3, 16, 16)).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    model.set_encoder_trainable(True)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_the_feature_scaler_standardises_what_it_was_fit_on():
    # Like the encoder's features: small variations (down to 1e-3) on a larger mean, and a constant.
    features = torch.randn(50, 6) * torch.tensor([1e-3, 1, 10, 3e-3, 5, 0]) + 0.02
    scaler = FeatureScaler(6)
    scaler.fit(features)
    out = scaler(features)
    torch.testing.assert_close(out.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(0, correction=0)[:5], torch.ones(5), atol=1e-2, rtol=0)
    assert torch.isfinite(scaler(torch.ones(1, 6))).all()  # the constant one too
    assert set(FeatureScaler(6).state_dict()) == {"mean", "std"}


def test_config_round_trips_through_a_json_like_dict():
    assert ClassifierConfig.from_dict(json.loads(json.dumps(CONFIG.to_dict()))) == CONFIG
    with pytest.raises(ValueError, match="num_classes"):
        ClassifierConfig(EncoderSpec.shared(ENCODER), num_classes=1)
