"""The order methods (order_verification, sorting, odd_one_out, clip_order) and what they
share with skip_clip: pseudo-labels on hand-made input, label-free samples, OPN's spatial
jitter, the registry's contract (shapes, causality, k-frame features, config round trip, resume), and
learnability."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from torch.utils.data import DataLoader

from airhockey.errors import UserError
from airhockey.learn.config import EncoderConfig, PretextConfig, apply_settings, from_dict, to_dict
from airhockey.learn.methods import get_method, method_names
from airhockey.learn.methods.odd_one_out import SumOfDifferencesHead
from airhockey.learn.methods.order import (
    ConcatenationHead,
    PairwiseHead,
    frame_motion,
    jitter_frames,
    motion_windows,
    order_classes,
    scrambled_orders,
    sorting_class,
    sorting_classes,
    spaced_positions,
)
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.episodes import ArrayEpisodes, coded_episodes, decode_episode, decode_time, puck_episodes

ORDER_METHODS = ("order_verification", "sorting", "odd_one_out", "clip_order", "skip_clip")
TINY = EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=4)
IDS = np.arange(6)


def tiny(name: str, *settings: str):
    """The method ``name`` with the tiny encoder and small heads (and ``settings`` applied)."""
    cls = get_method(name)
    sizes = [f"{k}=8" for k in ("feature_dim", "pair_dim", "hidden") if hasattr(cls.config_class, k)]
    config = apply_settings(dataclasses.replace(cls.config_class(), encoder=TINY), [*sizes, *settings])
    return cls(config)


def items(dataset, n: int | None = None) -> list[dict[str, torch.Tensor]]:
    return [dataset[i] for i in range(len(dataset) if n is None else min(n, len(dataset)))]


# ----------------------------------------------------------------------- pseudo-labels
def test_sorting_has_12_classes_and_a_tuple_shares_its_reverses_class():
    assert len(sorting_classes(4)) == 12
    classes = {}
    for perm in itertools.permutations(range(4)):
        assert sorting_class(perm) == sorting_class(perm[::-1])
        classes.setdefault(sorting_class(perm), []).append(perm)
    assert sorted(classes) == list(range(12))
    assert all(len(perms) == 2 for perms in classes.values())
    assert sorting_class((0, 1, 2, 3)) == sorting_class((3, 2, 1, 0)) == 0


def test_orders_that_are_neither_forward_nor_backward():
    assert set(scrambled_orders(3)) == {(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1)}
    assert len(order_classes(3)) == 6


def test_spaced_positions_are_sorted_apart_and_inside():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = spaced_positions(rng, 3, 9, 3)
        assert p[0] >= 0 and p[-1] < 9 and np.all(np.diff(p) >= 3)
    with pytest.raises(ValueError):
        spaced_positions(rng, 4, 9, 3)


def test_sorting_samples_are_labelled_by_the_shown_order():
    method = tiny("sorting", "gap=3")
    seen = set()
    for item in items(method.samples(coded_episodes([20] * 4), np.arange(4), seed=0, training=True), 60):
        times = decode_time(item["clips"][:, 0])  # (4,) the shown frames' times
        rank = np.argsort(np.argsort(times))  # shown frame k is the rank[k]-th in time
        assert item["label"] == sorting_class(rank) == sorting_class(rank[::-1])
        assert np.all(np.diff(np.sort(times)) == 3)
        seen.add(int(item["label"]))
    assert len(seen) > 6


def test_verification_negatives_move_only_the_middle_frame_out_of_the_window():
    method = tiny("order_verification", "gap=2")
    train = method.samples(coded_episodes([20] * 4), np.arange(4), seed=0, training=True)
    labels = []
    for epoch in range(10):
        train.set_epoch(epoch)
        labels += [int(item["label"]) for item in items(train)]
    assert 0.65 < 1 - np.mean(labels) < 0.85  # 75% negatives in training
    for item in items(train):
        b, middle, d = decode_time(item["clips"][:, 0])
        assert d - b == 4  # same first and last frame, (b, d) = 2 gaps apart
        if item["label"] == 1:
            assert middle == b + 2
        else:
            assert middle in (b - 2, d + 2)
    val = method.samples(coded_episodes([20] * 4), np.arange(4), seed=0, training=False)
    assert 0.4 < np.mean([int(i["label"]) for i in items(val)]) < 0.6


def test_odd_one_out_the_labelled_element_alone_is_out_of_order():
    method = tiny("odd_one_out", "elements=5", "window=12")
    positions = []
    for item in items(method.samples(coded_episodes([20] * 4), np.arange(4), seed=0, training=True), 60):
        times = decode_time(item["clips"])  # (5, 3)
        steps = np.diff(times, axis=1)
        for k, element in enumerate(steps):
            monotone = np.all(element > 0) or np.all(element < 0)
            assert monotone != (k == item["label"])
            assert np.all(np.abs(element) >= 2)
        positions.append(int(item["label"]))
    assert set(positions) == set(range(5))


def test_clip_order_labels_the_order_of_contiguous_clips_with_gaps():
    method = tiny("clip_order", "clip_length=3", "gap=2")
    for item in items(method.samples(coded_episodes([20] * 4), np.arange(4), seed=0, training=True), 40):
        times = decode_time(item["clips"])  # (3 clips, 3 frames)
        assert np.all(np.diff(times, axis=1) == 1)
        order = order_classes(3)[int(item["label"])]
        starts = times[:, 0] - times[:, 0].min()
        assert list(starts) == [5 * k for k in order]  # clip k is order[k]-th, 3 frames + 2 gap apart


# ----------------------------------------------------------------------- fusion heads
@pytest.mark.parametrize(
    "head",
    [
        ConcatenationHead(3, 5, 8, 2),
        PairwiseHead(3, 5, 8, 8, 6, "concat"),
        PairwiseHead(3, 5, 8, 8, 6, "difference"),
        SumOfDifferencesHead(5, 8),
    ],
)
def test_fusion_ignores_what_all_frames_of_a_sample_share(head):
    """The static table is in every frame's features; only what differs between them may count."""
    torch.manual_seed(0)
    features = torch.randn(4, 3, 5)
    shared = torch.randn(4, 1, 5)
    assert torch.allclose(head(features + shared), head(features), atol=1e-5)
    assert not torch.allclose(head(features), head(features.flip(1)), atol=1e-3)


