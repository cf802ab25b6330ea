"""Training one classifier on a tiny generated dataset: the schedule, budgets, the split, the run folder."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from typer.testing import CliRunner

from airhockey import tblog
from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import open_shards
from airhockey.learn.config import EncoderConfig
from airhockey.learn.data import frames_to_tensor
from airhockey.learn.downstream.classifier import (
    ClassifierConfig,
    DirectionClassifier,
    EncoderSpec,
    build_classifier,
    load_classifier,
)
from airhockey.learn.downstream.classify import (
    best_epoch,
    classify_on_dataset,
    features_in_batches,
    predict,
    run_arm,
    train_classifier,
)
from airhockey.learn.downstream.labelled import ClassifierData, FrameSet, budget_order
from airhockey.learn.downstream.scoring import position_accuracy, score_predictions
from airhockey.learn.methods import get_method, method_names
from airhockey.learn.pretext.run import PretextRun
from tests.learn.tiny import SCHEDULE

runner = CliRunner()


def model_config(run: PretextRun, prepared: ClassifierData) -> ClassifierConfig:
    """The classifier on the tiny pretext run's encoder."""
    spec = EncoderSpec(run.method.name, run.method.config_dict())
    return ClassifierConfig(spec, len(prepared.label_names), hidden=8)


def test_the_encoder_stays_frozen_for_the_first_epochs_then_fine_tunes(prepared, run):
    labelled = prepared.labelled(4, np.random.default_rng(0))
    train = prepared.frames.of_episodes(labelled).usable(False, 2)
    val = prepared.frames.of_episodes(prepared.split.val).usable(False)
    model = build_classifier(model_config(run, prepared), seed=0, encoder_state=run.encoder_state())
    loaded = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    snapshots: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def after_step(optimizer, args, kwargs):
        snapshots.append(
            (
                {k: v.clone() for k, v in model.encoder.state_dict().items()},
                {k: v.clone() for k, v in model.head.state_dict().items()},
            )
        )

    hook = register_optimizer_step_post_hook(after_step)
    try:
        history = train_classifier(model, train, val, SCHEDULE, progress=False)
    finally:
        hook.remove()
    steps = len(snapshots) // 2  # two epochs of equally many steps
    assert [h["encoder_frozen"] for h in history] == [True, False]
    for encoder, _ in snapshots[:steps]:  # the frozen epoch: the encoder is the pretext one
        assert all(torch.equal(encoder[k], loaded[k]) for k in loaded)
    assert any(not torch.equal(snapshots[0][1][k], snapshots[steps - 1][1][k]) for k in snapshots[0][1])
    for encoder, _ in snapshots[steps:]:  # fine-tuning: every step moves the encoder
        assert any(not torch.equal(encoder[k], loaded[k]) for k in loaded)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_a_probe_schedule_never_changes_the_encoder(prepared, run):
    labelled = prepared.labelled(2, np.random.default_rng(0))
    model = build_classifier(model_config(run, prepared), seed=0, encoder_state=run.encoder_state())
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    train = prepared.frames.of_episodes(labelled)
    train_classifier(model, train, train, dataclasses.replace(SCHEDULE, freeze_epochs=2), progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.encoder.state_dict().items())


@pytest.mark.parametrize("select_best", [True, False])
def test_the_model_kept_is_the_best_validation_epochs_or_the_last(prepared, run, select_best):
    labelled = prepared.labelled(4, np.random.default_rng(2))
    train = prepared.frames.of_episodes(labelled).usable(False, 2)
    val = prepared.frames.of_episodes(prepared.split.val).usable(False)
    config = dataclasses.replace(SCHEDULE, epochs=4, freeze_epochs=1, select_best=select_best)
    model = build_classifier(model_config(run, prepared), seed=0, encoder_state=run.encoder_state())
    history = train_classifier(model, train, val, config, progress=False)
    kept = float(np.mean(predict(model, val) == val.label))
    scores = [h["val_accuracy"] for h in history]
    assert kept == (max(scores) if select_best else scores[-1])
    assert best_epoch(history) == 1 + scores.index(max(scores))


