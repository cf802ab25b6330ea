"""What the pretext trainer refuses or stops: a diverged loss, a resume of other data, a run folder
in the way or inside the data; and what it keeps: a log row committed with its checkpoint, a
progress bar and ``epochs_done`` that count the steps actually done."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from airhockey.errors import UserError
from airhockey.generate import generate
from airhockey.learn.methods.next_frame import NextFrame
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.pretext.test_pretext import MODEL, TRAIN, log_rows, train, weights
from tests.learn.synthetic import moving_puck_clips
from tests.learn.tiny import DATA, PRETEXT, TinyRuns, tiny_runs
from tests.learn.tiny import MODEL as TINY_MODEL


@pytest.fixture(scope="module")
def clips() -> tuple[torch.Tensor, torch.Tensor]:
    return (
        moving_puck_clips(24, MODEL.clip_length, size=16, puck=3, seed=1),
        moving_puck_clips(8, MODEL.clip_length, size=16, puck=3, seed=2),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def one_line_error(excinfo: pytest.ExceptionInfo[UserError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_a_loss_that_overflows_stops_the_run_at_its_step_and_records_no_result(clips, tmp_path):
    train_set, val_set = clips
    poisoned = train_set.clone()
    poisoned[5] *= 1e20  # its squared error overflows float32: the loss of its batch is inf
    with pytest.raises(UserError) as excinfo:
        train((poisoned, val_set), tmp_path / "run", dataclasses.replace(TRAIN, epochs=3))
    message = one_line_error(excinfo)
    assert "diverged" in message and "training loss is inf" in message and "--lr (now 0.005)" in message
    step = int(message.split("at step ")[1].split()[0])
    assert 1 <= step <= 3 and "(epoch 1)" in message
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_validation_metric_that_is_not_a_number_stops_the_run(clips, tmp_path):
    train_set, val_set = clips
    with pytest.raises(UserError, match=r"validation val_mse is (inf|nan) at step 3 \(epoch 1\)") as excinfo:
        train((train_set, val_set * 1e20), tmp_path / "run")
    one_line_error(excinfo)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_finished_run_without_its_last_checkpoint_is_neither_overwritten_nor_resumed(clips, tmp_path):
    run = tmp_path / "run"
    train(clips, run, dataclasses.replace(TRAIN, epochs=1))
    (run / "last.pt").unlink()
    best = weights(run, "best.pt")
    with pytest.raises(UserError, match=r"already holds a run .*no last\.pt"):
        train(clips, run)
    with pytest.raises(UserError, match=r"without last\.pt"):
        train(clips, run, model=None, resume=True)
    assert torch.equal(next(iter(best.values())), next(iter(weights(run, "best.pt").values())))


def test_a_log_row_lost_by_a_crash_after_its_checkpoint_is_restored_on_resume(clips, tmp_path):
    train(clips, tmp_path / "whole", dataclasses.replace(TRAIN, epochs=3))
    train(clips, tmp_path / "cut", dataclasses.replace(TRAIN, epochs=2))
    # As if killed between writing last.pt and appending its row: the log ends one row early.
    lines = (tmp_path / "cut" / "log.csv").read_text().splitlines()
    (tmp_path / "cut" / "log.csv").write_text("\n".join(lines[:-1]) + "\n")
    train(clips, tmp_path / "cut", dataclasses.replace(TRAIN, epochs=3), model=None, resume=True)
    whole, cut = log_rows(tmp_path / "whole"), log_rows(tmp_path / "cut")
    assert [r["step"] for r in cut] == ["3", "6", "9"]
    assert [r["val_mse"] for r in cut] == [r["val_mse"] for r in whole]


def test_a_step_budget_mid_epoch_shows_and_counts_the_steps_done(clips, tmp_path, capsys):
    # 24 clips in batches of 8: 3 steps an epoch; 2 steps stop part-way through the first.
    metrics = train_pretext(
        clips,
        tmp_path / "run",
        NextFrame(MODEL),
        dataclasses.replace(TRAIN, epochs=None, steps=2),
        progress=True,
    )
    assert metrics["steps"] == 2 and metrics["best_epoch"] == 1 and metrics["epochs_done"] == 1
    bar = capsys.readouterr().err
    assert "0/2 " in bar and "/3 " not in bar  # the bar counts to the step budget, not the epoch


def test_resume_refuses_other_data_and_out_inside_the_data(runs, tmp_path):
    other = tmp_path / "other"
    generate(dataclasses.replace(DATA, seed=7), other, workers=1, progress=False)
    run = tmp_path / "run"
    shutil.copytree(runs.pretext, run)
    with pytest.raises(UserError, match=r"--resume continues .* differs in fingerprint") as excinfo:
        train_pretext(other, run, None, dataclasses.replace(PRETEXT, epochs=2), resume=True, progress=False)
    one_line_error(excinfo)
    assert str(runs.data) in (run / "config.json").read_text()
    for out in (runs.data, runs.data / "run", runs.data.parent):
        with pytest.raises(UserError, match="dataset"):
            train_pretext(runs.data, out, NextFrame(TINY_MODEL), PRETEXT, progress=False)
    assert not (runs.data / "run").exists()


def test_a_second_process_cannot_train_a_run_folder_another_is_training(tmp_path):
    import fcntl

    from airhockey.learn.pretext.guards import LOCK_FILE, training_lock

    out = tmp_path / "run"
    with training_lock(out, None):
        assert (out / LOCK_FILE).is_file()
        with open(out / LOCK_FILE) as other, pytest.raises(BlockingIOError):  # as another process would
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UserError, match="another process is training this run"), training_lock(out, None):
            pass
    with training_lock(out, None):  # released when the training ends
        pass


def test_a_training_refused_before_writing_leaves_no_folder(tmp_path):
    from airhockey.learn.pretext.guards import training_lock

    out = tmp_path / "new" / "run"
    with pytest.raises(UserError), training_lock(out, None):
        raise UserError("refused")
    assert not out.exists()
