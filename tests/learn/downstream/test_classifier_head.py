"""The head's normalisation: the fixed feature scaler (the default) or batch normalisation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from airhockey.learn.downstream.classifier import (
    ClassifierConfig,
    EncoderSpec,
    FeatureScaler,
    HeadBatchNorm,
    build_classifier,
    load_classifier,
)
from airhockey.learn.downstream.classify import classify_on_dataset, run_arm
from tests.learn.tiny import SCHEDULE


def test_a_batchnorm_head_trains_and_differs_from_the_scaler(prepared, run):
    labelled = prepared.labelled(4, np.random.default_rng(0))
    spec = EncoderSpec(run.method.name, run.method.config_dict())
    trained = {}
    for norm in ("scaler", "batchnorm"):
        config = dataclasses.replace(SCHEDULE, head_norm=norm)
        model_config = ClassifierConfig(spec, len(prepared.label_names), hidden=8, head_norm=norm)
        trained[norm] = run_arm(prepared, labelled, config, model_config, run.encoder_state(), progress=False)
    (scaled, scaled_record), (normed, normed_record) = trained["scaler"], trained["batchnorm"]
    assert isinstance(scaled.head[1], FeatureScaler) and scaled.scaler is not None
    assert isinstance(normed.head[1], HeadBatchNorm) and normed.scaler is None
    norm = normed.head[1]
    assert int(norm.num_batches_tracked) > 0 and norm.running_mean.abs().sum() > 0
    assert not torch.equal(norm.weight, torch.ones_like(norm.weight))  # its scale was learnt
    for record in (scaled_record, normed_record):
        assert all(np.isfinite(h["train_loss"]) for h in record["history"])
    assert [h["train_loss"] for h in scaled_record["history"]] != [
        h["train_loss"] for h in normed_record["history"]
    ]
    # With the same seed the rest of the head starts alike: the normalisation is the difference.
    fresh = [
        build_classifier(ClassifierConfig(spec, 2, 8, head_norm=n), seed=0).head
        for n in ("scaler", "batchnorm")
    ]
    torch.testing.assert_close(fresh[0][3].weight, fresh[1][3].weight)


def test_a_batch_of_one_frame_trains_on_the_running_statistics():
    norm = HeadBatchNorm(3).train()
    norm.running_mean.fill_(1.0)
    norm.running_var.fill_(4.0)
    out = norm(torch.full((1, 3), 3.0))
    torch.testing.assert_close(out, torch.ones(1, 3), atol=1e-4, rtol=0)  # (3 - 1) / sqrt(4)
    assert float(norm.running_mean[0]) == 1.0 and int(norm.num_batches_tracked) == 0
    norm(torch.rand(5, 3)).sum().backward()
    assert int(norm.num_batches_tracked) == 1


def test_a_batchnorm_classifier_is_saved_and_loaded_with_its_head(runs, tmp_path):
    config = dataclasses.replace(SCHEDULE, head_norm="batchnorm")
    out = tmp_path / "classify"
    classify_on_dataset(runs.data, out, config, pretext=runs.pretext, labelled_episodes=4, progress=False)
    model = load_classifier(out)
    assert model.config.head_norm == "batchnorm" and isinstance(model.head[1], HeadBatchNorm)


def test_the_model_config_reads_old_checkpoints_and_refuses_an_unknown_norm():
    spec = EncoderSpec()
    stored = ClassifierConfig(spec).to_dict()
    del stored["head_norm"]  # as checkpoints written before the field
    assert ClassifierConfig.from_dict(stored).head_norm == "scaler"
    with pytest.raises(ValueError, match="head_norm must be one of"):
        ClassifierConfig(spec, head_norm="layernorm")
