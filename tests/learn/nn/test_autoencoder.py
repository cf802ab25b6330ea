import pytest
import torch

from airhockey.learn.config import EncoderConfig, apply_settings, from_dict, to_dict
from airhockey.learn.methods.next_frame import NextFrameConfig
from airhockey.learn.nn.autoencoder import CausalConv3d, ConvLSTMAutoencoder, FrameEncoder

TINY = EncoderConfig(image_size=(16, 16), stem_channels=(4, 8), hidden_channels=6)
TINY_METHOD = NextFrameConfig(encoder=TINY, frames_in=3, frames_predicted=2)


def model(config: EncoderConfig = TINY, seed: int = 0, time_kernel: int = 2) -> ConvLSTMAutoencoder:
    torch.manual_seed(seed)
    m = ConvLSTMAutoencoder(config, output_time_kernel=time_kernel).eval()
    # Random output weights, so that every input reaches the prediction.
    torch.nn.init.normal_(m.output.conv.weight, std=0.5)
    return m


def test_predictions_have_the_frames_shape_and_one_per_step():
    m = model()
    frames = torch.rand(2, 3, 3, 16, 16)  # (B, T, 3, H, W)
    assert m(frames).shape == (2, 3, 3, 16, 16)
    assert m(frames, future=2).shape == (2, 5, 3, 16, 16)


def test_encoder_reads_one_frame_or_a_sequence():
    enc = FrameEncoder(TINY)
    assert enc(torch.rand(4, 3, 16, 16)).shape == (4, enc.out_channels, 4, 4)
    assert enc(torch.rand(4, 5, 3, 16, 16)).shape == (4, 6, 4, 4)
    assert TINY.feature_size == (4, 4)


def test_without_a_stem_the_convlstms_run_at_full_resolution():
    config = EncoderConfig(image_size=(8, 8), stem_channels=(), hidden_channels=4)
    m = ConvLSTMAutoencoder(config)
    assert m.encoder(torch.rand(1, 3, 8, 8)).shape == (1, 4, 8, 8)
    assert m(torch.rand(1, 2, 3, 8, 8)).shape == (1, 2, 3, 8, 8)


@pytest.mark.parametrize("changed", [1, 3])
def test_a_later_frame_never_changes_an_earlier_prediction(changed):
    m = model(time_kernel=3)
    frames = torch.rand(1, 5, 3, 16, 16)
    altered = frames.clone()
    altered[:, changed] = torch.rand(3, 16, 16)
    with torch.no_grad():
        before, after = m(frames, future=2), m(altered, future=2)
    # Prediction t (of frame t + 1) reads frames 0..t: those before `changed` must be equal ...
    torch.testing.assert_close(after[:, :changed], before[:, :changed], rtol=0, atol=0)
    # ... and the later ones must differ, or this test could not fail.
    assert not torch.allclose(after[:, changed:], before[:, changed:])


def test_causal_conv3d_in_chunks_equals_the_whole_sequence():
    torch.manual_seed(0)
    conv = CausalConv3d(2, 3, time_kernel=3)
    x = torch.rand(1, 2, 6, 5, 5)  # (B, C, T, H, W)
    whole, _ = conv(x)
    first, history = conv(x[:, :, :4])
    second, _ = conv(x[:, :, 4:], history)
    torch.testing.assert_close(torch.cat([first, second], dim=2), whole)


def test_an_untrained_residual_model_predicts_near_the_last_frame():
    torch.manual_seed(0)
    m = ConvLSTMAutoencoder(TINY)
    frames = torch.rand(2, 3, 3, 16, 16)
    residual = m(frames) - frames
    assert residual.abs().mean() < frames.std()


@pytest.mark.parametrize(
    "cls, fields, message",
    [
        (EncoderConfig, {"image_size": (18, 16)}, "divisible"),
        (EncoderConfig, {"kernel_size": 4}, "odd"),
        (NextFrameConfig, {"frames_in": 0}, "frames_in"),
    ],
)
def test_config_rejects_impossible_sizes(cls, fields, message):
    with pytest.raises(ValueError, match=message):
        cls(**fields)


def test_config_round_trips_through_a_json_like_dict_and_through_settings():
    import json

    assert from_dict(NextFrameConfig, json.loads(json.dumps(to_dict(TINY_METHOD)))) == TINY_METHOD
    settings = ["encoder.image_size=16,16", "encoder.stem_channels=4,8", "encoder.hidden_channels=6"]
    assert apply_settings(NextFrameConfig(), [*settings, "frames_in=3", "frames_predicted=2"]) == TINY_METHOD