def test_uncentred_concatenation_reads_the_shared_part():
    torch.manual_seed(0)
    head, features = ConcatenationHead(3, 5, 8, 2, center=False), torch.randn(4, 3, 5)
    assert not torch.allclose(head(features + 1.0), head(features), atol=1e-3)


def test_pooled_clip_features_do_not_say_where_the_puck_is():
    """``clip_order``'s pooled clip features (VCOP's global average pooling): a dot moved by the stem's
    stride, with its response kept off the maps' borders, leaves the pooled features as they
    were, while a larger dot changes them; the maps' readout (the default) sees the move."""

    def dots(size: int, corners: list[int], widths: list[int]) -> torch.Tensor:
        frames = torch.zeros(len(corners), 1, 1, 3, size, size, dtype=torch.float64)  # (B, n, T, 3, H, W)
        for frame, corner, width in zip(frames, corners, widths, strict=True):
            frame[..., corner : corner + width, corner : corner + width] = 1.0
        return frames

    torch.manual_seed(0)
    pooled = tiny("clip_order", "pool=true", "feature_dim=32").build_model().double()
    torch.manual_seed(0)
    maps = tiny("clip_order", "pool=false", "feature_dim=32").build_model().double()
    assert pooled.project[-2].in_features == pooled.encoder.out_channels
    with torch.no_grad():
        # Pooling reads any frame size: 32 pixels keep the response 2 cells from every border.
        moved = pooled.features(dots(32, [14, 16, 14], [2, 2, 3]))[:, 0]  # moved 2 px: the stride
        seen = maps.features(dots(16, [6, 8], [2, 2]))[:, 0]
    # A fresh encoder's response to one frame is small (about 1e-4 here), hence float64 and the tolerances.
    assert torch.allclose(moved[0], moved[1], rtol=0, atol=1e-12)
    assert not torch.allclose(moved[0], moved[2], rtol=0, atol=1e-6)
    assert not torch.allclose(seen[0], seen[1], rtol=0, atol=1e-6)


