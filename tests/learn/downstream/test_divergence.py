"""A classifier (or the oracle's head) whose loss is no longer a number stops at once with one line
naming the step and the learning rate, and records nothing; classify's run folder is checked."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from airhockey.errors import UserError
from airhockey.learn.downstream.classify import classify_on_dataset
from airhockey.learn.downstream.probes import fit_state_head
from tests.learn.tiny import SCHEDULE, TinyRuns, tiny_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def diverged_copy(runs: TinyRuns, folder) -> None:
    """A copy of the tiny pretext run whose weights are NaN (a run that diverged, saved unchecked)."""
    shutil.copytree(runs.pretext, folder)
    ckpt = torch.load(folder / "best.pt", weights_only=True)
    for part in ("model", "encoder"):
        ckpt[part] = {
            k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in ckpt[part].items()
        }
    torch.save(ckpt, folder / "best.pt")


def test_a_diverged_classifier_is_an_error_naming_its_step_and_writes_nothing(runs, tmp_path):
    diverged_copy(runs, tmp_path / "pretext")
    with pytest.raises(UserError) as excinfo:
        classify_on_dataset(
            runs.data, tmp_path / "run", SCHEDULE, pretext=tmp_path / "pretext", progress=False
        )
    message = str(excinfo.value)
    assert "\n" not in message and "diverged" in message
    assert "at step 1 (epoch 1)" in message and f"--lr (now {SCHEDULE.lr:g})" in message
    assert not (tmp_path / "run").exists()


def test_the_oracle_head_stops_at_a_loss_that_is_not_a_number():
    x = np.ones((8, 4), np.float32)
    x[3, 0] = np.inf
    with pytest.raises(UserError, match=r"oracle head's training loss is nan at step 1 \(epoch 1\)"):
        fit_state_head(x, np.arange(8) % 2, x, SCHEDULE, hidden=4, num_classes=2)


def test_classify_refuses_a_folder_in_the_way_or_in_the_data(runs, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")  # a finished run whose model.pt was deleted
    with pytest.raises(UserError, match="already holds a classifier"):
        classify_on_dataset(runs.data, out, SCHEDULE, scratch=True, progress=False)
    for inside in (runs.data, runs.data / "classifier"):
        with pytest.raises(UserError, match="dataset"):
            classify_on_dataset(runs.data, inside, SCHEDULE, scratch=True, progress=False)
