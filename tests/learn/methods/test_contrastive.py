"""Contrastive clips (SimCLR / CVRL): the pairs on hand-made episodes, one episode per batch, InfoNCE
on hand-made features, clip-consistent augmentation, label-free samples, both backbones through
the registry's contract (shapes, causality, round trip, resume, frozen encoder, a run on a dataset),
and learnability on a moving puck."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from airhockey.errors import UserError
from airhockey.learn.config import EncoderConfig, PretextConfig, apply_settings, from_dict, to_dict
from airhockey.learn.methods import get_method, method_names
from airhockey.learn.methods.contrastive import (
    Contrastive,
    ContrastiveConfig,
    augment_clips,
    clip_starts,
    crop_clips,
    grey_value,
    info_nce,
    jitter_colours,
)
from airhockey.learn.nn.autoencoder import FrameEncoder
from airhockey.learn.nn.transformer import TransformerConfig, VideoTransformer
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.pretext.trainer import sample_loader, train_pretext
from tests.learn.episodes import ArrayEpisodes, coded_episodes, decode_episode, decode_time, puck_episodes
from tests.learn.tiny import tiny_runs

TINY = EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=4)
TINY_TRANSFORMER = TransformerConfig(image_size=(16, 16), patch=4, width=16, depth=1, heads=2)
BACKBONES = ("convlstm", "transformer")
IDS = np.arange(6)


def method(*settings: str, backbone: str = "convlstm") -> Contrastive:
    """The method with tiny backbones and head, clips of 4 frames at most 6 apart (and ``settings``)."""
    config = ContrastiveConfig(encoder=TINY, transformer=TINY_TRANSFORMER, backbone=backbone)
    sizes = ["clip_length=4", "max_distance=6", "projection_hidden=16", "projection_dim=8"]
    return Contrastive(apply_settings(config, [*sizes, *settings]))


def items(dataset, n: int | None = None) -> list[dict[str, torch.Tensor]]:
    return [dataset[i] for i in range(len(dataset) if n is None else min(n, len(dataset)))]


def over_epochs(dataset, epochs: int) -> list[dict[str, torch.Tensor]]:
    """Every item of the first ``epochs`` epochs (the dataset left at epoch 0)."""
    drawn = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        drawn += items(dataset)
    dataset.set_epoch(0)
    return drawn


def plain(*settings: str) -> Contrastive:
    """No augmentation at all: crops keep the whole frame, colours stay."""
    return method("crop_area=1", "colour_strength=0", "grey_probability=0", *settings)


# ----------------------------------------------------------------------- pairs
def test_the_two_clips_of_a_sample_are_of_its_episode_at_most_max_distance_apart():
    lengths = [12, 14, 20, 26, 3]  # the last is shorter than a clip: no sample
    data = method().samples(coded_episodes(lengths), np.arange(5), seed=0, training=True)
    assert len(data) == 4
    distances = []
    for epoch in range(15):
        data.set_epoch(epoch)
        for i, item in enumerate(items(data)):
            assert item["clips"].shape == (2, 4, 3, 16, 16)
            assert np.all(decode_episode(item["clips"]) == i) and int(item["episode"]) == i
            times = decode_time(item["clips"])  # (2, 4)
            assert np.all(np.diff(times, axis=1) == 1)  # consecutive frames
            assert times.min() >= 0 and times.max() < lengths[i]
            distances.append(abs(int(times[0, 0] - times[1, 0])))
    assert max(distances) == 6 and min(distances) == 0


def test_distances_follow_cvrls_decreasing_distribution():
    rng = np.random.default_rng(0)
    starts = np.array([clip_starts(rng, 40, 8, 4) for _ in range(20000)])  # (draws, 2)
    d = np.abs(starts[:, 0] - starts[:, 1])
    share = np.bincount(d, minlength=5) / len(d)
    np.testing.assert_allclose(share, np.arange(5, 0, -1) / 15, atol=0.01)  # P(d) ~ 5 - d
    apart = starts[d > 0]
    assert np.mean(apart[:, 0] < apart[:, 1]) == pytest.approx(0.5, abs=0.02)  # either clip first
    assert np.all(starts >= 0) and np.all(starts <= 32)
    short = np.array([clip_starts(rng, 10, 8, 16) for _ in range(100)])  # only 2 frames to spare
    assert np.abs(short[:, 0] - short[:, 1]).max() == 2 and short.max() == 2


def test_a_training_batch_holds_each_episode_once_and_an_epoch_every_episode():
    m = method()
    data = m.samples(coded_episodes([12] * 7), np.arange(7), seed=0, training=True)
    config = PretextConfig(batch_size=3)
    for epoch in range(4):
        data.set_epoch(epoch)
        seen = []
        for batch in sample_loader(data, config, torch.device("cpu"), epoch=epoch):
            painted = decode_episode(batch["clips"])  # (B, 2, T): the episode on every frame
            assert np.all(painted == batch["episode"].numpy()[:, None, None])
            assert len(set(batch["episode"].tolist())) == len(batch["episode"])  # no episode twice
            seen += batch["episode"].tolist()
        assert sorted(seen) == list(range(7))


# ----------------------------------------------------------------------- InfoNCE
def test_info_nce_on_hand_made_features():
    """Pairs of identical features, orthogonal to every other pair: each clip's positive is the
    nearest; the loss is the cross-entropy of cos 1 / tau against 2B - 2 negatives at cos 0."""
    features = torch.eye(3).repeat_interleave(2, dim=0) * 5.0  # (6, 3): rows 2i, 2i + 1 equal
    losses, hits, candidates = info_nce(features, torch.tensor([0, 1, 2]), temperature=0.1)
    expected = -math.log(math.exp(10) / (math.exp(10) + 4))
    torch.testing.assert_close(losses, torch.full((6,), expected))
    assert hits.all() and candidates.tolist() == [5] * 6
    swapped = features[[0, 2, 1, 3, 4, 5]]  # samples 0 and 1 exchanged a clip: positives are far
    losses, hits, _ = info_nce(swapped, torch.tensor([0, 1, 2]), temperature=0.1)
    assert hits.tolist() == [False] * 4 + [True] * 2
    assert torch.all(losses[:4] > 10)


def test_clips_of_the_same_episode_are_never_negatives():
    """Samples 0 and 2 are of one episode, with features equal to sample 0's: were they negatives,
    they would be the nearest; they are left out, and the positive stays the hit."""
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    features = torch.stack([a, a * 0.9 + b * 0.1, b, b, a, a])
    losses, hits, candidates = info_nce(features, torch.tensor([0, 1, 0]), temperature=0.5)
    assert candidates.tolist() == [3, 3, 5, 5, 3, 3]  # episode 0's clips lose the other sample's 2
    assert hits.all()
    z = torch.nn.functional.normalize(features, dim=1)
    logit = lambda i, j: float(z[i] @ z[j]) / 0.5  # noqa: E731
    expected0 = -logit(0, 1) + math.log(sum(math.exp(logit(0, j)) for j in (1, 2, 3)))
    assert float(losses[0]) == pytest.approx(expected0, rel=1e-5)
    unmasked = info_nce(features, torch.tensor([0, 1, 2]), temperature=0.5)
    assert float(unmasked[0][0]) > float(losses[0]) and not unmasked[1][0]


def test_the_method_loss_is_info_nce_over_the_augmented_clips():
    m = method()
    torch.manual_seed(0)
    model = m.build_model()
    batch = next(iter(DataLoader(m.samples(coded_episodes([12] * 4), np.arange(4), 0, True), batch_size=4)))
    views = m.views(batch)  # (2B, T, 3, H, W)
    assert views.shape == (8, 4, 3, 16, 16)
    _, z = model(views)
    expected = info_nce(z, batch["episode"], 0.1)[0].mean()
    torch.testing.assert_close(m.loss(model, batch), expected)


# ----------------------------------------------------------------------- augmentation
def blue_centroids(clips: torch.Tensor) -> np.ndarray:
    """Centroid (row, column) of the blue channel of each frame: (..., 3, H, W) -> (..., 2)."""
    blue = clips[..., 2, :, :]
    rows = torch.arange(blue.shape[-2], dtype=torch.float32)[:, None]
    cols = torch.arange(blue.shape[-1], dtype=torch.float32)[None, :]
    mass = blue.sum(dim=(-2, -1))
    return torch.stack([(blue * rows).sum((-2, -1)) / mass, (blue * cols).sum((-2, -1)) / mass], -1).numpy()


def sliding_blob(n: int) -> ArrayEpisodes:
    """``n`` episodes of 8 dark 32x32 frames with a blue blob (a Gaussian of 1.5 px, smooth so that
    resampling moves its centroid exactly) centred on row 15.5 that moves 1 px right each frame
    from column 12, and never up or down."""
    rows, cols = np.mgrid[:32, :32]
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    for t in range(8):
        blob = np.exp(-((rows - 15.5) ** 2 + (cols - 12 - t) ** 2) / (2 * 1.5**2))
        frames[t, ..., 2] = np.round(255 * blob)
    return ArrayEpisodes([frames] * n)


def test_a_clip_is_cropped_alike_in_every_frame_and_the_two_clips_differ():
    """After a clip's crop the blob keeps one row in all its frames and moves by equal steps, the
    clip's zoom (1 / the crop's width); the two clips of a sample are cropped differently."""
    m = method("crop_area=0.9", "colour_strength=0", "grey_probability=0")
    data = m.samples(sliding_blob(4), np.arange(4), seed=0, training=True)
    rows = []
    for item in over_epochs(data, 5):
        views = augment_clips(item["clips"], item["crop"], item["flip"], item["colour"], item["grey"])
        centre = blue_centroids(views)  # (2, T, 2)
        np.testing.assert_allclose(centre[..., 0], centre[:, :1, 0].repeat(4, 1), atol=1e-4)  # one row
        steps = np.diff(centre[..., 1], axis=1)  # (2, T - 1)
        zoom = 1 / item["crop"][:, 3:].numpy()  # output pixels per input pixel, across
        np.testing.assert_allclose(steps, zoom.repeat(3, 1), atol=0.03)
        assert not torch.equal(item["crop"][0], item["crop"][1])
        rows.append(centre[:, 0, 0])
    rows = np.array(rows)  # (samples, 2): the blob's row in each clip
    assert np.mean(np.abs(rows[:, 0] - rows[:, 1]) > 0.01) > 0.9


def test_a_whole_frame_crop_is_the_identity_and_a_flip_mirrors():
    clips = torch.rand(2, 3, 3, 8, 12)  # H != W, so that swapped axes show
    whole = torch.tensor([[0.5, 0.5, 1.0, 1.0]] * 2)
    torch.testing.assert_close(crop_clips(clips, whole, torch.zeros(2)), clips, atol=1e-5, rtol=0)
    flipped = crop_clips(clips, whole, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(flipped[0], clips[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(flipped[1], clips[1], atol=1e-5, rtol=0)
    half = crop_clips(clips, torch.tensor([[0.5, 0.25, 1.0, 0.5]] * 2), torch.zeros(2))  # the left half
    torch.testing.assert_close(half[..., ::2], clips[..., :6], atol=0.3, rtol=0)  # each pixel twice


def test_colour_jitter_is_one_map_per_clip_and_grey_is_grey():
    frame = torch.rand(3, 8, 8)
    clips = frame.expand(2, 4, 3, 8, 8)  # every frame alike: so must their jittered copies be
    identity = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 2)
    torch.testing.assert_close(jitter_colours(clips, identity, torch.zeros(2)), clips, atol=1e-5, rtol=0)
    colour = torch.tensor([[1.3, 0.7, 1.5, 0.1], [0.6, 1.2, 0.4, -0.15]])
    out = jitter_colours(clips, colour, torch.tensor([0.0, 1.0]))
    assert torch.all((out[:, 1:] == out[:, :1]).all(dim=1))  # the same in every frame of a clip
    assert not torch.allclose(out[0], clips[0]) and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out[1, :, 0], out[1, :, 2])  # grey: three equal channels
    bright = jitter_colours(clips, torch.tensor([[0.5, 1.0, 1.0, 0.0]] * 2), torch.zeros(2))
    torch.testing.assert_close(bright, clips * 0.5, atol=1e-5, rtol=0)
    turned = jitter_colours(clips * 0.5 + 0.25, torch.tensor([[1.0, 1.0, 1.0, 0.2]] * 2), torch.zeros(2))
    torch.testing.assert_close(grey_value(turned), grey_value(clips * 0.5 + 0.25), atol=1e-4, rtol=0)


def test_drawn_augmentations_keep_to_their_settings():
    m = method("crop_area=0.5", "colour_probability=1", "grey_probability=0")
    data = m.samples(coded_episodes([12] * 6), IDS, seed=0, training=True)
    drawn = over_epochs(data, 20)
    crop = torch.cat([x["crop"] for x in drawn])  # (n, 4)
    area = crop[:, 2] * crop[:, 3]
    assert torch.all(area <= 1 + 1e-6) and torch.all(area >= 0.5 * 0.75 - 1e-6) and area.min() < 0.6
    assert torch.all(crop[:, :2] - crop[:, 2:] / 2 >= -1e-6)  # inside the frame
    assert torch.all(crop[:, :2] + crop[:, 2:] / 2 <= 1 + 1e-6)
    colour = torch.cat([x["colour"] for x in drawn])
    assert torch.all((colour[:, :3] - 1).abs() <= 0.4 + 1e-6)  # strength 0.5: factors 1 +- 0.4
    assert torch.all(colour[:, 3].abs() <= 0.1 + 1e-6)  # and hue turns +- 0.1
    assert torch.all(torch.cat([x["flip"] for x in drawn]) == 0)  # flips are off by default
    flipping = method("flip=true").samples(coded_episodes([12] * 6), IDS, seed=0, training=True)
    flips = torch.cat([x["flip"] for x in over_epochs(flipping, 5)])
    assert 0 < flips.sum() < len(flips)
    for x in items(plain().samples(coded_episodes([12] * 6), IDS, seed=0, training=True)):
        views = augment_clips(x["clips"], x["crop"], x["flip"], x["colour"], x["grey"])
        torch.testing.assert_close(views, x["clips"], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------- label-free
def test_samples_are_a_function_of_the_frames_and_the_seed():
    m = method()
    original = coded_episodes([12, 14, 16, 12, 13, 18])
    frames = [original.frames(i) for i in range(len(original))]
    relabelled = ArrayEpisodes(frames, labels=[1, 1, 0, 0, 1, 0], hit_frames=[3, 4, 5, 6, 7, 8])
    for training in (True, False):
        a = items(m.samples(original, IDS, seed=3, training=training))
        b = items(m.samples(relabelled, IDS, seed=3, training=training))
        for x, y in zip(a, b, strict=True):
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    other = items(m.samples(original, IDS, seed=4, training=True))
    assert any(not torch.equal(x["crop"], y["crop"]) for x, y in zip(a, other, strict=True))
    train = m.samples(original, IDS, seed=3, training=True)
    first = items(train)
    train.set_epoch(1)
    assert any(not torch.equal(x["clips"], y["clips"]) for x, y in zip(first, items(train), strict=True))


# ----------------------------------------------------------------------- baselines and metrics
def test_chance_is_one_over_the_other_clips_and_pixels_find_frames_that_give_the_episode_away():
    """Still episodes, each its own random picture, no augmentation: a clip's pixels name its episode."""
    m = plain()
    pictures = np.random.default_rng(0).integers(256, size=(6, 1, 16, 16, 3), dtype=np.uint8)
    still = ArrayEpisodes(list(pictures.repeat(10, axis=1)))
    data = m.samples(still, IDS, seed=0, training=False)
    loader = DataLoader(data, batch_size=4)  # batches of 4 and 2 episodes: 7 and 3 candidates
    baselines = m.baselines(data, loader, torch.device("cpu"))
    assert baselines["baseline_chance_retrieval_accuracy"] == pytest.approx((8 / 7 + 4 / 3) / 12)
    assert baselines["baseline_pixel_retrieval_accuracy"] == 1.0
    torch.manual_seed(0)
    model = m.build_model().eval()
    with torch.no_grad():
        metrics = m.evaluate(model, loader, torch.device("cpu"))
    assert set(metrics) == {"val_loss", "val_retrieval_accuracy", "val_feature_retrieval_accuracy"}
    assert all(0 <= metrics[k] <= 1 for k in metrics if "accuracy" in k) and metrics["val_loss"] > 0


