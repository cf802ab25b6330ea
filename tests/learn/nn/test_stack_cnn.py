"""The practitioner's frame-stack CNN: shapes, its difference channels, augmentation, training."""

from __future__ import annotations

import pytest
import torch

from airhockey.learn.downstream.classifier import ClassifierConfig, EncoderSpec, build_classifier
from airhockey.learn.nn.stack_cnn import FrameStackCNN, StackCNNConfig

SIZE = (16, 20)


def cnn(frames: int, **changes: object) -> FrameStackCNN:
    torch.manual_seed(0)
    return FrameStackCNN(StackCNNConfig(image_size=SIZE, frames=frames, channels=(4, 8), **changes))


@pytest.mark.parametrize("k", [1, 4])
def test_shapes_at_k_frames(k):
    model = cnn(k).eval()
    assert model.config.in_channels == 3 * k + 3 * (k - 1)
    assert model.convs[0][0].in_channels == 6 * k - 3
    assert model.feature_size == (4, 5) and model.out_channels == 8
    clip = torch.rand(2, k, 3, *SIZE)
    assert model(clip).shape == (2, 8, 4, 5)
    assert model.feature_count == 8 * 4 * 5
    assert model.encode(torch.rand(2, 6, 3, *SIZE)).shape == (2, 6, 8, 4, 5)
    if k == 1:
        assert torch.equal(model(clip[:, 0]), model(clip))  # (B, 3, H, W) is one frame


def test_the_difference_channels_are_frame_differences():
    model = cnn(3)
    window = torch.rand(2, 3, 3, *SIZE)
    stacked = model.stack(window)
    assert stacked.shape == (2, 15, *SIZE)
    assert torch.equal(stacked[:, :9], window.flatten(1, 2))
    assert torch.equal(stacked[:, 9:12], window[:, 1] - window[:, 0])
    assert torch.equal(stacked[:, 12:15], window[:, 2] - window[:, 1])
    assert torch.equal(cnn(1).stack(window[:, :1]), window[:, 0])  # k = 1: the frame alone


def test_it_reads_the_last_k_frames_causally_repeating_the_first():
    model = cnn(3).eval()
    clip = torch.rand(2, 5, 3, *SIZE)
    assert torch.allclose(model(clip), model(clip[:, 2:]))
    short = clip[:, :2]
    assert torch.allclose(model(short), model(short[:, [0, 0, 1]]))  # repeats the first frame
    steps = model.encode(clip)
    for t in range(5):
        assert torch.allclose(steps[:, t], model(clip[:, : t + 1]), atol=1e-6)
    windows = torch.tensor([[0, 1, 2], [2, 3, 4], [1, 1, 1]])
    frames = clip[0]
    assert torch.allclose(model.encode_windows(frames, windows), model(frames[windows]))


def test_augmentation_only_while_training_and_reproducible_from_the_seed():
    model = cnn(2)
    clip = torch.rand(4, 2, 3, *SIZE)
    model.eval()
    torch.manual_seed(1)
    first = model(clip)
    torch.manual_seed(2)
    assert torch.equal(model(clip), first)  # eval: no random draws
    model.train()
    torch.manual_seed(1)
    trained = model(clip)
    assert not torch.allclose(trained, first)
    torch.manual_seed(1)
    assert torch.equal(model(clip), trained)  # the same seed, the same augmentation
    torch.manual_seed(2)
    assert not torch.allclose(model(clip), trained)


def test_a_sample_s_frames_share_one_shift_and_no_flip():
    model = cnn(3, brightness=0.0, contrast=0.0, shift=2)
    frames = torch.zeros(64, 3, 3, *SIZE)
    frames[:, :, :, 5, 3] = 1.0  # one lit pixel near the left edge, in every frame
    torch.manual_seed(0)
    moved = model.augment(frames)
    assert torch.equal(moved[:, 0], moved[:, 1]) and torch.equal(moved[:, 1], moved[:, 2])
    rows, cols = torch.nonzero(moved[:, 0, 0] == 1.0, as_tuple=True)[1:]
    assert len(rows) == 64  # one lit pixel per sample, moved by at most 2 pixels, never mirrored
    assert rows.sub(5).abs().max() <= 2 and cols.sub(3).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # the shifts vary

    jitter = cnn(1, shift=0, brightness=0.2, contrast=0.2)
    image = torch.rand(64, 1, 3, *SIZE) * 0.5 + 0.25
    torch.manual_seed(0)
    out = jitter.augment(image)
    change = (out - image).abs().amax(dim=(1, 2, 3, 4))
    assert (change > 0).all() and (change <= 0.2 * 0.5 + 0.2 + 1e-6).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


def moving_dots(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2, 3, H, W) pairs of frames of a dot that moves 2 pixels right (label 1) or left (0),
    from a random place: one frame alone cannot tell which."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    rows = torch.randint(2, SIZE[0] - 2, (n,), generator=generator)
    cols = torch.randint(4, SIZE[1] - 4, (n,), generator=generator)
    clips = torch.zeros(n, 2, 3, *SIZE)
    step = labels * 4 - 2
    for i in range(n):
        clips[i, 0, :, rows[i] - 1 : rows[i] + 2, cols[i] - 1 : cols[i] + 2] = 1.0
        c = cols[i] + step[i]
        clips[i, 1, :, rows[i] - 1 : rows[i] + 2, c - 1 : c + 2] = 1.0
    return clips, labels


def test_the_classifier_learns_a_direction_from_two_frames():
    generator = torch.Generator().manual_seed(0)
    spec = EncoderSpec.stack_cnn(StackCNNConfig(image_size=SIZE, channels=(8, 16), shift=1)).for_frames(2)
    model = build_classifier(ClassifierConfig(spec, 2, 16, dropout=0.0), seed=0)
    train_x, train_y = moving_dots(256, generator)
    test_x, test_y = moving_dots(128, generator)
    model.eval()
    with torch.no_grad():
        model.scaler.fit(model.encoder(train_x).flatten(1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for step in range(60):
        idx = torch.arange(step * 32, step * 32 + 32) % len(train_x)
        loss = torch.nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(-1) == test_y).float().mean().item()
    assert accuracy > 0.9


def test_the_spec_is_plain_data_and_sized_for_k():
    spec = EncoderSpec.stack_cnn(StackCNNConfig(image_size=SIZE, channels=(4, 8)))
    at4 = spec.for_frames(4)
    assert spec.config["frames"] == 1 and at4.config["frames"] == 4
    config = ClassifierConfig(at4, 2, 8)
    again = ClassifierConfig.from_dict(config.to_dict())
    assert again == config
    a, b = build_classifier(config, seed=3), build_classifier(again, seed=3)
    assert isinstance(a.encoder, FrameStackCNN) and a.encoder.config.frames == 4
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    shared = EncoderSpec()
    assert shared.for_frames(4) is shared  # a recurrent encoder reads any k as it is