def test_clip_order_runs_stored_before_pooling_read_back_without_it():
    """A stored config without ``pool`` is a run from before the setting: its model reads the whole
    maps, so that its checkpoint still loads; a new config gets the pooled default."""
    old = tiny("clip_order", "pool=false")
    stored = {k: v for k, v in old.config_dict().items() if k != "pool"}
    method = get_method("clip_order").from_dict(stored)
    assert method.config.pool is False and method.config == old.config
    torch.manual_seed(0)
    method.build_model().load_state_dict(old.build_model().state_dict())
    assert tiny("clip_order").config.pool is True
    with pytest.raises(RuntimeError, match="Missing key"):
        tiny("clip_order").build_model().load_state_dict(old.build_model().state_dict())


# ----------------------------------------------------------------------- motion-aware windows
def test_windows_skip_where_nothing_moves():
    frames = np.zeros((20, 8, 16, 3), np.uint8)
    for t in range(10, 20):  # still for 10 frames, then a square moves
        frames[t, 2:4, t - 10 : t - 8] = 255
    assert np.all(frame_motion(frames)[:9] == 0) and np.all(frame_motion(frames)[10:] > 0)
    windows = motion_windows(ArrayEpisodes([frames]), np.array([0]), span=4, keep=0.3)
    assert len(windows) > 0 and np.all(windows[:, 1] >= 9)  # every kept window moves in all its steps
    every = motion_windows(ArrayEpisodes([frames]), np.array([0]), span=4, keep=1.0)
    assert len(every) == 17


def test_windows_need_episodes_long_enough():
    assert len(motion_windows(coded_episodes([5, 9]), np.arange(2), span=7, keep=1.0)) == 3


# ----------------------------------------------------------------------- label-free
@pytest.mark.parametrize("jitter", [0, 2])
@pytest.mark.parametrize("name", ORDER_METHODS)
def test_samples_are_a_function_of_the_frames_and_the_seed(name, jitter):
    method = tiny(name, f"jitter={jitter}")
    original = coded_episodes([24, 26, 28, 24, 25, 30])
    frames = [original.frames(i) for i in range(len(original))]
    relabelled = ArrayEpisodes(frames, labels=[1, 1, 0, 0, 1, 0], hit_frames=[3, 4, 5, 6, 7, 8])
    for training in (True, False):
        a = items(method.samples(original, IDS, seed=3, training=training), 8)
        b = items(method.samples(relabelled, IDS, seed=3, training=training), 8)
        for x, y in zip(a, b, strict=True):
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    other = items(method.samples(original, IDS, seed=4, training=True), 8)
    assert any(not torch.equal(x[k], y[k]) for x, y in zip(a, other, strict=True) for k in x)
    train = method.samples(original, IDS, seed=3, training=True)
    first = items(train, 8)
    train.set_epoch(1)
    assert any(not torch.equal(x[k], y[k]) for x, y in zip(first, items(train, 8), strict=True) for k in x)


# ----------------------------------------------------------------------- spatial jitter
def shifted(frame: NDArray, dy: int, dx: int) -> NDArray:
    """``frame`` (H, W, C) moved ``dy`` rows down and ``dx`` columns right, the border repeating the edge."""
    h, w = frame.shape[:2]
    return frame[np.clip(np.arange(h) - dy, 0, h - 1)][:, np.clip(np.arange(w) - dx, 0, w - 1)]


def shifts_between(original: NDArray, jittered: NDArray, bound: int) -> list[tuple[int, int]]:
    """Every (dy, dx) with both in ``[-bound, bound]`` that moves ``original`` onto ``jittered``."""
    offsets = range(-bound, bound + 1)
    return [
        (dy, dx) for dy in offsets for dx in offsets if np.array_equal(shifted(original, dy, dx), jittered)
    ]


def distinct_frames(*shape: int) -> NDArray[np.int64]:
    """Frames (..., H, W, 3) whose values are all different, so that no two shifts of one agree."""
    return np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape)


