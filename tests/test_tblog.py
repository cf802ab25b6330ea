"""TensorBoard event files through the real client: what ``airhockey.tblog`` writes reads back."""

from __future__ import annotations

import numpy as np
import pytest

from airhockey import tblog

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_back(folder) -> event_accumulator.EventAccumulator:
    """The event files of ``folder``, every scalar and image kept."""
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_scalars_and_images_read_back_with_their_steps(tmp_path):
    image = np.zeros((4, 6, 3), np.uint8)
    image[1, 2] = (255, 0, 0)
    with tblog.open_log(tmp_path / "tb") as log:
        for step in (1, 2, 3):
            log.scalar("train/loss", 1.0 / step, step)
        log.scalars({"a": 0.5, "n": 3, "skip": "text", "flag": True}, 3, prefix="val/")
        log.image("predictions", image, 3)
    acc = read_back(tmp_path / "tb")
    assert sorted(acc.Tags()["scalars"]) == ["train/loss", "val/a", "val/n"]
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([1.0, 0.5, 1 / 3])
    (shown,) = acc.Images("predictions")
    assert (shown.step, shown.width, shown.height) == (3, 6, 4)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        tblog.TBLog(tmp_path / "other").image("x", np.zeros((4, 6), np.uint8), 0)


def test_without_the_extra_nothing_is_written_and_one_note_says_how_to_get_logs(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(tblog, "available", lambda: False)
    tblog.note_missing.cache_clear()
    for _ in range(2):
        with tblog.open_log(tmp_path / "tb") as log:
            log.scalar("train/loss", 1.0, 1)
            assert not log.enabled
    assert not (tmp_path / "tb").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "airhockey[tensorboard]"' in err
