"""The arms of a comparison: scratch, the practitioner's frame-stack CNN, pretext runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airhockey.errors import UserError
from airhockey.learn.config import PRACTITIONER, SCRATCH, SCRATCH_TRANSFORMER, CompareConfig, PretextConfig
from airhockey.learn.downstream.classifier import STACK_CNN, ClassifierConfig, build_classifier
from airhockey.learn.methods.videomae import VideoMAE, VideoMAEConfig
from airhockey.learn.nn.transformer import TransformerConfig, VideoTransformer
from airhockey.learn.pretext.trainer import train_pretext
from airhockey.learn.protocol.arms import build_arms, open_arms
from airhockey.learn.protocol.compare import compare_on_dataset
from airhockey.learn.protocol.results import read_results
from airhockey.learn.protocol.runlog import RUN_LOG
from tests.learn.tiny import SCHEDULE, TinyRuns, tiny_runs

TINY = CompareConfig(
    budgets=(2,), repeats=2, training=SCHEDULE, hidden=8, after_hit_effect=False, oracle=False, probes=False
)
"""The smallest comparison: one budget, two repeats, no extra runs."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def test_the_practitioner_is_added_after_scratch_only_when_asked(runs):
    assert open_arms([runs.pretext])[1] == [SCRATCH, "pretext"]
    assert open_arms([runs.pretext], practitioner=True)[1] == [SCRATCH, PRACTITIONER, "pretext"]
    given = open_arms([runs.pretext, PRACTITIONER], practitioner=True)[1]
    assert given == [SCRATCH, "pretext", PRACTITIONER]  # named once, where given
    opened, names = open_arms([runs.pretext], reference=PRACTITIONER, practitioner=True)
    assert names == [PRACTITIONER, "pretext"] and opened[0] == ()
    with pytest.raises(UserError, match="reference arm 'practitioner'"):
        open_arms([runs.pretext], reference=PRACTITIONER)


def test_each_arm_s_kind_and_encoder(runs):
    opened, names = open_arms([runs.pretext], practitioner=True)
    arms = build_arms(names, opened, (32, 32))
    assert [a.kind for a in arms] == ["scratch", "practitioner", "pretrained"]
    assert [a.method for a in arms] == [None, None, "next_frame"]
    practitioner = arms[1]
    assert practitioner.spec.method == STACK_CNN and practitioner.spec.config["image_size"] == [32, 32]
    assert practitioner.checkpoint_hashes() == [None] and practitioner.summary()["pretext_runs"] == []
    assert arms[0].spec.method == "next_frame"  # scratch keeps the pretext arms' architecture
    training = TINY.arm_training(practitioner.kind, seed=5)
    assert training.freeze_epochs == 0 and training.encoder_lr == training.lr  # trained end to end


@pytest.fixture(scope="module")
def compared(runs: TinyRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("arms") / "report"
    config = CompareConfig(**{**TINY.__dict__, "frames_k": (2,), "probes": True})
    compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    return out


def test_a_comparison_has_a_practitioner_arm_with_its_records(compared):
    results = read_results(compared)
    assert results.arms == (SCRATCH, PRACTITIONER, "pretext")
    detail = results.arm_details[PRACTITIONER]
    assert (detail.kind, detail.method, detail.encoder["method"]) == (PRACTITIONER, None, STACK_CNN)
    assert results.pretrained == ["pretext"]
    budget = results.budgets[0]
    runs = budget.arms[PRACTITIONER].runs
    assert runs is not None and len(runs) == 2
    assert PRACTITIONER in budget.paired_difference
    assert results.settings.training[PRACTITIONER]["freeze_epochs"] == 0
    records = [json.loads(line) for line in (compared / RUN_LOG).read_text().splitlines()]
    mine = [r for r in records if r["arm"] == PRACTITIONER]
    assert sorted((r["context_frames"], r["repeat"]) for r in mine) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in mine)
    assert set(results.probes or {}) == {SCRATCH, PRACTITIONER, "pretext"}
    assert all(not any(h["encoder_frozen"] for h in r["history"]) for r in mine)
    assert all(r["pretext_sha256"] is None for r in mine)


def test_without_the_practitioner_the_arms_are_as_given(runs, tmp_path):
    out = tmp_path / "report"
    config = CompareConfig(**{**TINY.__dict__, "practitioner": False})
    compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    results = read_results(out)
    assert results.arms == (SCRATCH, "pretext")
    assert PRACTITIONER not in results.settings.training
    assert all(json.loads(line)["arm"] != PRACTITIONER for line in (out / RUN_LOG).read_text().splitlines())


@pytest.fixture(scope="module")
def videomae_run(runs: TinyRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step VideoMAE run with a tiny transformer on the tiny 32x32 dataset."""
    encoder = TransformerConfig(image_size=(32, 32), patch=8, width=16, depth=1, heads=2)
    method = VideoMAE(
        VideoMAEConfig(encoder=encoder, frames=4, clip_stride=4, decoder_width=8, decoder_depth=1)
    )
    out = tmp_path_factory.mktemp("videomae") / "videomae"
    train_pretext(runs.data, out, method, PretextConfig(steps=2, epochs=None, batch_size=4), progress=False)
    return out


def test_a_transformer_arm_brings_its_own_scratch_baseline(runs, videomae_run):
    assert SCRATCH_TRANSFORMER not in open_arms([runs.pretext], scratch_per_backbone=True)[1]
    opened, names = open_arms([runs.pretext, videomae_run], practitioner=True, scratch_per_backbone=True)
    assert names == [SCRATCH, PRACTITIONER, SCRATCH_TRANSFORMER, "pretext", "videomae"]
    assert SCRATCH_TRANSFORMER not in open_arms([videomae_run], practitioner=True)[1]  # only when asked
    arms = {arm.name: arm for arm in build_arms(names, opened, (32, 32))}
    baseline, pretrained = arms[SCRATCH_TRANSFORMER], arms["videomae"]
    assert baseline.runs == () and baseline.kind == SCRATCH and baseline.method is None
    assert baseline.spec == pretrained.spec  # the same transformer, from random weights
    assert arms[SCRATCH].spec.method == "next_frame"  # the ConvLSTM arms keep theirs
    assert isinstance(
        build_classifier(ClassifierConfig(baseline.spec, 2, 8), 0, None).encoder, VideoTransformer
    )
