"""What a classifier run evaluates, and in which precision: a fixed validation subsample, features
written batch by batch, the same run from the same seed in each precision."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.learn.device import cpu_has_bf16
from airhockey.learn.downstream.classifier import ClassifierConfig, EncoderSpec, build_classifier
from airhockey.learn.downstream.classify import (
    features_in_batches,
    fixed_subsample,
    predict,
    run_arm,
    train_classifier,
)
from airhockey.learn.downstream.labelled import ClassifierData
from airhockey.learn.pretext.run import PretextRun
from tests.learn.tiny import SCHEDULE

runner = CliRunner()


def model_config(run: PretextRun, prepared: ClassifierData) -> ClassifierConfig:
    return ClassifierConfig(
        EncoderSpec(run.method.name, run.method.config_dict()), len(prepared.label_names), 8
    )


def test_a_validation_subsample_is_evenly_spaced_fixed_and_all_frames_when_they_are_few(prepared):
    val = prepared.frames.of_episodes(prepared.split.val).usable(False)
    sub = fixed_subsample(val, 10)
    assert len(sub) == 10
    assert sub.pos[0] == val.pos[0] and sub.pos[-1] == val.pos[-1]
    assert set(sub.episode) == set(val.episode)  # spread over every episode
    assert np.array_equal(fixed_subsample(val, 10).pos, sub.pos)
    assert fixed_subsample(val, len(val)) is val and fixed_subsample(val, None) is val


def test_validating_on_a_subsample_scores_exactly_that_subsample(prepared, run):
    labelled = prepared.labelled(4, np.random.default_rng(1))
    train = prepared.frames.of_episodes(labelled).usable(False, SCHEDULE.frame_stride)
    val = prepared.frames.of_episodes(prepared.split.val).usable(False)

    def history(val_set, config):
        model = build_classifier(model_config(run, prepared), config.seed, run.encoder_state())
        rows = train_classifier(model, train, val_set, config, progress=False)
        return [{**r, "elapsed_s": 0} for r in rows]

    limited = dataclasses.replace(SCHEDULE, val_max_frames=9)
    assert history(val, limited) == history(fixed_subsample(val, 9), SCHEDULE)
    everything = dataclasses.replace(SCHEDULE, val_max_frames=len(val))
    assert history(val, everything) == history(val, SCHEDULE)


@pytest.mark.parametrize("k", [1, 3])
def test_features_written_batch_by_batch_do_not_depend_on_the_batch_size(prepared, run, k):
    model = build_classifier(model_config(run, prepared), 0, run.encoder_state())
    frames = prepared.frames.of_episodes(prepared.split.val)
    whole = features_in_batches(model, frames, k, batch_size=len(frames))
    assert whole.shape == (len(frames), len(prepared.label_names))
    torch.testing.assert_close(features_in_batches(model, frames, k, batch_size=7), whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "precision",
    ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(not cpu_has_bf16(), reason="no bfloat16"))],
)
def test_the_same_seed_gives_the_same_classifier_in_each_precision(prepared, run, precision):
    labelled = prepared.labelled(4, np.random.default_rng(1))
    schedule = dataclasses.replace(SCHEDULE, precision=precision, context_frames=2)
    (model_a, a), (model_b, b) = (
        run_arm(
            prepared, labelled, schedule, model_config(run, prepared), run.encoder_state(), progress=False
        )
        for _ in range(2)
    )
    assert [{**h, "elapsed_s": 0} for h in a["history"]] == [{**h, "elapsed_s": 0} for h in b["history"]]
    assert a["accuracy"] == b["accuracy"]
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key


def test_classify_records_its_precision_and_refuses_one_the_cpu_lacks_in_one_line(runs, tmp_path):
    common = ["--epochs", "1", "--frame-stride", "4", "--min-epoch-frames", "16", "--threads", "1"]
    common += ["--no-progress", "--labelled-episodes", "2", "--scratch", "--pretext", str(runs.pretext)]
    out = tmp_path / "fp16"
    result = runner.invoke(
        app, ["learn", "classify", str(runs.data), "--out", str(out), "--precision", "fp16", *common]
    )
    assert result.exit_code == 2 and "fp16 needs a CUDA device" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    out = tmp_path / "fp32"
    result = runner.invoke(app, ["learn", "classify", str(runs.data), "--out", str(out), *common])
    assert result.exit_code == 0, result.output
    assert '"precision": "fp32"' in (out / "config.json").read_text()


def test_testing_every_other_frame_scores_those_frames_and_trains_the_same(prepared, run):
    labelled = prepared.labelled(4, np.random.default_rng(1))
    schedule = dataclasses.replace(SCHEDULE, context_frames=2)
    (_, a), (model_b, b) = (
        run_arm(
            prepared,
            labelled,
            dataclasses.replace(schedule, test_frame_stride=stride),
            model_config(run, prepared),
            run.encoder_state(),
            progress=False,
        )
        for stride in (1, 2)
    )
    assert [{**h, "elapsed_s": 0} for h in a["history"]] == [{**h, "elapsed_s": 0} for h in b["history"]]
    test = prepared.frames.of_episodes(prepared.split.test)
    scored = test.usable(False, 2)
    assert b["test_frames"] == len(scored) < a["test_frames"] == len(test.usable(False))
    assert set(scored.frame_index % 2) == {0} and set(scored.episode) == set(test.episode)
    assert b["accuracy"] == pytest.approx(np.mean(predict(model_b, scored, 2) == scored.label))
