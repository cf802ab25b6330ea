"""The learning stages' TensorBoard logs through the real client: tags and step counts of tiny runs
of ``learn pretext``, ``learn classify`` and a comparison, and that logging changes no result."""

from __future__ import annotations

import csv
import json

import pytest

from airhockey import tblog
from airhockey.learn.config import CompareConfig
from airhockey.learn.downstream.classify import classify_on_dataset
from airhockey.learn.methods.next_frame import NextFrame
from airhockey.learn.pretext import trainer
from airhockey.learn.protocol.compare import compare_on_dataset
from airhockey.learn.protocol.jobs import tb_run_name
from tests.learn.tiny import MODEL, PRETEXT, SCHEDULE, TinyRuns, tiny_runs

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def read_back(folder) -> event_accumulator.EventAccumulator:
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def steps(acc, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def test_pretext_logs_each_step_each_validation_and_prediction_images(runs):
    acc = read_back(runs.pretext / "tb")
    with open(runs.pretext / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    validations = [int(row["step"]) for row in rows]
    assert steps(acc, "train/loss") == steps(acc, "train/lr") == list(range(1, validations[-1] + 1))
    assert [e.value for e in acc.Scalars("train/lr")] == pytest.approx([PRETEXT.lr] * validations[-1])
    for name in ("val_mse", "val_psnr", "val_ssim"):
        assert steps(acc, f"validation/{name}") == validations
    assert [e.value for e in acc.Scalars("validation/val_mse")] == pytest.approx(
        [float(row["val_mse"]) for row in rows]
    )
    assert steps(acc, "baselines/baseline_copy_last_mse") == validations
    # truth above prediction, the clip's frames side by side (32 x 32 in the tiny dataset)
    assert [(e.step, e.height) for e in acc.Images("predictions")] == [(v, 2 * 32) for v in validations]


def test_pretext_without_tensorboard_trains_the_same(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(tblog, "available", lambda: False)
    plain = trainer.train_pretext(runs.data, tmp_path / "plain", NextFrame(MODEL), PRETEXT, progress=False)
    logged = json.loads((runs.pretext / "metrics.json").read_text())
    assert not (tmp_path / "plain" / "tb").exists()
    for key in ("val_mse", "val_psnr", "steps"):
        assert plain[key] == logged[key]


def test_classify_logs_losses_accuracies_and_learning_rates_per_epoch(runs, tmp_path):
    run = tmp_path / "classify"
    metrics = classify_on_dataset(
        runs.data, run, SCHEDULE, pretext=runs.pretext, labelled_episodes=4, hidden=8, progress=False
    )
    acc = read_back(run / "tb")
    with open(run / "log.csv", newline="") as f:
        epochs = [int(row["steps"]) for row in csv.DictReader(f)]
    assert len(epochs) == SCHEDULE.epochs
    for tag in ("train/loss", "train/accuracy", "val/accuracy", "lr/head", "lr/encoder"):
        assert steps(acc, tag) == epochs
    assert [e.value for e in acc.Scalars("lr/encoder")] == pytest.approx([0.0, SCHEDULE.encoder_lr])
    (test,) = acc.Scalars("test/accuracy")
    assert (test.step, test.value) == (epochs[-1], pytest.approx(metrics["accuracy"]))


def test_a_comparison_logs_each_classifier_run_in_its_own_folder(runs, tmp_path):
    config = CompareConfig(budgets=(2,), repeats=2, training=SCHEDULE, hidden=8)
    out = tmp_path / "report"
    compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    folders = sorted(p.name for p in (out / "tb").iterdir())
    assert folders == sorted(tb_run_name(record) for record in records)
    assert {"scratch-n2-k1-before-r0", "pretext-n2-k1-before-r1"} <= set(folders)
    for folder in folders:
        acc = read_back(out / "tb" / folder)
        assert len(steps(acc, "train/loss")) == SCHEDULE.epochs
        assert len(steps(acc, "test/accuracy")) == 1
