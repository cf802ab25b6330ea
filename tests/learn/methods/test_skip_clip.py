"""Skip-Clip (El-Nouby et al. 2019): its samples on hand-made episodes, its score and hinge losses on
hand-made numbers, and the ablation settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from airhockey.errors import UserError
from airhockey.learn.config import EncoderConfig, apply_settings
from airhockey.learn.methods.skip_clip import (
    SkipClip,
    SkipClipConfig,
    cell_cosine,
    negative_hinge,
    rank_accuracy,
    rank_hinge,
)
from tests.learn.episodes import ArrayEpisodes, coded_episodes, decode_episode, decode_time

TINY = EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=4)


def method(*settings: str) -> SkipClip:
    """Skip-Clip with the tiny encoder, K = 4, M = 3, r = 2 (and ``settings``)."""
    config = apply_settings(SkipClipConfig(encoder=TINY), ["context=4", "targets=3", "rate=2", *settings])
    return SkipClip(config)


def samples(m: SkipClip, training: bool = True):
    return m.samples(coded_episodes([20, 22, 24, 26]), np.arange(4), seed=0, training=training)


def test_targets_follow_the_context_at_the_rate_nearest_first():
    data = samples(method())
    assert len(data) > 0
    for i in range(len(data)):
        item = data[i]
        context, targets = decode_time(item["context"]), decode_time(item["targets"])
        assert np.all(np.diff(context) == 1)  # K consecutive frames
        assert list(targets - context[-1]) == [2, 4, 6]  # r, 2r, 3r after the context: rank order
        assert len(set(decode_episode(item["context"])) | set(decode_episode(item["targets"]))) == 1


def test_negatives_come_from_other_episodes():
    data = samples(method())
    seen = set()
    for i in range(len(data)):
        item = data[i]
        own = decode_episode(item["context"])[0]
        negatives = decode_episode(item["negatives"])
        assert np.all(negatives != own) and len(set(negatives)) == 1
        seen.add(int(negatives[0]))
    assert seen == {0, 1, 2, 3}


def test_rotated_targets_are_the_targets_turned_by_the_rotation_label():
    item = samples(method())[0]
    for target, rotated, k in zip(item["targets"], item["rotated"], item["rotations"], strict=True):
        assert torch.equal(torch.rot90(target, int(k), dims=(1, 2)), rotated)


def test_ablations_drop_their_inputs_and_terms():
    bare = method("negatives=false", "rotation=false")
    item = samples(bare)[0]
    assert set(item) == {"context", "targets"}
    torch.manual_seed(0)
    model = bare.build_model()
    assert model.rotation_head is None
    batch = next(iter(DataLoader(samples(bare), batch_size=4)))
    h = model.encoder(batch["context"])
    expected = rank_hinge(cell_cosine(h, model.encode_frames(batch["targets"])), 0.1).mean()
    assert torch.allclose(bare.loss(model, batch), expected)
    with torch.no_grad():
        metrics = bare.evaluate(model, DataLoader(samples(bare, False), batch_size=4), torch.device("cpu"))
    assert "val_rank_accuracy" in metrics and "val_negative_accuracy" not in metrics
    assert "val_rotation_accuracy" not in metrics


def test_rotation_needs_square_frames():
    with pytest.raises(UserError, match="rotation=false"):
        apply_settings(SkipClipConfig(), ["encoder.image_size=64,32"])
    assert apply_settings(SkipClipConfig(), ["rotation=false", "encoder.image_size=64,32"]).rotation is False


def test_the_score_is_the_mean_cosine_of_aligned_cells():
    h = torch.zeros(1, 2, 1, 2)
    h[0, :, 0, 0] = torch.tensor([1.0, 0.0])
    h[0, :, 0, 1] = torch.tensor([0.0, 1.0])
    same, opposite, mixed = h.clone(), -h, h.clone()
    mixed[0, :, 0, 1] = torch.tensor([1.0, 0.0])  # one cell aligned, one orthogonal
    scores = cell_cosine(h, torch.stack([same, 3 * same, opposite, mixed], dim=1)[0:1].squeeze(2))
    assert torch.allclose(scores, torch.tensor([[1.0, 1.0, -1.0, 0.5]]))


def test_rank_hinge_and_accuracy_on_hand_made_scores():
    in_order = torch.tensor([[0.9, 0.6, 0.3]])
    assert rank_hinge(in_order, 0.1).item() == 0.0
    assert rank_accuracy(in_order).item() == 1.0
    swapped = torch.tensor([[0.6, 0.9, 0.3]])  # the nearest two out of order
    assert rank_hinge(swapped, 0.1).item() == pytest.approx(0.4)  # only pair (0, 1): 0.1 - 0.6 + 0.9
    assert rank_accuracy(swapped).item() == pytest.approx(2 / 3)
    assert rank_accuracy(torch.tensor([[0.1, 0.2, 0.3]])).item() == 0.0


def test_negative_hinge_compares_each_target_with_the_mean_negative():
    scores, negatives = torch.tensor([[0.5, 0.2]]), torch.tensor([[0.0, 0.4]])  # mean 0.2
    assert negative_hinge(scores, negatives, 0.1).item() == pytest.approx(0.0 + 0.1)


def test_the_pixel_baseline_ranks_brightening_frames_perfectly():
    """Frames that only brighten with time: pixel distance to the context orders the targets."""
    m = method()
    frames = np.broadcast_to(10 * np.arange(20, dtype=np.uint8)[:, None, None, None], (20, 16, 16, 3))
    brightening = ArrayEpisodes([frames] * 3)
    data = m.samples(brightening, np.arange(3), seed=0, training=False)
    baselines = m.baselines(data, DataLoader(data, batch_size=4), torch.device("cpu"))
    assert baselines["baseline_chance_rank_accuracy"] == 0.5
    assert baselines["baseline_pixel_rank_accuracy"] == 1.0