def test_jitter_of_zero_returns_the_frames_and_draws_nothing():
    frames = np.random.default_rng(0).integers(256, size=(5, 8, 8, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    assert jitter_frames(frames, 0, rng) is frames
    assert rng.random() == np.random.default_rng(1).random()


def test_jitter_moves_each_frame_by_its_own_shift_within_the_bound():
    frames = distinct_frames(5, 12, 10, 3)  # H != W, so that swapped axes show
    seen, differ = set(), False
    for seed in range(20):
        jittered = jitter_frames(frames, 3, np.random.default_rng(seed))
        assert jittered.shape == frames.shape and jittered.dtype == frames.dtype
        found = [shifts_between(o, j, 3) for o, j in zip(frames, jittered, strict=True)]
        assert all(len(f) == 1 for f in found)  # each frame is the original under one shift
        shifts = [f[0] for f in found]
        differ |= len(set(shifts)) > 1
        seen.update(shifts)
    assert differ
    assert {dy for dy, _ in seen} == {dx for _, dx in seen} == set(range(-3, 4))


def test_jitter_moves_all_frames_of_a_clip_alike():
    clips = distinct_frames(3, 4, 12, 10, 3)  # (N, T, H, W, 3)
    differ = False
    for seed in range(10):
        jittered = jitter_frames(clips, 2, np.random.default_rng(seed))
        found = [
            {tuple(shifts_between(o, j, 2)) for o, j in zip(clip, moved, strict=True)}
            for clip, moved in zip(clips, jittered, strict=True)
        ]
        assert all(len(f) == 1 and len(next(iter(f))) == 1 for f in found)  # one shift per clip
        differ |= len({next(iter(f)) for f in found}) > 1
    assert differ


def test_jitter_is_a_function_of_the_generator_seed():
    frames = distinct_frames(6, 12, 10, 3)
    a, b = (jitter_frames(frames, 2, np.random.default_rng(7)) for _ in range(2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, jitter_frames(frames, 2, np.random.default_rng(8)))


def square_rows_down(frames: torch.Tensor) -> NDArray[np.int64]:
    """How far ``coded_episodes``' blue square (rows 2-5) was moved down: (..., 3, H, W) -> (...)."""
    rows = (frames[..., 2, :, :] == 1.0).any(dim=-1)  # (..., H): rows the square covers
    last = rows.shape[-1] - 1 - rows.flip(-1).long().argmax(dim=-1)
    return (last - 5).numpy()


@pytest.mark.parametrize("name", ORDER_METHODS)
def test_jitter_moves_pixels_but_not_frames_or_labels_and_validation_keeps_its_shifts(name):
    episodes = coded_episodes([20] * 4)
    plain, jittered = tiny(name), tiny(name, "jitter=3")
    a = items(plain.samples(episodes, np.arange(4), seed=0, training=True), 30)
    b = items(jittered.samples(episodes, np.arange(4), seed=0, training=True), 30)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if x[k].is_floating_point():  # frames: the same times and episodes, only moved
                assert np.array_equal(decode_time(x[k]), decode_time(y[k]))
                assert np.array_equal(decode_episode(x[k]), decode_episode(y[k]))
            else:  # labels and rotations
                assert torch.equal(x[k], y[k])
    key = "clips" if "clips" in a[0] else "targets"
    assert np.all(square_rows_down(torch.stack([x[key] for x in a])) == 0)
    down = square_rows_down(torch.stack([y[key] for y in b]))  # (samples, ...)
    assert np.all(np.abs(down) <= 3) and len(np.unique(down)) > 1
    # Validation samples are jittered too, with shifts fixed by the seed (validation keeps epoch 0).
    first = items(jittered.samples(episodes, np.arange(4), seed=0, training=False), 10)
    again = items(jittered.samples(episodes, np.arange(4), seed=0, training=False), 10)
    assert all(torch.equal(x[k], y[k]) for x, y in zip(first, again, strict=True) for k in x)
    moved = square_rows_down(torch.stack([x[key] for x in first]))
    assert np.all(np.abs(moved) <= 3) and len(np.unique(moved)) > 1


@pytest.mark.parametrize(
    ("name", "settings", "whole_clips"),
    [
        ("sorting", [], False),
        ("odd_one_out", [], False),
        ("clip_order", [], True),
        ("clip_order", ["jitter_per_frame=true"], False),
    ],
)
def test_jitter_shifts_each_frame_or_each_clip(name, settings, whole_clips):
    """OPN's per-frame shifts; ``clip_order`` shifts a clip's frames alike to keep them aligned,
    unless ``jitter_per_frame``."""
    method = tiny(name, "jitter=3", *settings)
    samples = items(method.samples(coded_episodes([20] * 4), np.arange(4), seed=0, training=True), 30)
    down = square_rows_down(torch.stack([x["clips"] for x in samples]))  # (samples, n, T)
    assert np.any(down[:, :, 0] != down[:, :1, 0])  # the clips (or frames) of a sample differ
    if down.shape[2] > 1:  # the frames within a clip differ unless the clip moves as one
        assert np.any(down != down[:, :, :1]) != whole_clips


def test_skip_clip_jitter_shifts_the_context_alike_and_each_target_on_its_own():
    method = tiny("skip_clip", "jitter=3")
    samples = items(method.samples(coded_episodes([20] * 4), np.arange(4), seed=0, training=True))
    context = square_rows_down(torch.stack([x["context"] for x in samples]))  # (samples, K)
    targets = square_rows_down(torch.stack([x["targets"] for x in samples]))  # (samples, M)
    assert np.all(context == context[:, :1]) and len(np.unique(context[:, 0])) > 1
    assert np.any(targets != targets[:, :1])
    for x in samples:  # the rotated targets are the jittered targets, turned
        for target, rotated, k in zip(x["targets"], x["rotated"], x["rotations"], strict=True):
            assert torch.equal(torch.rot90(target, int(k), dims=(1, 2)), rotated)


@pytest.mark.parametrize("name", ORDER_METHODS)
def test_jitter_setting_round_trips_and_refuses_negative_shifts(name):
    cls = get_method(name)
    assert cls.config_class().jitter == 0
    method = tiny(name, "jitter=3")
    assert method.config.jitter == 3
    assert from_dict(method.config_class, to_dict(method.config)) == method.config
    assert cls.from_dict(method.config_dict()).config == method.config
    with pytest.raises(UserError, match=r"jitter must be an integer in \[0, 64\], got -1") as refused:
        apply_settings(method.config, ["jitter=-1"])
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match=r"jitter must be an integer in \[0, 64\], got -2"):
        cls.config_class(jitter=-2)


# ----------------------------------------------------------------------- the registry's contract
def test_the_order_methods_are_registered():
    assert set(ORDER_METHODS) <= set(method_names())


@pytest.mark.parametrize("name", ORDER_METHODS)
def test_encoder_shapes_causality_and_k_frame_features(name):
    method = tiny(name)
    torch.manual_seed(0)
    model = method.build_model().eval()
    encoder = method.build_encoder()
    encoder.load_state_dict(model.encoder.state_dict())
    frames = torch.rand(2, 5, 3, 16, 16)
    with torch.no_grad():
        maps = model.encoder.encode(frames)
        assert maps.shape == (2, 5, 4, 8, 8) == (2, 5, encoder.out_channels, *encoder.feature_size)
        changed = frames.clone()
        changed[:, 3:] = torch.rand(2, 2, 3, 16, 16)
        assert torch.equal(model.encoder.encode(changed)[:, :3], maps[:, :3])  # causal
        assert not torch.equal(model.encoder.encode(changed)[:, 3:], maps[:, 3:])
        for k in (1, 3):
            assert torch.allclose(encoder(frames[:, :k]), maps[:, k - 1], atol=1e-6)
        assert encoder(frames[:, 0]).shape == (2, 4, 8, 8)


@pytest.mark.parametrize("name", ORDER_METHODS)
def test_config_round_trip_and_settings(name):
    method = tiny(name, "motion_keep=0.5", "encoder.hidden_channels=6")
    assert method.config.motion_keep == 0.5 and method.config.encoder.hidden_channels == 6
    assert from_dict(method.config_class, to_dict(method.config)) == method.config
    assert get_method(name).from_dict(method.config_dict()).config == method.config
    assert method.with_image_size((32, 32)).image_size == (32, 32)


@pytest.mark.parametrize("name", ORDER_METHODS)
def test_loss_is_finite_and_reaches_every_parameter(name):
    method = tiny(name)
    torch.manual_seed(0)
    model = method.build_model()
    batch = next(iter(DataLoader(method.samples(coded_episodes([24] * 6), IDS, 0, True), batch_size=4)))
    loss = method.loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss)
    untrained = {n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)}
    # A branch that reads single frames starts every ConvLSTM from a zero state, so its recurrent
    # (hidden-state) convolutions are never used; methods that read clips train them too.
    assert all("hidden_conv" in n for n in untrained)
    reads_clips = name in ("odd_one_out", "clip_order", "skip_clip")
    assert reads_clips != any(n.startswith("encoder.") for n in untrained)