# ----------------------------------------------------------------------- the registry's contract
def test_the_method_is_registered():
    assert "contrastive" in method_names() and get_method("contrastive") is Contrastive


@pytest.mark.parametrize("backbone", BACKBONES)
def test_encoder_shapes_causality_and_no_projection_in_the_encoder(backbone):
    m = method(backbone=backbone)
    torch.manual_seed(0)
    model = m.build_model().eval()
    encoder = m.build_encoder()
    assert isinstance(encoder, FrameEncoder if backbone == "convlstm" else VideoTransformer)
    encoder.load_state_dict(model.encoder.state_dict())  # the encoder alone: no projection in it
    assert not any("projection" in k for k in encoder.state_dict())
    frames = torch.rand(2, 5, 3, 16, 16)
    with torch.no_grad():
        maps = model.encoder.encode(frames)
        assert maps.shape == (2, 5, encoder.out_channels, *encoder.feature_size)
        changed = frames.clone()
        changed[:, 3:] = torch.rand(2, 2, 3, 16, 16)
        torch.testing.assert_close(model.encoder.encode(changed)[:, :3], maps[:, :3])  # causal
        for k in (1, 3):
            torch.testing.assert_close(encoder(frames[:, :k]), maps[:, k - 1], atol=1e-5, rtol=1e-5)
        h, z = model(frames)
        torch.testing.assert_close(h, maps[:, -1].mean(dim=(-2, -1)), atol=1e-6, rtol=1e-5)
        assert z.shape == (2, 8)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_config_round_trip_settings_and_frame_size(backbone):
    m = method("temperature=0.2", "crop_area=0.7", "flip=true", backbone=backbone)
    assert m.config.temperature == 0.2 and m.config.flip and m.config.backbone == backbone
    assert from_dict(ContrastiveConfig, to_dict(m.config)) == m.config
    assert Contrastive.from_dict(m.config_dict()).config == m.config
    resized = m.with_image_size((32, 48))
    assert resized.image_size == (32, 48) and resized.build_encoder()(torch.rand(1, 2, 3, 32, 48)).ndim == 4
    assert resized.encoder_config()["backbone"] == backbone
    assert tuple(resized.encoder_config()["image_size"]) == (32, 48)
    with pytest.raises(UserError, match="backbone must be one of convlstm, transformer"):
        apply_settings(m.config, ["backbone=resnet"])
    with pytest.raises(UserError, match=r"temperature must be a finite number in \[0.001, 10\]"):
        apply_settings(m.config, ["temperature=0"])
    with pytest.raises(UserError, match=r"crop_area"):
        apply_settings(m.config, ["crop_area=0"])