def test_best_epoch_is_the_first_of_highest_validation_accuracy_or_the_last_without_any():
    def rows(scores):
        return [{"epoch": k + 1, "val_accuracy": v} for k, v in enumerate(scores)]

    assert best_epoch(rows([0.5, 0.8, 0.7, 0.8])) == 2
    assert best_epoch(rows([float("nan"), 0.6, float("nan")])) == 2
    assert best_epoch(rows([float("nan")] * 3)) == 3


def test_the_same_seed_gives_the_same_run_on_cpu(prepared, run):
    labelled = prepared.labelled(4, np.random.default_rng(1))
    runs = [
        run_arm(
            prepared, labelled, SCHEDULE, model_config(run, prepared), run.encoder_state(), progress=False
        )
        for _ in range(2)
    ]
    (model_a, record_a), (model_b, record_b) = runs
    assert [{**h, "elapsed_s": 0} for h in record_a["history"]] == [
        {**h, "elapsed_s": 0} for h in record_b["history"]
    ]
    assert record_a["accuracy"] == record_b["accuracy"]
    for k, v in model_a.state_dict().items():
        assert torch.equal(v, model_b.state_dict()[k]), k


def test_budgets_are_whole_class_balanced_nested_episodes(prepared, run):
    labels, pool = prepared.labels, prepared.split.train
    order = budget_order(labels, pool, np.random.default_rng(0))
    assert sorted(order.tolist()) == sorted(pool.tolist())
    for n in range(1, len(order) + 1):
        counts = np.bincount(labels[order[:n]], minlength=2)
        assert counts.max() - counts.min() <= 1
    assert not np.array_equal(order, budget_order(labels, pool, np.random.default_rng(1)))
    small, large = (prepared.labelled(n, np.random.default_rng(5)) for n in (4, 8))
    assert set(small) <= set(large) and len(small) == 4

    # A run trains on every frame before the hit of exactly the labelled episodes.
    _, record = run_arm(
        prepared,
        small,
        dataclasses.replace(SCHEDULE, frame_stride=1),
        model_config(run, prepared),
        None,
        progress=False,
    )
    hit_frames = {
        int(e): int(h) for e, h in zip(prepared.frames.episode, prepared.frames.hit_frame, strict=True)
    }
    assert record["episodes"] == sorted(small.tolist())
    assert record["train_frames"] == sum(hit_frames[e] for e in small.tolist())
    with pytest.raises(UserError, match="labelled episodes must be in 1-16"):
        prepared.labelled(17, np.random.default_rng(0))


def test_budgets_of_five_classes_cover_them_in_turn():
    labels = np.repeat(np.arange(5), 6)  # data generated with --labels all: 6 episodes of each button
    pool = np.arange(0, 30, 2)  # 15 of them: 3 of each class
    order = budget_order(labels, pool, np.random.default_rng(0))
    assert set(order) == set(pool)
    assert sorted(labels[order[:5]]) == [0, 1, 2, 3, 4]
    assert np.bincount(labels[order[:10]], minlength=5).tolist() == [2] * 5


def test_the_split_is_the_pretext_runs_and_test_episodes_are_never_trained_on(prepared, runs, run, tmp_path):
    recorded = json.loads((runs.pretext / "config.json").read_text())["data"]
    split = prepared.split
    assert split.test.tolist() == recorded["test_episodes"] and len(split.test) == 2
    assert not set(split.test) & set(recorded["train_episodes"] + recorded["val_episodes"])
    assert not set(split.test) & set(prepared.labelled(None, np.random.default_rng(0)))
    with pytest.raises(AssertionError, match="test episodes"):
        run_arm(prepared, split.test, SCHEDULE, model_config(run, prepared), None, progress=False)

    moved = tmp_path / "pretext"
    shutil.copytree(runs.pretext, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["test_episodes"] = config["data"]["train_episodes"][:2]
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="another dataset or split"):
        ClassifierData.load(recorded["path"], [PretextRun.open(moved)])


