"""``agent train``'s TensorBoard logs through the real client, and that logging changes no result."""

from __future__ import annotations

import pytest
import torch

from airhockey.agents import load_policy, train
from airhockey.agents import training as training_module
from airhockey.agents.runlog import read_rows
from tests.agents.conftest import tiny_config

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

SB3_TAGS = {
    "time/fps",
    "train/approx_kl",
    "train/clip_fraction",
    "train/clip_range",
    "train/entropy_loss",
    "train/explained_variance",
    "train/learning_rate",
    "train/loss",
    "train/policy_gradient_loss",
    "train/std",
    "train/value_loss",
}
EVAL_TAGS = {"eval/success_rate", "eval/mean_return", "eval/mean_length"}


def test_a_run_logs_sb3s_scalars_per_rollout_and_each_evaluation(tiny_run):
    acc = event_accumulator.EventAccumulator(str(tiny_run.run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    assert set(acc.Tags()["scalars"]) >= SB3_TAGS | EVAL_TAGS
    evaluations = [row.timesteps for row in tiny_run.rows]  # 0, 128, 256
    rows = {row.timesteps: row for row in tiny_run.rows}
    for tag in EVAL_TAGS:
        assert [e.step for e in acc.Scalars(tag)] == evaluations
    assert [e.value for e in acc.Scalars("eval/success_rate")] == [rows[t].success_rate for t in evaluations]
    rollouts = [128, 256]  # 4 envs x 32 steps a rollout
    assert [e.step for e in acc.Scalars("train/loss")] == rollouts
    # lin_3e-4, read at the rollouts' progress_remaining 0.5 and 0
    assert [e.value for e in acc.Scalars("train/learning_rate")] == pytest.approx([1.5e-4, 0.0])


def test_without_tensorboard_the_run_is_the_same_and_writes_no_logs(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(training_module, "available", lambda: False)
    training_module.note_missing.cache_clear()
    plain = train(tiny_config(tmp_path / "plain"), command="no logs")
    assert not (plain.run_dir / "tb").exists()
    assert "airhockey[tensorboard]" in capsys.readouterr().err

    def results(rows):
        return [(r.timesteps, r.success_rate, r.mean_return, r.mean_length) for r in rows]

    assert results(read_rows(plain.run_dir / "eval.csv")) == results(tiny_run.rows)
    for a, b in zip(
        load_policy(plain.run_dir).model.policy.parameters(),
        load_policy(tiny_run.run_dir).model.policy.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