@pytest.mark.parametrize("backbone", BACKBONES)
def test_loss_is_finite_and_reaches_every_parameter(backbone):
    m = method(backbone=backbone)
    torch.manual_seed(0)
    model = m.build_model()
    batch = next(iter(DataLoader(m.samples(coded_episodes([12] * 6), IDS, 0, True), batch_size=6)))
    loss = m.loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in model.parameters())


def puck_data(m: Contrastive) -> tuple:
    episodes = puck_episodes(8, 12, seed=1)
    return m.samples(episodes, np.arange(6), 0, True), m.samples(episodes, np.arange(6, 8), 0, False)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_resume_continues_exactly(backbone, tmp_path):
    """The projection's batch-norm statistics come back with the checkpoint too."""
    m = method(backbone=backbone)
    data = puck_data(m)
    config = PretextConfig(epochs=3, batch_size=4, patience=10)
    whole = train_pretext(data, tmp_path / "whole", m, config, progress=False)
    train_pretext(data, tmp_path / "half", m, dataclasses.replace(config, epochs=1), progress=False)
    resumed = train_pretext(data, tmp_path / "half", None, config, resume=True, progress=False)
    assert resumed["val_loss"] == whole["val_loss"]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "half" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.startswith("projection.1.running_mean") for k in a)