def test_a_pretext_run_refuses_another_dataset_with_the_same_split(runs, tmp_path):
    recorded = json.loads((runs.pretext / "config.json").read_text())["data"]
    assert recorded["fingerprint"] == open_shards(runs.data).fingerprint
    # Another dataset with the same labels in the same order (so the same split): here a copy
    # whose manifest lists other bytes for one shard.
    other = tmp_path / "other"
    shutil.copytree(runs.data, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert open_shards(other).fingerprint != recorded["fingerprint"]
    with pytest.raises(UserError, match="trained on another dataset"):
        ClassifierData.load(other, [PretextRun.open(runs.pretext)])


def test_frames_with_a_lit_button_are_left_out_unless_asked_for(prepared):
    frames = prepared.frames
    assert frames.after_hit.any()
    assert not frames.usable(False).after_hit.any()
    assert len(frames.usable(True)) == len(frames)
    assert set(frames.usable(True, stride=3).frame_index % 3) == {0}


def test_accuracy_by_position_on_a_hand_made_episode():
    n = 12  # frames 0-9 before the hit at frame 10, frames 10-11 after it
    frames = FrameSet(
        source=np.zeros((n, 4, 4, 3), np.uint8),
        pos=np.arange(n),
        label=np.zeros(n, np.int64),
        episode=np.zeros(n, np.int64),
        frame_index=np.arange(n),
        hit_frame=np.full(n, 10),
        strike_frame=np.full(n, 4),
        state=np.zeros((n, 8), np.float32),
    )
    correct = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    result = position_accuracy(correct, frames)
    assert result["by_fraction"] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]  # frame i is at fraction i / 10
    assert result["fraction_frames"] == [1] * 10
    assert result["by_frames_before_hit"] == [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]  # k = 10 - i
    assert result["frames_before_hit_frames"] == [1] * 10
    scores = score_predictions(correct, frames, include_after_hit=False)  # the strike is at frame 4
    assert scores["accuracy_before_strike"] == 0.25 and scores["accuracy_strike_to_hit"] == 1.0
    assert scores["episode_hits"] == [7] and scores["episode_frames"] == [10]


def test_a_classify_run_folder_reloads_and_user_mistakes_are_one_line(runs, tmp_path):
    run = tmp_path / "run"
    metrics = classify_on_dataset(
        runs.data, run, SCHEDULE, pretext=runs.pretext, labelled_episodes=4, hidden=8, progress=False
    )
    logs = {"tb"} if tblog.available() else set()  # TensorBoard event files, with the extra
    assert {p.name for p in run.iterdir()} == {"config.json", "model.pt", "log.csv", "metrics.json"} | logs
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["labelled_episodes"] == 4
    config = json.loads((run / "config.json").read_text())
    assert config["arm"] == "pretrained" and len(config["data"]["labelled_episodes"]) == 4
    model = load_classifier(run)
    test = ClassifierData.load(runs.data, [PretextRun.open(runs.pretext)]).frames.of_episodes(
        config["data"]["test_episodes"]
    )
    accuracy = float(np.mean(predict(model, test.usable(False)) == test.usable(False).label))
    assert accuracy == pytest.approx(metrics["accuracy"])

    with pytest.raises(UserError, match="already holds"):
        classify_on_dataset(runs.data, run, SCHEDULE, pretext=runs.pretext, progress=False)
    with pytest.raises(UserError, match="--scratch"):
        classify_on_dataset(runs.data, tmp_path / "other", SCHEDULE, progress=False)


def test_classify_through_the_cli(runs, tmp_path):
    common = ["--epochs", "2", "--freeze-epochs", "1", "--frame-stride", "4", "--min-epoch-frames", "32"]
    common += ["--threads", "1", "--no-progress", "--labelled-episodes", "2"]
    for arm in (["--pretext", str(runs.pretext)], ["--scratch"]):
        run = tmp_path / arm[-1].replace("/", "_")
        result = runner.invoke(app, ["learn", "classify", str(runs.data), "--out", str(run), *arm, *common])
        assert result.exit_code == 0, result.output
        assert "test accuracy" in result.output and (run / "model.pt").is_file()
    result = runner.invoke(app, ["learn", "classify", str(runs.data), "--out", str(tmp_path / "x"), *common])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_classifier_trains_unchanged_on_cuda(prepared, run):
    labelled = prepared.labelled(2, np.random.default_rng(0))
    schedule = dataclasses.replace(SCHEDULE, device="cuda")
    model, record = run_arm(
        prepared, labelled, schedule, model_config(run, prepared), run.encoder_state(), progress=False
    )
    assert next(model.parameters()).is_cuda and 0.0 <= record["accuracy"] <= 1.0