@pytest.mark.parametrize(
    ("name", "settings"), [*((name, []) for name in ORDER_METHODS), ("clip_order", ["pool=false"])]
)
def test_resume_continues_exactly(name, settings, tmp_path):
    """Pooled clip features (``clip_order``'s default) keep batch-norm statistics, which must come
    back with the checkpoint too; ``pool=false`` reads the whole maps."""
    method = tiny(name, *settings)
    episodes = puck_episodes(6, 24, seed=1)
    data = (method.samples(episodes, IDS[:4], 0, True), method.samples(episodes, IDS[4:], 0, False))
    config = PretextConfig(epochs=2, batch_size=16, patience=10)
    whole = train_pretext(data, tmp_path / "whole", method, config, progress=False)
    train_pretext(data, tmp_path / "half", method, dataclasses.replace(config, epochs=1), progress=False)
    resumed = train_pretext(data, tmp_path / "half", None, config, resume=True, progress=False)
    assert resumed[method.selection_metric] == whole[method.selection_metric]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "half" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ORDER_METHODS)
def test_a_frozen_encoder_keeps_its_random_weights_while_the_head_trains(name, tmp_path):
    """``--frozen-encoder``, the triviality check: every encoder (Skip-Clip's target encoder too)
    stays as initialised, the rest of the model trains, and the run reads its stored setting back."""
    method = tiny(name)
    episodes = puck_episodes(6, 24, seed=1)
    data = (method.samples(episodes, IDS[:4], 0, True), method.samples(episodes, IDS[4:], 0, False))
    config = PretextConfig(epochs=1, batch_size=16, patience=10, frozen_encoder=True)
    train_pretext(data, tmp_path / "frozen", method, config, progress=False)
    train_pretext(
        data, tmp_path / "trained", method, dataclasses.replace(config, frozen_encoder=False), progress=False
    )
    torch.manual_seed(config.seed)
    initial = method.build_model().state_dict()
    frozen = torch.load(tmp_path / "frozen" / "last.pt", weights_only=True)["model"]
    trained = torch.load(tmp_path / "trained" / "last.pt", weights_only=True)["model"]
    encoders = {k for k in initial if k.startswith(("encoder.", "target_encoder."))}
    assert encoders and encoders != initial.keys()
    assert all(torch.equal(frozen[k], initial[k]) for k in encoders)
    assert not all(torch.equal(trained[k], initial[k]) for k in encoders)
    assert not all(torch.equal(frozen[k], initial[k]) for k in initial.keys() - encoders)
    stored = json.loads((tmp_path / "frozen" / "config.json").read_text())["training"]
    assert stored["frozen_encoder"] is True