def test_a_frozen_encoder_keeps_its_random_weights_while_the_projection_trains(tmp_path):
    m = method()
    data = puck_data(m)
    config = PretextConfig(epochs=1, batch_size=4, patience=10, frozen_encoder=True)
    train_pretext(data, tmp_path / "frozen", m, config, progress=False)
    torch.manual_seed(config.seed)
    initial = m.build_model().state_dict()
    frozen = torch.load(tmp_path / "frozen" / "last.pt", weights_only=True)["model"]
    encoder = {k for k in initial if k.startswith("encoder.")}
    assert encoder and all(torch.equal(frozen[k], initial[k]) for k in encoder)
    projection = {k for k in initial if k.startswith("projection.") and "weight" in k}
    assert projection and not all(torch.equal(frozen[k], initial[k]) for k in projection)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_a_run_on_a_generated_dataset_gives_an_encoder_of_its_frame_size(
    backbone, tmp_path_factory, tmp_path
):
    runs = tiny_runs(tmp_path_factory)
    m = method(backbone=backbone)
    metrics = train_pretext(
        runs.data, tmp_path / "run", m, PretextConfig(steps=2, batch_size=8), progress=False
    )
    assert metrics["method"] == "contrastive" and metrics["steps"] == 2
    assert 0 < metrics["baseline_chance_retrieval_accuracy"] < 1
    opened = PretextRun.open(tmp_path / "run")
    assert opened.image_size == (32, 32) and opened.method.config.backbone == backbone
    assert opened.encoder()(torch.rand(2, 3, 32, 32)).ndim == 4