def two_episodes_of_five() -> FrameSet:
    """Frames whose pixels all equal their position in ``source``: 2 episodes of 5 frames."""
    n = 10
    return FrameSet(
        source=np.repeat(np.arange(n, dtype=np.uint8), 16 * 16 * 3).reshape(n, 16, 16, 3),
        pos=np.arange(n),
        label=np.repeat([0, 1], 5),
        episode=np.repeat([0, 1], 5),
        frame_index=np.tile(np.arange(5), 2),
        hit_frame=np.full(n, 5),
        strike_frame=np.full(n, 2),
        state=np.zeros((n, 8), np.float32),
    )


def test_a_k_frame_window_ends_at_its_frame_and_never_reads_a_later_one():
    frames = two_episodes_of_five()
    windows = frames.window(np.arange(10), 3)[..., 0, 0, 0]  # (10, 3): the positions read
    assert windows.tolist()[:5] == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert windows.tolist()[5:7] == [[5, 5, 5], [5, 5, 6]]  # never the other episode's frames
    selected = frames.select(frames.frame_index >= 3)  # windows still read the frames left out
    assert selected.window(np.arange(len(selected)), 2)[..., 0, 0, 0].tolist() == [
        [2, 3],
        [3, 4],
        [7, 8],
        [8, 9],
    ]

    model = DirectionClassifier(
        ClassifierConfig(
            EncoderSpec.shared(EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=4))
        )
    ).eval()
    torch.nn.init.normal_(model.head[-1].weight, std=5.0)  # so that any input change shows in the logits
    with torch.no_grad():
        before = model(frames_to_tensor(frames.window(np.arange(10), 3)))
        later = FrameSet(**{**frames.__dict__, "source": frames.source.copy()})
        later.source[3] = 200  # frame 3 of episode 0: only frames 3 and 4 may see it
        after = model(frames_to_tensor(later.window(np.arange(10), 3)))
    torch.testing.assert_close(after[:3], before[:3], rtol=0, atol=0)
    torch.testing.assert_close(after[5:], before[5:], rtol=0, atol=0)
    assert not torch.allclose(after[3], before[3])


@pytest.mark.parametrize("name", method_names())
def test_overlapping_windows_share_frames_and_give_what_each_window_alone_gives(name):
    # encode_windows computes a frame's per-frame part once for every window that holds it; the
    # features must be those of each window read on its own from a zero state.
    torch.manual_seed(0)
    encoder = get_method(name)().with_image_size((16, 16)).build_encoder().eval()
    frames = torch.rand(6, 3, 16, 16)
    windows = torch.tensor([[0, 0, 1], [0, 1, 2], [3, 4, 5], [4, 5, 5]])
    with torch.no_grad():
        alone = encoder(frames[windows])  # (4, C, h, w)
        shared = encoder.encode_windows(frames, windows)
    torch.testing.assert_close(shared, alone, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(shared[0], shared[1])


def test_predictions_over_k_frames_are_those_of_the_windows_read_one_by_one():
    frames = two_episodes_of_five()
    model = DirectionClassifier(
        ClassifierConfig(
            EncoderSpec.shared(EncoderConfig(image_size=(16, 16), stem_channels=(8,), hidden_channels=4))
        )
    ).eval()
    torch.nn.init.normal_(model.head[-1].weight, std=5.0)
    with torch.no_grad():
        direct = model(frames_to_tensor(frames.window(np.arange(10), 3)))
    torch.testing.assert_close(
        features_in_batches(model, frames, 3, batch_size=4), direct, rtol=1e-5, atol=1e-6
    )
    features = features_in_batches(model.encoder, frames, 3, batch_size=4)
    torch.testing.assert_close(model.head(features), direct, rtol=1e-5, atol=1e-6)
    assert predict(model, frames, 3).tolist() == direct.argmax(-1).tolist()