def test_a_frozen_encoder_with_nothing_else_to_train_is_a_user_error(tmp_path):
    """Skip-Clip without its rotation head is two encoders and a fixed score: nothing to train."""
    method = tiny("skip_clip", "rotation=false")
    episodes = puck_episodes(6, 24, seed=1)
    data = (method.samples(episodes, IDS[:4], 0, True), method.samples(episodes, IDS[4:], 0, False))
    config = PretextConfig(epochs=1, batch_size=16, frozen_encoder=True)
    with pytest.raises(UserError, match="nothing to train besides its encoder"):
        train_pretext(data, tmp_path / "run", method, config, progress=False)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------- learnability
@pytest.mark.parametrize(
    ("name", "settings", "epochs"),
    [
        # Balanced, so that the loss can fall below that of the prior (75% negatives) quickly.
        ("order_verification", ["negative_fraction=0.5"], 20),
        ("sorting", [], 20),
        ("odd_one_out", [], 8),
        ("clip_order", [], 20),
        ("clip_order", ["pool=false"], 20),
        ("skip_clip", [], 8),
    ],
)
def test_the_loss_goes_down_on_a_moving_puck(name, settings, epochs):
    """Eight batches of samples from a bouncing puck, fitted for ``epochs`` passes (the slower
    methods, fewer passes at a higher learning rate)."""
    method = tiny(name, *settings)
    samples = method.samples(puck_episodes(8, 24, seed=2), np.arange(8), seed=0, training=True)
    loader = DataLoader(samples, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = method.build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2 if epochs < 20 else 3e-3)
    batches = [batch for batch, _ in zip(itertools.cycle(loader), range(8), strict=False)]
    with torch.no_grad():
        before = sum(float(method.loss(model, b)) for b in batches)
    for _ in range(epochs):
        for batch in batches:
            optimizer.zero_grad()
            method.loss(model, batch).backward()
            optimizer.step()
    with torch.no_grad():
        after = sum(float(method.loss(model, b)) for b in batches)
    assert after < 0.7 * before