# ----------------------------------------------------------------------- learnability
def bouncing_squares(n: int, length: int = 12, size: int = 16, seed: int = 0) -> ArrayEpisodes:
    """``n`` episodes, each of one square of its own side (2-5 px) and colour bouncing diagonally at
    1 px per frame on a dark frame."""
    rng = np.random.default_rng(seed)
    episodes = []
    for e in range(n):
        side, colour = 2 + e % 4, rng.integers(80, 256, 3)
        (y, x), (vy, vx) = rng.integers(0, size - side, 2), rng.choice([-1, 1], 2)
        frames = np.zeros((length, size, size, 3), np.uint8)
        for t in range(length):
            frames[t, y : y + side, x : x + side] = colour
            vy, vx = (
                (-vy if not 0 <= y + vy <= size - side else vy),
                (-vx if not 0 <= x + vx <= size - side else vx),
            )
            y, x = y + vy, x + vx
        episodes.append(frames)
    return ArrayEpisodes(episodes)


def test_retrieval_beats_chance_on_bouncing_squares():
    """Sixteen episodes, one batch of them a step (new clips and augmentations each step), 60 steps:
    on clips never trained on, the loss falls and the clips of an episode find each other far more
    often than chance (1 / 31) and than before training."""
    m = method("crop_area=0.8")
    data = m.samples(bouncing_squares(16), np.arange(16), seed=0, training=True)
    loader = DataLoader(data, batch_size=16)
    torch.manual_seed(0)
    model = m.build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def score() -> dict[str, float]:
        data.set_epoch(0)
        model.eval()
        with torch.no_grad():
            metrics = m.evaluate(model, loader, torch.device("cpu"))
        model.train()
        return metrics

    before = score()
    for step in range(60):
        data.set_epoch(step + 1)
        optimizer.zero_grad()
        m.loss(model, next(iter(loader))).backward()
        optimizer.step()
    after = score()
    assert after["val_loss"] < 0.7 * before["val_loss"]
    assert after["val_retrieval_accuracy"] > max(5 / 31, before["val_retrieval_accuracy"] + 0.1)
